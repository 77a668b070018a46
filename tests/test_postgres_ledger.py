"""The ledger on PostgreSQL, against a real server: replicas writing one ledger, a database that
cannot be reached, and a password that never shows (the reports themselves are checked on both
stores by tests/test_report.py and tests/test_cli.py)."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import openai_client, recorded, request_kwargs
from tests.support.proc import spawn_python
from tests.test_cli import EXE, cli, cli_json
from tests.test_ledger import AGENT, CACHED_CHAT
from tokentrace._telemetry import providers as _telemetry
from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger import LedgerExporter, _postgres
from tokentrace.ledger._schema import SCHEMA_VERSION

ONE_RUN_USD = Decimal("0.014388")  # the demo agent's priced calls, as tests/test_cli.py pins them


def _password(url: str) -> str:
    password = urlsplit(url).password
    assert password
    assert len(password) >= 16
    return password


def _database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def test_replicas_started_together_write_one_ledger(postgres_url: str) -> None:
    """Three processes started at once on an empty database create its tables once between them
    and write every call once: the ledger holds three runs, to the cent."""
    with ThreadPoolExecutor(3) as pool:
        runs = list(
            pool.map(lambda _: spawn_python(AGENT, env={"TOKENTRACE_LEDGER": postgres_url}), range(3))
        )
    assert [run.returncode for run in runs] == [0, 0, 0], [run.stderr for run in runs]
    total = cli_json("report", "--ledger", postgres_url, "--by", "task")[-1]
    assert (total["calls"], total["runs"], Decimal(total["cost_usd"])) == (30, 12, 3 * ONE_RUN_USD)
    conn = _postgres.open_read(postgres_url)
    try:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
        assert conn.execute("SELECT COUNT(DISTINCT span_id), COUNT(*) FROM calls").fetchone() == (30, 30)
    finally:
        conn.close()


def _one_call(exporter: LedgerExporter) -> None:
    """One recorded OpenAI call in a task, its spans exported to ``exporter`` as they end."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    interactions = recorded(CACHED_CHAT)
    client = openai_client(Replay(interactions))
    try:
        _telemetry.use_providers(provider, None)
        with tokentrace.task("held", tenant="acme"):
            client.chat.completions.create(**request_kwargs(interactions[0], "openai"))
    finally:
        _telemetry.use_providers(None, None)


