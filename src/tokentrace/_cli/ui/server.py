"""``tokentrace ui``'s web server: Starlette on uvicorn, reading the ledger as the command does.

Every request opens the ledger read-only (``tokentrace.ledger._read``), so a page sees every call the
application has committed since the last one, and the file is never written. Only GET is served.
A section computed for a page is kept while the ledger's size and time stay the same.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tokentrace._cli.ui import render, view
from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger._read import open_read_only
from tokentrace.ledger._target import shown

_STATIC = Path(__file__).resolve().parent / "static"
_LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def stamp(ledger: Path | str) -> str:
    """What changes when the application writes: the ledger's and its WAL's size and time; for
    a PostgreSQL ledger, the rows its tables have taken (PostgreSQL's statistics, which follow
    within a second or so)."""
    if isinstance(ledger, str):
        return _rows_written(ledger)
    parts = []
    for file in (ledger, Path(f"{ledger}-wal")):
        try:
            info = file.stat()
        except OSError:
            parts.append("-")
        else:
            parts.append(f"{info.st_size}:{info.st_mtime_ns}")
    return " ".join(parts)


def _rows_written(url: str) -> str:
    try:
        conn = open_read_only(url)
    except ConfigurationError:
        return "-"
    try:
        row = conn.execute(
            "SELECT COALESCE(SUM(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
            "WHERE relname IN ('calls', 'tasks')"
        ).fetchone()
    finally:
        conn.close()
    return str(row[0] if row else "-")


def app(ledger: Path | str, *, refresh: float, public: bool) -> Starlette:
    """The dashboard of ``ledger``; bound to loopback, it answers only to loopback host names,
    so no other web page can read it through a rebound DNS name.

    The page comes at once, then its script asks for each section (``/section/NAME``) and for
    the filters' choices (``/choices``), a few at a time. What several sections show is
    computed once, kept for as long as the ledger is unchanged (``stamp``)."""
    memo = view.Memo()
    workers = max(2, min(os.cpu_count() or 2, 6))

    def query(request: Request) -> view.Query:
        return view.Query.from_params(request.query_params)

    def with_parts(request: Request, use: Callable[[view.Parts], Response]) -> Response:
        try:
            chosen = query(request)
            conn = open_read_only(ledger)
            try:
                return use(view.Parts(conn, chosen, memo=memo, stamp=stamp(ledger)))
            finally:
                conn.close()
        except ConfigurationError as exc:
            return PlainTextResponse(str(exc), status_code=400)

    def index(request: Request) -> Response:
        try:
            chosen = query(request)
            conn = open_read_only(ledger)
            try:
                view.check(conn, chosen)
            finally:
                conn.close()
        except ConfigurationError as exc:
            return HTMLResponse(render.error_page(str(exc), ledger=shown(ledger)), status_code=400)
        html = render.page(
            chosen, ledger=shown(ledger), refresh=refresh, stamp=stamp(ledger), workers=workers
        )
        return HTMLResponse(html)

    def section(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in render.SECTIONS:
            return PlainTextResponse(f"no section {name!r}", status_code=404)
        return with_parts(request, lambda parts: HTMLResponse(render.section(name, parts)))

    def choices(request: Request) -> Response:
        return with_parts(request, lambda parts: JSONResponse(view.choices(parts)))

    def changed(request: Request) -> Response:
        return PlainTextResponse(stamp(ledger), headers={"Cache-Control": "no-store"})

    routes: list[Any] = [
        Route("/", index),
        Route("/section/{name}", section),
        Route("/choices", choices),
        Route("/stamp", changed),
        Mount("/static", app=StaticFiles(directory=_STATIC), name="static"),
    ]
    hosts = ["*"] if public else _LOOPBACK_NAMES
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])


def serve(ledger: Path | str, *, host: str, port: int, refresh: float, public: bool) -> None:
    """Serve until interrupted; print the URL once the socket is bound (``--port 0``: a free port)."""
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # connections wait in the backlog from now on, while uvicorn starts
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot serve on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"tokentrace dashboard: http://{shown}:{bound}/  (ledger {ledger}; Ctrl+C stops it)", flush=True)
    config = uvicorn.Config(
        app(ledger, refresh=refresh, public=public),
        log_level=os.environ.get("TOKENTRACE_UI_LOG", "warning"),
        access_log=False,
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    sys.stdout.flush()
