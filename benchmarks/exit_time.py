"""How long an instrumented program takes to exit when its spans or metrics cannot be delivered.

Each case runs a fresh program that makes ``--calls`` recorded OpenAI calls in one task, prints a
line, and exits. Two times are measured from that line: until the program's exit handlers are
done (tokentrace's part: shutting its providers down) and until the process has ended (which
adds the interpreter's own teardown, about a second with the openai and anthropic SDKs loaded).
Starting Python and importing the SDKs is left out. The cases:

- ``otlp-healthy`` and ``ledger``: nothing is down (the baseline);
- a dead OTLP backend, for traces only, metrics only, and both: the dead signal's endpoint is a
  closed port (connections refused) or a socket that accepts connections and never answers; the
  other signal goes to a healthy receiver. The exporter timeout is OpenTelemetry's default
  (``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s) unless ``--timeout`` sets it;
- the local ledger while another process holds its write lock (``BEGIN EXCLUSIVE``) from before
  the program starts until after it has ended (``ledger-locked``), or until one second after its
  last call (``ledger-locked-1s``, a short writer: every row must still be written).

    python benchmarks/exit_time.py [--calls 200] [--timeout SECONDS] [--case NAME ...] [-v]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.servers import hung_endpoint, otlp_receiver, refused_endpoint

from tokentrace.ledger import _writer as _ledger

CACHED_CHAT = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_prompt_caching_cache_read.yaml"
APP = f"""
import atexit, sys, time
# Registered first, so it runs last: the moment tokentrace's exit handlers are done.
atexit.register(lambda: print("handlers done", time.monotonic(), flush=True))
import tokentrace
from tests.support.clients import Repeat, openai_client, recorded, request_kwargs
(interaction,) = recorded({CACHED_CHAT!r})
tokentrace.configure()
tokentrace.instrument("openai")
client = openai_client(Repeat(interaction))
kwargs = request_kwargs(interaction, "openai")
with tokentrace.task("job"):
    for _ in range(int(sys.argv[1])):
        client.chat.completions.create(**kwargs)
print("calls made", time.monotonic(), flush=True)
"""
OTLP_CASES = ["otlp-healthy"] + [
    f"{signal}-{down}" for down in ("closed", "hung") for signal in ("traces", "metrics", "both")
]
LEDGER_CASES = ["ledger", "ledger-locked", "ledger-locked-1s"]
# Holds the ledger's write lock until told the program made its calls, then argv[2] seconds more.
HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    return env | extra


def _exit_seconds(
    env: dict[str, str], calls: int, on_calls_made: Callable[[], object] = lambda: None
) -> tuple[float, float, str]:
    """Run the program; return the seconds from its last call to the end of its exit handlers and
    to the end of the process, and its stderr."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(APP), str(calls)],
        cwd=ROOT,
        env=_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if first.startswith("calls made "):
        on_calls_made()
    out, stderr = proc.communicate()
    end = time.monotonic()
    made = handled = None
    for line in [first, *out.splitlines()]:
        if line.startswith("calls made "):
            made = float(line.split()[-1])
        elif line.startswith("handlers done "):
            handled = float(line.split()[-1])
    if made is None or handled is None:
        raise SystemExit(f"the program failed:\n{first}{out}{stderr}")
    return handled - made, end - made, stderr


@contextmanager
def _dead(kind: str) -> Iterator[str]:
    if kind == "closed":
        yield refused_endpoint()
    else:
        with hung_endpoint() as endpoint:
            yield endpoint


def otlp_case(name: str, calls: int, timeout: str | None) -> tuple[float, float, str]:
    """Exit time with the named signal(s) pointing at a dead endpoint."""
    signal, down = name.split("-")
    with ExitStack() as stack:
        dead = "" if down == "healthy" else stack.enter_context(_dead(down))
        healthy, _ = stack.enter_context(otlp_receiver())
        traces = dead if signal in ("traces", "both") else healthy
        metrics = dead if signal in ("metrics", "both") else healthy
        env = {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{traces}/v1/traces",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{metrics}/v1/metrics",
        }
        if timeout is not None:
            env["OTEL_EXPORTER_OTLP_TIMEOUT"] = timeout
        return _exit_seconds(env, calls)


def ledger_case(name: str, calls: int) -> tuple[float, float, str]:
    """Exit time while another process holds the ledger's write lock (for the run, or for 1 s
    after the last call), or while nothing holds it."""
    hold = {"ledger": None, "ledger-locked": 3600.0, "ledger-locked-1s": 1.0}[name]
    with tempfile.TemporaryDirectory(prefix="tokentrace-exit-") as scratch:
        path = Path(scratch) / "ledger.db"
        _ledger.connect(path).close()  # the schema exists: what is measured is writing rows
        holder = None
        if hold is not None:
            holder = subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(HOLDER), str(path), str(hold)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        try:
            if holder is not None:
                assert holder.stdout is not None
                assert holder.stdout.readline().strip() == "locked"

            def release_soon() -> None:
                if holder is not None and holder.stdin is not None:
                    holder.stdin.write("go\n")
                    holder.stdin.flush()

            handlers, seconds, stderr = _exit_seconds({"TOKENTRACE_LEDGER": str(path)}, calls, release_soon)
        finally:
            if holder is not None:
                if holder.poll() is None and hold is not None and hold > 60:
                    holder.terminate()
                holder.wait()
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
        return handlers, seconds, f"{rows} of {calls} calls written\n{stderr}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--timeout", help="OTEL_EXPORTER_OTLP_TIMEOUT for the OTLP cases (seconds)")
    parser.add_argument("--case", action="append", choices=OTLP_CASES + LEDGER_CASES)
    parser.add_argument("-v", "--verbose", action="store_true", help="print each program's stderr")
    args = parser.parse_args()
    print(f"{'case':18} {'handlers':>9} {'exit':>7}")
    for name in args.case or OTLP_CASES + LEDGER_CASES:
        if name in LEDGER_CASES:
            handlers, seconds, detail = ledger_case(name, args.calls)
        else:
            handlers, seconds, detail = otlp_case(name, args.calls, args.timeout)
        lines = [line for line in detail.splitlines() if "tokentrace" in line or "written" in line]
        summary = "" if args.verbose else "; ".join(line[:90] for line in lines)
        print(f"{name:18} {handlers:7.2f} s {seconds:5.2f} s   {summary}", flush=True)
        if args.verbose:
            print(textwrap.indent(detail, "    "))


if __name__ == "__main__":
    main()