def test_rows_wait_for_a_database_that_cannot_be_reached(
    postgres_server: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the database cannot be reached the application goes on, its rows are held and one
    warning says why without the password; once it answers, the held rows are written once."""
    monkeypatch.setattr(_postgres, "RETRY_AFTER", 0.0)
    name = f"tt_{secrets.token_hex(6)}"
    url = _database(postgres_server, name)
    exporter = LedgerExporter(url)
    with caplog.at_level(logging.WARNING, logger="tokentrace"):
        _one_call(exporter)
        _one_call(exporter)
    assert exporter.error is not None
    assert f'database "{name}" does not exist' in exporter.error
    assert exporter._writer is not None
    assert exporter._writer.held == 4
    warnings = [r.getMessage() for r in caplog.records if "held in memory" in r.getMessage()]
    assert len(warnings) == 1
    assert "postgresql://tokentrace:***@127.0.0.1" in warnings[0]
    assert _password(url) not in caplog.text
    assert _password(url) not in exporter.error
    admin = psycopg.connect(postgres_server, autocommit=True)
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            assert exporter.force_flush()
            exporter.shutdown()
            assert (exporter.error, exporter.dropped) == (None, 0)
            rows = cli_json("report", "--ledger", url, "--by", "tenant")
            assert [(r["tenant"], r["calls"]) for r in rows] == [("acme", 2), ("TOTAL", 2)]
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        admin.close()


def test_past_its_bound_the_oldest_held_rows_are_dropped_and_counted(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_HELD_ROWS the oldest rows are dropped, counted in ``dropped`` and warned of once;
    at shutdown what is still held is counted too."""
    monkeypatch.setattr(_postgres, "MAX_HELD_ROWS", 3)
    exporter = LedgerExporter("postgresql://app:hunter2hunter2@127.0.0.1:1/ledger")
    with caplog.at_level(logging.WARNING, logger="tokentrace"):
        for _ in range(3):
            _one_call(exporter)
        assert exporter._writer is not None
        assert (exporter._writer.held, exporter.dropped) == (3, 3)
        exporter.shutdown()
    assert exporter.dropped == 6
    dropped = [r.getMessage() for r in caplog.records if "oldest are dropped" in r.getMessage()]
    assert len(dropped) == 1
    assert "hunter2" not in caplog.text


def test_a_password_never_shows_in_the_commands_output(postgres_url: str, tmp_path: Path) -> None:
    """The URL's password is masked in every line the command prints: a report's error, a wrong
    password, a database with no ledger, and the demo's suggestions."""
    password = _password(postgres_url)
    wrong = postgres_url.replace(password, "not-" + password[4:])
    closed = _database(postgres_url, "x").replace(f":{urlsplit(postgres_url).port}/", ":1/")
    for url, reason in (
        (postgres_url, "no tokentrace ledger in postgresql://tokentrace:***@127.0.0.1:"),
        (wrong, "password authentication failed"),
        (closed, "Connection refused"),
    ):
        proc = cli("report", "--ledger", url, ok=False)
        assert proc.returncode == 2
        assert reason in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
        assert password not in proc.stderr + proc.stdout
        assert password[4:] not in proc.stderr
    demo = cli("demo", "--ledger", postgres_url)
    assert "--ledger postgresql://tokentrace:***@127.0.0.1:" in demo.stdout
    assert password not in demo.stdout + demo.stderr
    # The password from PGPASSWORD instead of the URL: masked in the same way.
    bare = postgres_url.replace(f":{password}@", "@")
    env = {**os.environ, "PGPASSWORD": password}
    proc = subprocess.run(
        [EXE, "report", "--ledger", _database(bare, "nope"), "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, password in proc.stderr) == (2, False)
    assert 'database "nope" does not exist' in proc.stderr


def test_configure_refuses_a_url_it_cannot_read() -> None:
    """A ledger URL libpq cannot read is refused by configure, with its password masked."""
    from tokentrace._telemetry.config import ledger_provider

    with pytest.raises(ConfigurationError) as info:
        ledger_provider("postgresql://app:s3cret-pass@[::1/ledger")
    assert "cannot read ledger URL postgresql://app:***@" in str(info.value)
    assert "s3cret-pass" not in str(info.value)


def test_a_newer_ledger_is_refused(postgres_url: str) -> None:
    """A PostgreSQL ledger of a newer schema is refused by readers and writers alike."""
    conn = _postgres.connect(postgres_url)
    try:
        _postgres.migrate(conn)
        conn.raw.execute("UPDATE meta SET value = %s WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)])
    finally:
        conn.close()
    proc = cli("report", "--ledger", postgres_url, ok=False)
    assert f"has schema version {SCHEMA_VERSION + 1}, newer than this tokentrace reads" in proc.stderr
    conn = _postgres.connect(postgres_url)
    try:
        with pytest.raises(ConfigurationError, match="upgrade tokentrace"):
            _postgres.migrate(conn)
    finally:
        conn.close()


def test_the_dashboard_reads_a_postgresql_ledger(postgres_url: str) -> None:
    """``tokentrace ui --ledger postgresql://...`` serves the page and its sections, the ledger's
    name shown without its password."""
    import urllib.request

    cli("demo", "--ledger", postgres_url)
    server = subprocess.Popen(
        [EXE, "ui", "--ledger", postgres_url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        address = line[line.index("http://") :].split()[0]
        page = urllib.request.urlopen(address, timeout=30).read().decode()
        assert "postgresql://tokentrace:***@127.0.0.1" in page
        assert _password(postgres_url) not in page
        totals = urllib.request.urlopen(f"{address}section/kpis", timeout=60).read().decode()
        assert "$0.014388" in totals
        stamp = urllib.request.urlopen(f"{address}stamp", timeout=30).read().decode()
        assert stamp.isdigit()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_without_psycopg_a_url_says_what_to_install() -> None:
    """With psycopg missing, a PostgreSQL ledger is refused with the extra to install."""
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from tokentrace._cli.main import main\n"
        "sys.exit(main(['report', '--ledger', 'postgresql://app:pw-123456@127.0.0.1/db']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "tokentrace: a PostgreSQL ledger needs psycopg, which is not installed: "
        "pip install 'tokentrace[postgres]'"
    )


def _partitioning_sql() -> str:
    """The SQL docs/ledger.md gives to partition ``calls`` by month."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "ledger.md").read_text()
    block = text[text.index("```sql\n", text.index("partitioned one, in one")) + len("```sql\n") :]
    return block[: block.index("\n```")]


def test_the_documented_partitioning_keeps_every_answer(postgres_url: str) -> None:
    """docs/ledger.md's partitioning, run as written on a ledger, changes no report, and replicas
    go on writing into the partitioned table (a run written twice is still written once)."""
    cli("demo", "--ledger", postgres_url)
    asked = (("report", "--by", "task,model"), ("report", "--by", "hour,tenant"), ("outcomes",), ("tasks",))
    before = [cli_json(*args, "--ledger", postgres_url) for args in asked]
    conn = _postgres.connect(postgres_url)
    try:
        conn.raw.execute(_partitioning_sql())
        partitions = conn.execute(
            "SELECT COUNT(*) FROM pg_inherits WHERE inhparent = 'calls'::regclass"
        ).fetchone()
        assert partitions == (3,)
        calls = conn.execute(
            "SELECT span_id, trace_id, task_id, task_name, root_id, root_name, start_ns FROM calls"
        ).fetchall()
    finally:
        conn.close()
    assert [cli_json(*args, "--ledger", postgres_url) for args in asked] == before
    # The same rows again (a batch retried) and one more run of the demo.
    rows = _postgres.connect(postgres_url)
    try:
        full = rows.execute("SELECT * FROM calls").fetchall()
        _postgres.write(rows, full, [])
    finally:
        rows.close()
    cli("demo", "--ledger", postgres_url)
    total = cli_json("report", "--ledger", postgres_url)[-1]
    assert (total["calls"], Decimal(total["cost_usd"])) == (2 * len(calls), 2 * ONE_RUN_USD)


def test_an_application_whose_ledger_is_down_runs_and_exits_in_time() -> None:
    """A program whose PostgreSQL ledger refuses connections runs every call, exits 0 within the
    ledger's exit bound, and says once why and once how many rows it could not write."""
    url = "postgresql://app:pw-never-shown@127.0.0.1:1/ledger"
    began = time.monotonic()
    run = spawn_python(AGENT, env={"TOKENTRACE_LEDGER": url})
    took = time.monotonic() - began
    assert run.returncode == 0, run.stderr
    assert took < 20
    lines = [line for line in run.stderr.splitlines() if line.startswith("tokentrace: ")]
    ledger_lines = [line for line in lines if "ledger" in line]
    assert len(ledger_lines) == 2
    assert ledger_lines[0].startswith(
        "tokentrace: cannot reach ledger postgresql://app:***@127.0.0.1:1/ledger"
    )
    # The agent's 10 calls and 13 task runs (3 tickets of 4 tasks, and one autocompletion).
    assert ledger_lines[1].startswith("tokentrace: 23 ledger rows were not written: cannot reach ledger")
    assert "postgresql://app:***@127.0.0.1:1/ledger" in run.stderr
    assert "pw-never-shown" not in run.stderr + run.stdout
