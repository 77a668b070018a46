"""PostgreSQL, a real database server, on 127.0.0.1 for the ledger's tests.

The server is Debian's ``postgresql`` package (``/usr/lib/postgresql/VERSION/bin``, the newest
version installed). Each start makes a fresh cluster with ``initdb`` in a temporary folder and
runs it on a free port of 127.0.0.1 only, its Unix socket inside that folder, without fsync. Its
one role, ``tokentrace``, is a superuser with a password made for that start, checked with
SCRAM on every connection, so a test can check that the password never shows:

    python -m tests.support.postgres install          # apt-get install postgresql, as root, once
    eval "$(python -m tests.support.postgres start)"  # exports TOKENTRACE_POSTGRES_URL, _PID, _DIR
    python -m tests.support.postgres stop "$TOKENTRACE_POSTGRES_PID" "$TOKENTRACE_POSTGRES_DIR"

``TOKENTRACE_POSTGRES_URL`` is ``postgresql://tokentrace:PASSWORD@127.0.0.1:PORT/tokentrace``.
``tests/conftest.py``'s ``postgres_server`` fixture uses the server it names (``.ci/run`` starts
one), or starts its own for the test session; ``postgres_url`` gives each test a database of its
own on it, made by ``database`` here. Debian's package also makes a cluster of its own and may
start it as a service: the tests never use it.

initdb and the server refuse to run as root: as root they run as Debian's ``postgres`` user,
which owns the cluster's folder.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PACKAGES = Path("/usr/lib/postgresql")
"""Where Debian's ``postgresql-VERSION`` packages put their programs, one folder per version."""

ROLE = "tokentrace"
"""The cluster's superuser, and the database the server's URL names."""

_SERVICE_USER = "postgres"
"""The system user Debian's package creates, who runs initdb and the server when we are root."""

# Nothing here needs to survive a crash: no fsync and no full-page images, as for a throwaway
# cluster; every listener on 127.0.0.1 and the Unix socket inside the cluster's folder.
_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def bindir() -> Path | None:
    """The programs folder of the newest PostgreSQL installed from Debian's packages, if any."""
    found = [initdb.parent for initdb in PACKAGES.glob("*/bin/initdb")]
    found.sort(key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
    return found[-1] if found else None


def install() -> Path:
    """Install Debian's ``postgresql`` package if no version of it is there (idempotent, needs root);
    return its programs folder."""
    programs = bindir()
    if programs is not None:
        return programs
    if os.geteuid() != 0:
        raise RuntimeError(
            f"PostgreSQL is not installed (no {PACKAGES}/*/bin/initdb) and installing it needs root:"
            " apt-get update && apt-get install postgresql"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "postgresql"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    programs = bindir()
    if programs is None:
        raise RuntimeError(f"apt-get installed postgresql but there is no {PACKAGES}/*/bin/initdb")
    return programs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user() -> dict[str, Any]:
    """``subprocess`` arguments that run a program as Debian's ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(_SERVICE_USER)
    except KeyError:
        raise RuntimeError(
            f"initdb and postgres refuse to run as root, and there is no {_SERVICE_USER!r} user to run"
            " them as: apt-get install postgresql creates it"
        ) from None
    return {"user": _SERVICE_USER, "group": _SERVICE_USER, "extra_groups": []}


@dataclass
class Postgres:
    url: str
    """``postgresql://tokentrace:PASSWORD@127.0.0.1:PORT/tokentrace``."""
    pid: int
    """The postmaster's."""
    workdir: str
    """The cluster (``data``), its socket and its log, removed by ``stop``."""


def start(programs: Path, timeout: float = 30.0) -> Postgres:
    """Make a fresh cluster and serve it on a free port of 127.0.0.1; wait until it takes a login."""
    import psycopg
    from psycopg import sql

    workdir = tempfile.mkdtemp(prefix="tokentrace-postgres-")
    as_server_user = _as_server_user()
    if as_server_user:
        shutil.chown(workdir, _SERVICE_USER, _SERVICE_USER)
    password = secrets.token_urlsafe(18)
    data = os.path.join(workdir, "data")
    pwfile = os.path.join(workdir, "password")
    with open(os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(password + "\n")
    if as_server_user:
        shutil.chown(pwfile, _SERVICE_USER, _SERVICE_USER)
    try:
        init = subprocess.run(
            [
                str(programs / "initdb"),
                f"--pgdata={data}",
                f"--username={ROLE}",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",  # over TCP and the Unix socket alike: no login without it
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
                "--no-instructions",
            ],
            cwd=workdir,
            capture_output=True,
            text=True,
            check=False,
            **as_server_user,
        )
    finally:
        os.unlink(pwfile)
    if init.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout[-2000:]}{init.stderr[-2000:]}")
    port = _free_port()
    settings = {**_SETTINGS, "port": str(port), "unix_socket_directories": workdir}
    log = open(os.path.join(workdir, "postgres.log"), "wb")  # noqa: SIM115 (the server keeps it)
    proc = subprocess.Popen(
        [str(programs / "postgres"), "-D", data, *(f"--{name}={value}" for name, value in settings.items())],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        start_new_session=True,
        **as_server_user,
    )
    log.close()
    admin = f"postgresql://{ROLE}:{password}@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + timeout
    refusal: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            why = _tail(workdir)
            shutil.rmtree(workdir, ignore_errors=True)
            raise RuntimeError(f"postgres exited ({proc.returncode}): {why}")
        try:
            with psycopg.connect(admin, autocommit=True, connect_timeout=2) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(ROLE)))
        except psycopg.OperationalError as error:  # not listening yet, or still starting up
            refusal = error
            time.sleep(0.05)
            continue
        return Postgres(f"postgresql://{ROLE}:{password}@127.0.0.1:{port}/{ROLE}", proc.pid, workdir)
    why = _tail(workdir)
    stop(proc.pid, workdir)
    last = refusal or "none tried"
    raise RuntimeError(f"postgres took no login after {timeout:.0f} s (last: {last}): {why}")


