"""Running a fresh Python process (for global OpenTelemetry state, which a process sets once)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def python_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a new interpreter: no ``OTEL_*`` or ``TOKENTRACE_*`` variables but
    those in ``env``, and the repository importable."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))}
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return full_env


def start_python(code: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``code`` in a new interpreter from the repository root, without waiting for it
    (``env`` must name its ``TOKENTRACE_LEDGER``: never the user's real one)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env=python_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def spawn_python(
    code: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter from the repository root; return the finished process."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))}
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    # A program that sets nothing up records to the ledger: never the user's real one, and
    # removed when the program ends.
    with tempfile.TemporaryDirectory(prefix="tokentrace-test-") as scratch:
        full_env["TOKENTRACE_LEDGER"] = str(Path(scratch) / "ledger.db")
        full_env.update(env or {})
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=ROOT,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    """Run ``code`` in a new interpreter from the repository root; return stdout, fail on error."""
    proc = spawn_python(code, env, timeout)
    if proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout
