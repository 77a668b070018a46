"""Arize Phoenix, a real OTLP trace backend, on 127.0.0.1 for the end-to-end test.

Phoenix is large (about 720 MB), so it lives in a virtual environment of its own, ``.phoenix``
at the repository root, never in the test environment:

    python -m tests.support.phoenix install        # about 2 minutes, once
    eval "$(python -m tests.support.phoenix start)" # exports TOKENTRACE_PHOENIX_URL, _PID
    python -m tests.support.phoenix stop "$TOKENTRACE_PHOENIX_PID"

``tests/test_phoenix.py`` uses a running Phoenix named by ``TOKENTRACE_PHOENIX_URL`` (``.ci/run``
starts one), or starts its own from ``.phoenix`` for the duration of the test.
"""

from __future__ import annotations

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

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".phoenix"
VERSION = "20.26.1"
"""The Phoenix release the test was written against (its REST API's span listing)."""


def executable() -> Path | None:
    """The ``phoenix`` command of the ``.phoenix`` environment, if installed."""
    exe = VENV / "bin" / "phoenix"
    return exe if exe.exists() else None


def install() -> Path:
    """Create ``.phoenix`` with ``arize-phoenix`` (idempotent); return its ``phoenix`` command."""
    exe = executable()
    if exe is not None:
        return exe
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, f"arize-phoenix=={VERSION}"], check=True)
    exe = executable()
    if exe is None:
        raise RuntimeError(f"arize-phoenix installed but {VENV / 'bin' / 'phoenix'} is missing")
    return exe


def _free_port() -> int:
    # Phoenix's gRPC listener binds every interface whatever PHOENIX_HOST says: a port free on all.
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


@dataclass
class Phoenix:
    url: str
    pid: int
    workdir: str


def start(exe: Path, timeout: float = 180.0) -> Phoenix:
    """Start ``phoenix serve`` on 127.0.0.1 with a fresh working directory; wait until healthy."""
    workdir = tempfile.mkdtemp(prefix="tokentrace-phoenix-")
    port = _free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": workdir,
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(_free_port()),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = open(os.path.join(workdir, "phoenix.log"), "wb")  # noqa: SIM115 (the server keeps it)
    proc = subprocess.Popen(
        [str(exe), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"phoenix exited ({proc.returncode}): {_tail(workdir)}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return Phoenix(url, proc.pid, workdir)
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    stop(proc.pid)
    raise RuntimeError(f"phoenix not healthy after {timeout:.0f} s: {_tail(workdir)}")


def _tail(workdir: str) -> str:
    try:
        return Path(workdir, "phoenix.log").read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


def stop(pid: int, workdir: str | None = None) -> None:
    """Stop the server started by ``start`` (its whole process group) and remove its data."""
    try:
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
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
        exe = executable() or install()
        phoenix = start(exe)
        print(f"export TOKENTRACE_PHOENIX_URL={phoenix.url}")
        print(f"export TOKENTRACE_PHOENIX_PID={phoenix.pid}")
        print(f"export TOKENTRACE_PHOENIX_DIR={phoenix.workdir}")
    elif command == "stop" and len(argv) >= 2:
        stop(int(argv[1]), argv[2] if len(argv) > 2 else None)
    else:
        raise SystemExit("usage: python -m tests.support.phoenix install | start | stop PID [DIR]")


if __name__ == "__main__":
    main(sys.argv[1:])