def _tail(workdir: str) -> str:
    try:
        return Path(workdir, "postgres.log").read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


def _gone(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True  # a child of this process (the test session's own server), now reaped
    except ChildProcessError:
        pass  # started by another process (``start`` from .ci/run): init reaps it, in its time
    try:
        # "PID (COMMAND) STATE ...": a zombie has exited, its children and files closed with it.
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def stop(pid: int, workdir: str | None = None) -> None:
    """Stop the server started by ``start`` and remove its folder, cluster included.

    SIGINT is PostgreSQL's fast shutdown: sessions are ended, nothing is waited for. If the
    postmaster is still there after 10 s, its process group is killed.
    """
    try:
        os.kill(pid, signal.SIGINT)
        for _ in range(200):
            if _gone(pid):
                break
            time.sleep(0.05)
        else:
            os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@contextmanager
def database(server_url: str) -> Iterator[str]:
    """A new empty database on the server of ``server_url`` (a copy of ``template0``), dropped on
    exit, sessions still on it included; yield its URL (same role, password, host and port)."""
    import psycopg
    from psycopg import sql

    name = f"tt_{secrets.token_hex(6)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield _with_database(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main(argv: list[str]) -> None:
    command = argv[0] if argv else ""
    if command == "install":
        print(install())
    elif command == "start":
        server = start(bindir() or install())
        print(f"export TOKENTRACE_POSTGRES_URL={shlex.quote(server.url)}")
        print(f"export TOKENTRACE_POSTGRES_PID={server.pid}")
        print(f"export TOKENTRACE_POSTGRES_DIR={shlex.quote(server.workdir)}")
    elif command == "stop" and len(argv) >= 2:
        stop(int(argv[1]), argv[2] if len(argv) > 2 else None)
    else:
        raise SystemExit("usage: python -m tests.support.postgres install | start | stop PID [DIR]")


if __name__ == "__main__":
    main(sys.argv[1:])
