"""Jaeger, a real OTLP trace backend, on 127.0.0.1 for the end-to-end test.

Jaeger v2 (the all-in-one ``jaeger`` binary, release v1.75.0) is built from its Go module with
the machine's Go, once, into ``~/.cache/tokentrace-ci/jaeger-v1.75.0/jaeger`` (outside the
repository, so a fresh clone reuses it), and run with in-memory storage and
``tests/support/jaeger.yaml``, which binds every listener to 127.0.0.1 on ports chosen here:

    python -m tests.support.jaeger install         # 7 to 13 minutes on 2 cores the first time
    eval "$(python -m tests.support.jaeger start)"  # exports TOKENTRACE_JAEGER_OTLP_URL, _QUERY_URL, _PID
    python -m tests.support.jaeger stop "$TOKENTRACE_JAEGER_PID" "$TOKENTRACE_JAEGER_DIR"

``tests/test_jaeger.py`` uses a running Jaeger named by ``TOKENTRACE_JAEGER_QUERY_URL`` and
``TOKENTRACE_JAEGER_OTLP_URL`` (``.ci/run`` starts one), or starts its own from the built binary
for the duration of the test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MODULE = "github.com/jaegertracing/jaeger"
VERSION = "v1.75.0"
"""The Jaeger release the test was written against (its v2 configuration and HTTP query API)."""

CONFIG = Path(__file__).with_name("jaeger.yaml")
_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tokentrace-ci"
BINARY = _CACHE / f"jaeger-{VERSION}" / "jaeger"


# The variable Jaeger's release build sets, here to the module version: ``jaeger version`` names it.
_VERSION_FLAG = f"-X {MODULE}/internal/version.latestVersion={VERSION}"


def executable() -> Path | None:
    """The built ``jaeger`` binary, if there is one."""
    return BINARY if BINARY.exists() else None


def install() -> Path:
    """Build ``cmd/jaeger`` at ``VERSION`` from the Go module proxy (idempotent); return the binary.

    ``go install module/cmd/jaeger@version`` refuses the module (its go.mod has a ``replace``), so
    the module is downloaded and built as the main module, with its own go.mod and go.sum: the
    same dependency versions as Jaeger's release build. It uses the user's Go caches: the first
    build downloads and compiles over 300 modules (7 to 13 minutes on 2 cores), a rebuild takes
    seconds.
    """
    exe = executable()
    if exe is not None:
        return exe
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("building Jaeger needs Go (https://go.dev/doc/install) on PATH")
    env = {**os.environ, "GOWORK": "off"}
    download = subprocess.run(
        [go, "mod", "download", "-json", f"{MODULE}@{VERSION}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if download.returncode != 0:
        raise RuntimeError(f"go mod download {MODULE}@{VERSION} failed:\n{download.stdout}{download.stderr}")
    source = json.loads(download.stdout)["Dir"]
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    partial = BINARY.with_name(f"jaeger.partial-{os.getpid()}")
    started = time.monotonic()
    try:
        build = subprocess.run(
            [go, "build", "-trimpath", "-ldflags", _VERSION_FLAG, "-o", str(partial), "./cmd/jaeger"],
            cwd=source,
            env=env,
            capture_output=True,  # a line per downloaded module: shown only when the build fails
            text=True,
            check=False,
        )
        if build.returncode != 0:
            raise RuntimeError(f"go build {MODULE}/cmd/jaeger@{VERSION} failed:\n{build.stderr[-4000:]}")
        partial.replace(BINARY)  # atomic: an interrupted build never leaves a binary behind
    finally:
        partial.unlink(missing_ok=True)
    print(f"built jaeger {VERSION} in {time.monotonic() - started:.0f} s: {BINARY}", file=sys.stderr)
    return BINARY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Jaeger:
    otlp_url: str
    """OTLP over HTTP: the value for ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    query_url: str
    """The query API (``/api/traces``) and UI."""
    pid: int
    workdir: str


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def start(exe: Path, timeout: float = 60.0) -> Jaeger:
    """Start Jaeger with ``jaeger.yaml`` on free 127.0.0.1 ports; wait until it takes and serves traces."""
    workdir = tempfile.mkdtemp(prefix="tokentrace-jaeger-")
    ports = {
        name: _free_port()
        for name in (
            "JAEGER_OTLP_HTTP_PORT",
            "JAEGER_OTLP_GRPC_PORT",
            "JAEGER_QUERY_HTTP_PORT",
            "JAEGER_QUERY_GRPC_PORT",
        )
    }
    env = {**os.environ, **{name: str(port) for name, port in ports.items()}}
    log = open(os.path.join(workdir, "jaeger.log"), "wb")  # noqa: SIM115 (the server keeps it)
    proc = subprocess.Popen(
        [str(exe), "--config", str(CONFIG)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        start_new_session=True,
    )
    log.close()
    server = Jaeger(
        otlp_url=f"http://127.0.0.1:{ports['JAEGER_OTLP_HTTP_PORT']}",
        query_url=f"http://127.0.0.1:{ports['JAEGER_QUERY_HTTP_PORT']}",
        pid=proc.pid,
        workdir=workdir,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jaeger exited ({proc.returncode}): {_tail(workdir)}")
        # The receivers start after the query extension: wait for both.
        if _answers(server.query_url + "/api/services") and _accepts(ports["JAEGER_OTLP_HTTP_PORT"]):
            return server
        time.sleep(0.2)
    stop(proc.pid, workdir)
    raise RuntimeError(f"jaeger not serving after {timeout:.0f} s: {_tail(workdir)}")


def _tail(workdir: str) -> str:
    try:
        return Path(workdir, "jaeger.log").read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


def _gone(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True  # a child of this process (the test's own server), now reaped
    except ChildProcessError:
        pass  # started by another process (``start`` from .ci/run): init reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def stop(pid: int, workdir: str | None = None) -> None:
    """Stop the server started by ``start`` (its whole process group) and remove its folder."""
    try:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            if _gone(pid):
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str]) -> None:
    command = argv[0] if argv else ""
    if command == "install":
        print(install())
    elif command == "start":
        server = start(executable() or install())
        print(f"export TOKENTRACE_JAEGER_OTLP_URL={server.otlp_url}")
        print(f"export TOKENTRACE_JAEGER_QUERY_URL={server.query_url}")
        print(f"export TOKENTRACE_JAEGER_PID={server.pid}")
        print(f"export TOKENTRACE_JAEGER_DIR={server.workdir}")
    elif command == "stop" and len(argv) >= 2:
        stop(int(argv[1]), argv[2] if len(argv) > 2 else None)
    else:
        raise SystemExit("usage: python -m tests.support.jaeger install | start | stop PID [DIR]")


if __name__ == "__main__":
    main(sys.argv[1:])
