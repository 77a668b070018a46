"""The ``tokentrace`` command, run through its installed entry point on a ledger that a real
instrumented program wrote (the demo agent over recorded OpenAI and Anthropic responses)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import tokentrace
from tests.support import postgres
from tests.support.cassettes import Replay
from tests.support.clients import openai_client, recorded, request_kwargs
from tests.support.proc import ROOT, run_python
from tests.support.stores import STORES
from tests.test_ledger import AGENT
from tokentrace._telemetry import providers as _telemetry
from tokentrace.ledger import LedgerExporter

STREAM = "dd-trace-py/tests/contrib/litellm/cassettes/completion_stream.yaml"  # 13 in, 20 out, $0.0000365

EXE = shutil.which("tokentrace", path=str(Path(sys.executable).parent)) or "tokentrace"


def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_", "COLUMNS"))}
    proc = subprocess.run([EXE, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def cli_json(*args: str) -> Any:
    return json.loads(cli(*args, "--format", "json").stdout)


@pytest.fixture(scope="module", params=STORES)
def ledger(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo agent's ledger, written by the agent itself to a file or to PostgreSQL: every
    test that reads it runs on both."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("cli") / "agent.db"
        run_python(AGENT, env={"TOKENTRACE_LEDGER": str(path)})
        yield str(path)
        return
    with postgres.database(request.getfixturevalue("postgres_server")) as url:
        run_python(AGENT, env={"TOKENTRACE_LEDGER": url})
        yield url


def test_report_by_task_gives_exact_cost_tokens_and_retries(ledger: str) -> None:
    """report --by task sums each task's calls exactly, most expensive first, with a total."""
    rows = cli_json("report", "--ledger", ledger, "--by", "task")
    by_task = {r["task"]: r for r in rows}
    assert [r["task"] for r in rows] == ["classify", "draft_reply", "summarise", "autocomplete", "TOTAL"]
    classify = by_task["classify"]
    assert (classify["calls"], classify["cost_usd"], classify["retries"]) == (3, "0.00783", 1)
    assert (classify["input_tokens"], classify["cache_read_tokens"], classify["output_tokens"]) == (
        3660,
        3456,
        300,
    )
    assert classify["cached_share"] == 0.9443
    assert by_task["autocomplete"]["unpriced_calls"] == 1
    assert by_task["autocomplete"]["cost_usd"] == "0"
    total = by_task["TOTAL"]
    assert (total["calls"], total["cost_usd"], total["unpriced_calls"], total["runs"]) == (
        10,
        "0.014388",
        1,
        4,
    )


def test_report_gives_cost_per_root_task_run(ledger: str) -> None:
    """Cost per task run is over root task runs: each ticket costs 0.004796 at every percentile."""
    rows = cli_json("report", "--ledger", ledger, "--by", "root")
    ticket = next(r for r in rows if r["root"] == "resolve_ticket")
    assert ticket["runs"] == 3
    assert ticket["cost_per_run_usd"] == {
        "mean": "0.004796",
        "p50": "0.004796",
        "p95": "0.004796",
        "p99": "0.004796",
    }


def test_report_filters_by_dimension_and_time(ledger: str) -> None:
    """--where keeps matching calls only; --since in the future keeps none."""
    rows = cli_json("report", "--ledger", ledger, "--by", "user,model", "--where", "feature=editor")
    assert [(r["user"], r["model"], r["calls"]) for r in rows[:-1]] == [
        ("user-42", "davinci:2023-07-21-v2", 1)
    ]
    empty = cli_json("report", "--ledger", ledger, "--since", "2999-01-01")
    assert empty == []


def test_report_as_csv_and_as_a_table(ledger: str) -> None:
    """CSV has a header and one line per group plus the total; the table names every group."""
    lines = cli("report", "--ledger", ledger, "--by", "provider", "--format", "csv").stdout.splitlines()
    assert lines[0].startswith("provider,calls,cost_usd,runs,")
    assert [line.split(",")[0] for line in lines[1:]] == ["openai", "anthropic", "TOTAL"]
    table = cli("report", "--ledger", ledger, "--by", "model").stdout
    for model in ("gpt-4o-2024-08-06", "claude-sonnet-4-20250514", "davinci:2023-07-21-v2", "TOTAL"):
        assert model in table
    assert "unpriced" in table


