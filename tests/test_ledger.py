"""The embedded ledger, written by real instrumented programs (fresh processes, real SDKs)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import (
    anthropic_client,
    chat_completion_body,
    message_body,
    openai_client,
    recorded,
    request_kwargs,
    synthetic,
)
from tests.support.proc import ROOT, run_python
from tokentrace import pricing
from tokentrace._telemetry import providers as _telemetry
from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger import LedgerExporter, _report, _whatif
from tokentrace.ledger import _writer as _ledger

# The demo agent: 3 tickets (classify with one 429 retry on the first, draft a reply, summarise)
# and one autocompletion on a model with no price, all replayed from recorded responses.
AGENT = """
import tokentrace
from tokentrace._cli import demo as _demo
tokentrace.instrument("openai", "anthropic")
with _demo.replay_server() as url:
    _demo.run_agent(url)
"""


CACHED_CHAT = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_prompt_caching_cache_read.yaml"


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def agent_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger") / "agent.db"
    run_python(AGENT, env={"TOKENTRACE_LEDGER": str(path)})
    return path


def test_nothing_configured_writes_every_call_and_task_to_the_ledger(agent_ledger: Path) -> None:
    """instrument() alone records each call's exact tokens, cost and status, flushed at exit."""
    calls = _rows(
        agent_ledger,
        "SELECT task_name, root_name, model, input_tokens, cache_read_tokens, output_tokens, cost_usd, "
        "cost_pico, cost_status, cost_source, retries FROM calls ORDER BY start_ns",
    )
    assert len(calls) == 10
    classify, draft, summarise = calls[0], calls[1], calls[2]
    assert classify == (
        "classify",
        "resolve_ticket",
        "gpt-4o-2024-08-06",
        1220,
        1152,
        100,
        "0.00261",
        2_610_000_000,
        "priced",
        "genai-prices",
        1,
    )
    assert draft == (
        "draft_reply",
        "resolve_ticket",
        "claude-sonnet-4-20250514",
        2066,
        2055,
        100,
        "0.0021495",
        2_149_500_000,
        "priced",
        "genai-prices",
        0,
    )
    assert summarise == (
        "summarise",
        "resolve_ticket",
        "gpt-3.5-turbo-0125",
        13,
        0,
        20,
        "0.0000365",
        36_500_000,
        "priced",
        "genai-prices",
        0,
    )
    assert calls[-1] == (
        "autocomplete",
        "autocomplete",
        "davinci:2023-07-21-v2",
        8,
        0,
        16,
        None,
        None,
        "unpriced",
        None,
        0,
    )


def test_task_rows_carry_inclusive_totals_and_the_tree(agent_ledger: Path) -> None:
    """Each task run is a row with its parent, root, outcome and rolled-up totals."""
    roots = _rows(
        agent_ledger,
        "SELECT name, llm_calls, retries, cost_usd, input_tokens, outcome, feature, user_id, service "
        "FROM tasks WHERE parent_id IS NULL ORDER BY start_ns",
    )
    assert roots == [
        ("resolve_ticket", 3, 1, "0.004796", 3299, "success", "support", "user-17", "unknown_service:python"),
        ("resolve_ticket", 3, 0, "0.004796", 3299, "success", "support", "user-42", "unknown_service:python"),
        ("resolve_ticket", 3, 0, "0.004796", 3299, "success", "support", "user-17", "unknown_service:python"),
        ("autocomplete", 1, 0, "0", 8, "success", "editor", "user-42", "unknown_service:python"),
    ]
    children = _rows(
        agent_ledger,
        "SELECT c.name, p.name, c.root_id = p.task_id FROM tasks c JOIN tasks p ON c.parent_id = p.task_id",
    )
    assert sorted(children) == sorted(
        [(n, "resolve_ticket", 1) for n in ("classify", "draft_reply", "summarise")] * 3
    )
    orphans = _rows(agent_ledger, "SELECT COUNT(*) FROM calls WHERE root_id IS NULL")
    assert orphans == [(0,)]


def test_the_schema_is_versioned(agent_ledger: Path) -> None:
    """The ledger records its schema version; a newer one is refused with a clear error."""
    assert _rows(agent_ledger, "SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(_ledger.SCHEMA_VERSION),)
    ]
    newer = agent_ledger.parent / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    with pytest.raises(ConfigurationError, match="schema version 99, newer than this tokentrace reads"):
        _ledger.connect(newer)


