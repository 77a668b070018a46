"""``tokentrace ui`` and ``tokentrace report --html FILE``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from tokentrace._cli.common import filters, ledger_path, open_ledger
from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger._target import shown

INSTALL = "pip install 'tokentrace[ui]'"
PUBLIC_FLAG = "--i-know-this-exposes-spend"


def cmd_ui(args: argparse.Namespace) -> int:
    try:
        import starlette  # noqa: F401  (only to tell whether the extra is installed)
        import uvicorn  # noqa: F401
    except ImportError:
        print(f"tokentrace ui needs the dashboard's libraries: {INSTALL}", file=sys.stderr)
        return 2
    from tokentrace._cli.ui import server

    public = not server.is_loopback(args.host)
    if public and not args.public:
        raise ConfigurationError(
            f"--host {args.host} would show this ledger's spend per user and tenant to every machine "
            f"that reaches it: add {PUBLIC_FLAG} to serve it there, or leave --host out (127.0.0.1)"
        )
    open_ledger(args).close()  # a missing or foreign ledger: the command's one line, before serving
    if public:
        print(
            f"tokentrace: WARNING: serving on {args.host}: anyone who reaches this port sees the "
            "ledger's spend per task, user and tenant, with no login.",
            file=sys.stderr,
            flush=True,
        )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how it is stopped
        server.serve(ledger_path(args), host=args.host, port=args.port, refresh=args.refresh, public=public)
    return 0


def write_html(args: argparse.Namespace) -> int:
    """``report --html FILE``: the dashboard's charts and tables, for the same filters, in one file."""
    from tokentrace._cli.ui import render, view
    from tokentrace.ledger._report import parse_where

    chosen = filters(args)
    unknown = [dim for dim, _ in chosen.where if dim not in view.FILTERS]
    if unknown:
        raise ConfigurationError(
            f"--html: --where {unknown[0]}=...: the HTML report filters on {', '.join(view.FILTERS)}"
        )
    query = view.Query(since=args.since, until=args.until, where=parse_where(args.where or ()))
    conn = open_ledger(args)
    try:
        html = render.report_file(view.Parts(conn, query), ledger=shown(ledger_path(args)))
    finally:
        conn.close()
    target = Path(args.html).expanduser()
    try:
        target.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot write {target}: {exc.strerror}") from None
    print(f"Wrote {target}: open it in a browser, or attach it; it needs nothing else.")
    return 0