def test_a_stream_read_after_its_task_ended_is_counted_in_its_run(tmp_path: Path) -> None:
    """A stream returned from a nested task and read after its whole tree ended carries its task
    and root into the ledger, and report --by root counts it in that run."""
    path = tmp_path / "late.db"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(LedgerExporter(path)))
    (interaction,) = recorded(STREAM)
    client = openai_client(Replay([interaction]))
    try:
        _telemetry.use_providers(provider, None)
        with tokentrace.task("answer") as answer, tokentrace.task("draft") as draft:
            stream = client.chat.completions.create(**request_kwargs(interaction, "openai"))
        assert len(list(stream)) > 1
    finally:
        _telemetry.use_providers(None, None)
        provider.shutdown()
    conn = sqlite3.connect(path)
    assert conn.execute(
        "SELECT task_id, task_name, root_id, root_name, input_tokens, output_tokens, cost_usd, stream_end "
        "FROM calls"
    ).fetchall() == [(draft.id, "draft", answer.id, "answer", 13, 20, "0.0000365", "completed")]
    # Task rows hold the totals at each task's end, before the stream was read.
    assert conn.execute(
        "SELECT task_id, name, root_id, root_name, llm_calls, cost_usd FROM tasks ORDER BY start_ns"
    ).fetchall() == [
        (answer.id, "answer", answer.id, "answer", 0, "0"),
        (draft.id, "draft", answer.id, "answer", 0, "0"),
    ]
    conn.close()
    rows = cli_json("report", "--ledger", str(path), "--by", "root")
    assert [(r["root"], r["calls"], r["cost_usd"], r["runs"], r["cost_per_run_usd"]) for r in rows] == [
        ("answer", 1, "0.0000365", 1, dict.fromkeys(("mean", "p50", "p95", "p99"), "0.0000365")),
        ("TOTAL", 1, "0.0000365", 1, dict.fromkeys(("mean", "p50", "p95", "p99"), "0.0000365")),
    ]


def test_tasks_and_show_give_a_run_as_a_tree_with_branch_costs(ledger: str) -> None:
    """tasks lists root runs newest first; show gives one run's nested tasks, calls and branch costs."""
    runs = cli_json("tasks", "--ledger", ledger)
    assert [r["name"] for r in runs] == ["autocomplete", "resolve_ticket", "resolve_ticket", "resolve_ticket"]
    first_ticket = runs[-1]
    assert (first_ticket["retries"], first_ticket["cost_usd"]) == (1, "0.004796")
    tree = cli_json("show", "--ledger", ledger, first_ticket["task_id"][:8])
    assert (tree["name"], tree["branch_cost_usd"], tree["branch_llm_calls"]) == (
        "resolve_ticket",
        "0.004796",
        3,
    )
    branches = [(c["name"], c["branch_cost_usd"], c["calls"][0]["retries"]) for c in tree["children"]]
    assert branches == [
        ("classify", "0.00261", 1),
        ("draft_reply", "0.0021495", 0),
        ("summarise", "0.0000365", 0),
    ]
    text = cli("show", "--ledger", ledger, first_ticket["task_id"]).stdout
    assert "classify  $0.002610" in text
    # Piped, the tree fits 80 columns: a call's parts that do not fit go on the next line, whole.
    assert (
        "└── chat gpt-4o-2024-08-06  $0.002610  1,220 in (1,152 cached) / 100 out\n│       retries 1\n"
        in text
    )


def test_whatif_reprices_recorded_usage_under_another_model(ledger: str) -> None:
    """whatif --model prices every call's tokens as that model and flags another provider's tokens."""
    rows = {r["model"]: r for r in cli_json("whatif", "--ledger", ledger, "--model", "gpt-4o-mini")}
    gpt4o = rows["gpt-4o-2024-08-06"]
    # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million tokens.
    # Each classify call: 68 x 0.15 + 1152 x 0.075 + 100 x 0.6 = 156.6 micro-dollars.
    assert (gpt4o["current_usd"], gpt4o["whatif_usd"], gpt4o["tokenizer_differs"]) == (
        "0.00783",
        "0.0004698",
        0,
    )
    assert rows["claude-sonnet-4-20250514"]["tokenizer_differs"] == 3
    assert rows["davinci:2023-07-21-v2"]["not_repriced"] == 1
    assert rows["TOTAL"]["current_usd"] == "0.014388"


def test_whatif_with_a_price_file_reprices_each_model(ledger: str, tmp_path: Path) -> None:
    """whatif --prices re-prices each call's own model under a negotiated price sheet."""
    sheet = tmp_path / "prices.json"
    sheet.write_text(json.dumps({"discounts": [{"provider": "anthropic", "multiplier": "0.5"}]}))
    rows = {r["model"]: r for r in cli_json("whatif", "--ledger", ledger, "--prices", str(sheet))}
    claude = rows["claude-sonnet-4-20250514"]
    assert (claude["current_usd"], claude["whatif_usd"]) == ("0.0064485", "0.00322425")
    assert rows["gpt-4o-2024-08-06"]["difference_usd"] == "0"