def test_a_schema_4_ledger_gains_the_filter_indexes(agent_ledger: Path, tmp_path: Path) -> None:
    """Version 5 adds indexes on the calls' feature, user and tenant, for the reports and the
    dashboard narrowed to one; a schema 4 ledger gets them when a program writes to it."""
    old = tmp_path / "old.db"
    shutil.copy(agent_ledger, old)
    added = ["calls_feature", "calls_tenant", "calls_user"]
    with sqlite3.connect(old) as conn:
        for index in added:
            conn.execute(f"DROP INDEX {index}")
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    rows = _rows(old, "SELECT * FROM calls ORDER BY span_id")
    _ledger.connect(old).close()
    indexes = "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ({}) ORDER BY name"
    assert _rows(old, indexes.format(", ".join(f"'{i}'" for i in added))) == [(i,) for i in added]
    assert _rows(old, "SELECT value FROM meta WHERE key = 'schema_version'") == [("6",)]
    assert _rows(old, "SELECT * FROM calls ORDER BY span_id") == rows
    plan = _rows(old, "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM calls WHERE user_id = 'u'")
    assert "calls_user" in str(plan)


def test_two_processes_writing_one_ledger_lose_nothing(tmp_path: Path) -> None:
    """Two processes exporting small batches into one ledger at the same time keep every row."""
    path = tmp_path / "shared.db"
    code = """
import tokentrace
from tokentrace._cli import demo as _demo
tokentrace.instrument("openai", "anthropic")
with _demo.replay_server() as url:
    for _ in range(15):
        _demo.run_agent(url)
"""
    env = {
        "TOKENTRACE_LEDGER": str(path),
        "OTEL_BSP_SCHEDULE_DELAY": "2",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",
        "PYTHONPATH": str(ROOT),
    }
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**_base_env(), **env}) for _ in range(2)
    ]
    assert [p.wait(timeout=240) for p in procs] == [0, 0]
    # 2 processes x 15 runs x (3 tickets x 3 calls + 1 autocompletion)
    assert _rows(path, "SELECT COUNT(*), COUNT(DISTINCT span_id) FROM calls") == [(300, 300)]
    # 2 x 15 x (3 x 4 tasks + 1)
    assert _rows(path, "SELECT COUNT(*) FROM tasks") == [(390,)]
    assert _rows(path, "SELECT SUM(cost_pico) FROM calls") == [(2 * 15 * 3 * 4_796_000_000,)]


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))}


def test_exporter_none_writes_no_ledger(tmp_path: Path) -> None:
    """TOKENTRACE_EXPORTER=none turns the default ledger off."""
    path = tmp_path / "off.db"
    run_python(AGENT, env={"TOKENTRACE_LEDGER": str(path), "TOKENTRACE_EXPORTER": "none"})
    assert not path.exists()


def test_a_cost_a_double_cannot_hold_is_stored_exactly(tmp_path: Path) -> None:
    """A cost with more than 15 significant digits travels as a decimal string and lands exactly."""
    exporter = LedgerExporter(tmp_path / "exact.db")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    rates = pricing.Rates(model="gpt-4o*", input="1.234567891234567", output="3.000000000000007")
    pricing.set_prices([rates])
    interactions = recorded(CACHED_CHAT)
    client = openai_client(Replay(interactions))
    try:
        _telemetry.use_providers(provider, None)
        with tokentrace.task("exact") as task:
            client.chat.completions.create(**request_kwargs(interactions[0], "openai"))
    finally:
        _telemetry.use_providers(None, None)
        pricing.set_prices([])
    expected = task.totals.cost_usd
    assert len(expected.as_tuple().digits) > 15
    (span_cost,) = _rows(tmp_path / "exact.db", "SELECT cost_usd FROM calls")[0]
    assert Decimal(str(span_cost)) == expected
    assert _rows(tmp_path / "exact.db", "SELECT cost_usd FROM tasks") == [(str(expected),)]


def test_the_default_path_follows_tokentrace_ledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """TOKENTRACE_LEDGER wins; otherwise the ledger lives in the user's data directory; a
    PostgreSQL URL there is the default ledger, and the file stays in the data directory."""
    monkeypatch.setenv("TOKENTRACE_LEDGER", str(tmp_path / "x.db"))
    assert tokentrace.ledger.default_path() == tmp_path / "x.db"
    assert LedgerExporter().path == tmp_path / "x.db"
    monkeypatch.delenv("TOKENTRACE_LEDGER")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert tokentrace.ledger.default_path() == tmp_path / "tokentrace" / "ledger.db"
    monkeypatch.setenv("TOKENTRACE_LEDGER", " postgresql://app@db.internal:5432/ledger ")
    assert tokentrace.ledger.default_path() == tmp_path / "tokentrace" / "ledger.db"
    exporter = LedgerExporter()
    assert (exporter.path, exporter.target) == (None, "postgresql://app@db.internal:5432/ledger")


def _open_at_once(path: str, barrier: Any) -> None:
    barrier.wait()
    _ledger.connect(path).close()


