"""Limits across replicas: processes started together share one allowance through the ledger's
store (a SQLite file, PostgreSQL), exactly, whatever the interleaving."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.support.proc import start_python
from tokentrace.ledger import _postgres
from tokentrace.testing import Recorded, ReplayServer

REPLICAS = 3
CALLS_EACH = 8
# gpt-4o-mini at $0.15 / $0.60 per million: the request estimates at 13 input tokens (o200k) and
# its max_tokens=10, and the response reports exactly those, so every call costs its estimate.
INPUT, OUTPUT = 13, 10
CALL_COST = Decimal("0.00000795")
CALL_PICO = 7_950_000
WINDOW_START = 1_800_000_000  # a multiple of 3600: the replicas' clock is pinned inside one hour

BODY = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": INPUT, "completion_tokens": OUTPUT, "total_tokens": INPUT + OUTPUT},
}

REPLICA = """
import json, os, sys, time
from decimal import Decimal
from pathlib import Path

import openai
import tokentrace
from tokentrace._accounting import limits as _limits

_limits.clock = lambda: float(os.environ["LIMITS_NOW"])
limit = json.loads(os.environ["LIMITS_LIMIT"])
if "max_cost_usd" in limit:
    limit["max_cost_usd"] = Decimal(limit["max_cost_usd"])
tokentrace.configure(exporter="none", limits=[tokentrace.Limit(per="tenant", window="1h", **limit)])
tokentrace.instrument("openai")
client = openai.OpenAI(api_key="sk-test", base_url=os.environ["LIMITS_SERVER"], max_retries=0)
ready = Path(os.environ["LIMITS_READY"])
(ready / os.environ["LIMITS_INDEX"]).touch()
while len(list(ready.iterdir())) < int(os.environ["LIMITS_REPLICAS"]):
    time.sleep(0.002)
sent = refused = 0
limits = []
for _ in range(int(os.environ["LIMITS_CALLS"])):
    try:
        with tokentrace.task("replica", tenant="acme"):
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "Say hello to the fleet."}],
                max_tokens=10,
            )
        sent += 1
    except tokentrace.BudgetExceeded as exc:
        refused += 1
        limits.append(exc.breach.limit)
print(json.dumps({"sent": sent, "refused": refused, "limits": sorted(set(limits))}))
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ledger the replicas share: a file, or a PostgreSQL database of the test's own."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


def _counters(ledger: str) -> list[tuple[Any, ...]]:
    sql = (
        "SELECT limit_key, value, window_start, calls, tokens, cost_pico, reserved_tokens, reserved_pico "
        "FROM limit_usage ORDER BY limit_key, value, window_start"
    )
    if _postgres.is_url(ledger):
        conn = _postgres.connect(ledger)
        try:
            return [tuple(row) for row in conn.execute(sql).fetchall()]
        finally:
            conn.close()
    with sqlite3.connect(ledger) as conn:
        return conn.execute(sql).fetchall()


def _replicas(ledger: str, limit: dict[str, Any], tmp_path: Path) -> tuple[list[dict[str, Any]], int]:
    """Run the replicas together against one replay server; their reports and the requests it got."""
    ready = tmp_path / "ready"
    ready.mkdir()
    body = json.dumps(BODY).encode()
    with ReplayServer({"/v1/chat/completions": [Recorded(body)]}) as server:
        env = {
            "TOKENTRACE_LEDGER": ledger,
            "LIMITS_SERVER": server.url + "/v1",
            "LIMITS_READY": str(ready),
            "LIMITS_REPLICAS": str(REPLICAS),
            "LIMITS_CALLS": str(CALLS_EACH),
            "LIMITS_LIMIT": json.dumps(limit),
            "LIMITS_NOW": str(WINDOW_START + 1234),
        }
        procs = [start_python(REPLICA, {**env, "LIMITS_INDEX": str(i)}) for i in range(REPLICAS)]
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            reports.append(json.loads(out))
        return reports, len(server.requests)


def test_the_estimate_is_the_real_cost() -> None:
    """The replicas' request estimates at 13 + 10 tokens and $0.00000795, what its response costs."""
    from tokentrace._core import requests as _requests

    kwargs = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hello to the fleet."}],
        "max_tokens": 10,
    }
    estimate = _requests.estimate("gpt-4o-mini", "openai", "http://127.0.0.1:1/v1", kwargs)
    assert (estimate.input_tokens, estimate.output_tokens, estimate.cost_usd) == (INPUT, OUTPUT, CALL_COST)


def test_three_replicas_share_ten_calls_an_hour(ledger: str, tmp_path: Path) -> None:
    """3 replicas x 8 calls for one tenant under max_llm_calls=10 per hour: exactly 10 requests
    reach the server and exactly 14 calls raise BudgetExceeded."""
    reports, requests = _replicas(ledger, {"max_llm_calls": 10}, tmp_path)
    assert requests == 10, (reports, _counters(ledger))
    assert sum(r["sent"] for r in reports) == 10
    assert sum(r["refused"] for r in reports) == 14
    assert {limit for r in reports for limit in r["limits"]} == {"max_llm_calls"}
    assert _counters(ledger) == [
        ("per=tenant window=1h", "acme", WINDOW_START, 10, 10 * (INPUT + OUTPUT), 10 * CALL_PICO, 0, 0)
    ]


def test_three_replicas_share_one_cost_limit(ledger: str, tmp_path: Path) -> None:
    """Under max_cost_usd of 10.5 calls' cost, exactly 10 calls leave: the money spent is within
    one call's estimate of the limit, never over it."""
    limit = CALL_COST * Decimal("10.5")
    reports, requests = _replicas(ledger, {"max_cost_usd": str(limit)}, tmp_path)
    assert requests == 10, (reports, _counters(ledger))
    assert sum(r["sent"] for r in reports) == 10
    assert sum(r["refused"] for r in reports) == 14
    assert {limit for r in reports for limit in r["limits"]} == {"max_cost_usd"}
    spent = requests * CALL_COST
    assert limit - CALL_COST < spent <= limit
    assert _counters(ledger) == [
        ("per=tenant window=1h", "acme", WINDOW_START, 10, 10 * (INPUT + OUTPUT), 10 * CALL_PICO, 0, 0)
    ]


MIGRATE = """
import os, time
from pathlib import Path
from tokentrace.ledger import _postgres

ready = Path(os.environ["LIMITS_READY"])
(ready / os.environ["LIMITS_INDEX"]).touch()
while len(list(ready.iterdir())) < 3:
    time.sleep(0.001)
conn = _postgres.connect(os.environ["TOKENTRACE_LEDGER"])
_postgres.migrate(conn)
print(_postgres.version(conn))
"""


def test_replicas_migrating_a_new_postgresql_ledger_together_all_succeed(
    postgres_server: str, tmp_path: Path
) -> None:
    """Three processes creating one new ledger at once, five times over: each finds it at version 6
    (one waits for another's migration and then sees its tables)."""
    from tests.support import postgres

    for attempt in range(5):
        ready = tmp_path / str(attempt)
        ready.mkdir()
        with postgres.database(postgres_server) as url:
            env = {"TOKENTRACE_LEDGER": url, "LIMITS_READY": str(ready)}
            procs = [start_python(MIGRATE, {**env, "LIMITS_INDEX": str(i)}) for i in range(3)]
            outcomes = [(proc.communicate(timeout=60), proc.returncode) for proc in procs]
            assert [(out, code) for (out, _), code in outcomes] == [("6\n", 0)] * 3, outcomes