def test_prices_shows_rates_and_their_source() -> None:
    """prices MODEL gives the per-million rates tokentrace would use and where they come from."""
    data = cli_json("prices", "gpt-4o")
    assert (data["provider"], data["source"]) == ("openai", "genai-prices")
    assert data["usd_per_million_tokens"]["input"] == "2.5"
    assert data["usd_per_million_tokens"]["cache_read"] == "1.25"
    assert (data["per_web_search_usd"], data["per_file_search_usd"]) == ("0.01", "0.0025")
    flash = cli_json("prices", "gemini-2.5-flash", "--provider", "gcp.gemini")["usd_per_million_tokens"]
    assert (flash["audio_input"], flash["audio_cache_read"]) == ("1", "0.1")
    missing = cli("prices", "no-such-model-xyz", ok=False)
    assert missing.returncode == 1
    assert "recorded as unpriced" in missing.stderr


def test_prices_says_when_a_time_of_day_price_holds() -> None:
    """prices gives an off-peak or standard DeepSeek price with the hours it holds, and none for gpt-4o."""
    data = cli_json("prices", "deepseek-chat", "--provider", "deepseek")
    since, until = (datetime.fromisoformat(data["in_force"][k]) for k in ("from", "until"))
    assert since <= datetime.now(timezone.utc) < until
    # Standard hours run 00:30-16:30 UTC, off-peak hours the rest of the day, at half the rates.
    standard = since.time().isoformat() == "00:30:00"
    assert (since.time().isoformat(), until.time().isoformat()) == (
        ("00:30:00", "16:30:00") if standard else ("16:30:00", "00:30:00")
    )
    assert data["usd_per_million_tokens"]["input"] == ("0.27" if standard else "0.135")
    assert "in_force" not in cli_json("prices", "gpt-4o")


def test_prices_gives_a_service_tiers_own_rates() -> None:
    """prices --service-tier: gpt-5's flex rates (half the standard ones) and the tier they are for;
    a tier the database has no rates for gets the standard rates, with no tier named."""
    flex = cli_json("prices", "gpt-5", "--service-tier", "flex")
    scale = cli_json("prices", "gpt-5", "--service-tier", "scale")
    assert flex["service_tier"] == "flex"
    assert (flex["usd_per_million_tokens"]["input"], flex["usd_per_million_tokens"]["output"]) == (
        "0.625",
        "5",
    )
    assert flex["in_force"] == {"from": "2026-10-12T00:00:00+00:00", "until": None}
    assert scale["service_tier"] is None
    assert (scale["usd_per_million_tokens"]["input"], scale["usd_per_million_tokens"]["output"]) == (
        "1.25",
        "10",
    )
    table = cli("prices", "gpt-5", "--service-tier", "priority").stdout
    assert "gpt-5 (openai): genai-prices, matched gpt-5, priority tier" in table


def test_export_gives_the_same_records_as_json_lines(ledger: str) -> None:
    """export writes one JSON object per call, with the ledger's columns."""
    lines = cli("export", "--ledger", ledger).stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 10
    assert records[0]["task_name"] == "classify"
    assert records[0]["cost_usd"] == "0.00261"
    tasks = cli("export", "--ledger", ledger, "--table", "tasks").stdout.splitlines()
    assert len(tasks) == 13


def test_bad_input_gets_a_clear_error_and_exit_code_2(ledger: str, tmp_path: Path) -> None:
    """A missing ledger, an unknown dimension or an unreadable time says what to change."""
    missing = cli("report", "--ledger", str(tmp_path / "none.db"), ok=False)
    assert (missing.returncode, missing.stderr.strip()) == (
        2,
        f"tokentrace: no ledger at {tmp_path / 'none.db'}: "
        "run an instrumented program first, or pass --ledger",
    )
    bad_by = cli("report", "--ledger", ledger, "--by", "colour", ok=False)
    assert bad_by.returncode == 2
    assert "cannot group by colour" in bad_by.stderr
    bad_time = cli("report", "--ledger", ledger, "--since", "last tuesday", ok=False)
    assert bad_time.returncode == 2
    assert "cannot read time 'last tuesday'" in bad_time.stderr
    unknown_task = cli("show", "--ledger", ledger, "ffff0000", ok=False)
    assert "no task run with id 'ffff0000'" in unknown_task.stderr


def test_demo_fills_a_ledger_and_reports_it(tmp_path: Path) -> None:
    """tokentrace demo runs offline, writes its ledger and prints the report."""
    path = tmp_path / "demo.db"
    out = cli("demo", "--ledger", str(path)).stdout
    assert "TOTAL" in out
    assert "$0.014388" in out
    assert "1 call(s) could not be priced" in out
    assert path.exists()


def test_python_m_tokentrace_is_the_same_command() -> None:
    """python -m tokentrace runs the same command line."""
    proc = subprocess.run(
        [sys.executable, "-m", "tokentrace", "--version"], capture_output=True, text=True, check=True
    )
    assert proc.stdout.startswith("tokentrace ")