def test_many_processes_opening_a_new_ledger_at_once_all_succeed(tmp_path: Path) -> None:
    """Eight processes creating one new ledger at the same moment (pool workers) all open it."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    barrier = ctx.Barrier(8)
    path = str(tmp_path / "new.db")
    procs = [ctx.Process(target=_open_at_once, args=(path, barrier)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 8
    assert _rows(Path(path), "SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(_ledger.SCHEMA_VERSION),)
    ]


def test_audio_counts_are_kept_so_history_reprices_exactly(tmp_path: Path) -> None:
    """A gpt-audio call's audio counts land in the ledger beside its buckets, and whatif re-prices
    it at its audio rates: the same $0.06305 it was charged, not the $0.008 of its tokens as text."""
    path = tmp_path / "audio.db"
    exporter = LedgerExporter(path)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    usage = {
        "prompt_tokens": 2_000,
        "completion_tokens": 300,
        "prompt_tokens_details": {"cached_tokens": 1_024, "audio_tokens": 1_500},
        "completion_tokens_details": {"audio_tokens": 200},
    }
    body = chat_completion_body(usage, model="gpt-audio")
    client = openai_client(Replay(synthetic("https://api.openai.com/v1/chat/completions", body)))
    try:
        _telemetry.use_providers(provider, None)
        with tokentrace.task("voice"):
            client.chat.completions.create(model="gpt-audio", messages=[{"role": "user", "content": "hi"}])
    finally:
        _telemetry.use_providers(None, None)
    assert _rows(path, "SELECT cost_usd, web_search_requests, modalities FROM calls") == [
        ("0.06305", 0, '{"audio_input": 1500, "audio_output": 200}')
    ]
    conn = _ledger.connect(path)
    _groups, total = _whatif.whatif(conn, ["model"], _report.Filters(), model=None, provider=None)
    assert (total.current_usd, total.whatif_usd, total.not_repriced) == (
        Decimal("0.06305"),
        Decimal("0.06305"),
        0,
    )
    (group,), total = _whatif.whatif(
        conn, ["model"], _report.Filters(), model="gpt-audio-mini", provider=None
    )
    # gpt-audio-mini: 500 x $0.60 + 1,500 x $10 + 100 x $2.40 + 200 x $20 per million.
    assert group.whatif_usd == total.whatif_usd == Decimal("0.01954")


def test_web_searches_are_kept_so_history_reprices_them(tmp_path: Path) -> None:
    """A Claude call with 3 web searches keeps them in the ledger, and whatif re-prices the
    searches with the tokens: $0.0345 (1,000 x $3 + 100 x $15 per million + 3 x $0.01)."""
    path = tmp_path / "search.db"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(LedgerExporter(path)))
    usage = {"input_tokens": 1000, "output_tokens": 100, "server_tool_use": {"web_search_requests": 3}}
    body = message_body(usage, model="claude-sonnet-4-20250514")
    client = anthropic_client(Replay(synthetic("https://api.anthropic.com/v1/messages", body)))
    try:
        _telemetry.use_providers(provider, None)
        with tokentrace.task("search"):
            client.messages.create(
                model="claude-sonnet-4-20250514",
                max_tokens=100,
                messages=[{"role": "user", "content": "news?"}],
            )
    finally:
        _telemetry.use_providers(None, None)
    assert _rows(path, "SELECT cost_usd, web_search_requests, modalities FROM calls") == [("0.0345", 3, None)]
    _groups, total = _whatif.whatif(
        _ledger.connect(path), ["model"], _report.Filters(), model=None, provider=None
    )
    assert (total.current_usd, total.whatif_usd) == (Decimal("0.0345"), Decimal("0.0345"))


def test_agent_and_workflow_task_spans_land_as_task_rows(tmp_path: Path) -> None:
    """Task spans carry gen_ai.operation.name (invoke_agent, invoke_workflow), yet each is a task
    row and each call a call row."""
    exporter = LedgerExporter(tmp_path / "kinds.db")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    interactions = recorded(CACHED_CHAT)
    client = openai_client(Replay(interactions * 2))
    try:
        _telemetry.use_providers(provider, None)
        with tokentrace.task("agent", kind="agent", conversation_id="c-1"):
            client.chat.completions.create(**request_kwargs(interactions[0], "openai"))
            with tokentrace.task("step"):
                client.chat.completions.create(**request_kwargs(interactions[0], "openai"))
    finally:
        _telemetry.use_providers(None, None)
    tasks = _rows(tmp_path / "kinds.db", "SELECT name, llm_calls, cost_usd FROM tasks ORDER BY name")
    assert tasks == [("agent", 2, "0.00522"), ("step", 1, "0.00261")]
    calls = _rows(tmp_path / "kinds.db", "SELECT operation, task_name FROM calls ORDER BY task_name")
    assert calls == [("chat", "agent"), ("chat", "step")]
