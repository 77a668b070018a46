"""Limits across replicas, in one process: which calls a limit applies to, separate allowances,
windows, settling to the real cost, an unreachable store, validation and fault injection."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

import tokentrace
from tokentrace._accounting import limits as _limits
from tokentrace._foundation import semconv as sc
from tokentrace.exceptions import ConfigurationError
from tokentrace.ledger._limits import Counters, Usage
from tokentrace.testing import Recorded, ReplayServer, capture, inject_fault

NOW = 1_800_000_000 + 1234  # inside the clock hour that starts at 1_800_000_000
HOUR = 1_800_000_000
DAY = 1_799_971_200  # the UTC day NOW is in: 2027-01-15
# gpt-4o-mini at $0.15 / $0.60 per million. The request estimates at 13 input tokens and its
# max_tokens=10 (23 tokens, 7,950,000 picodollars); the response reports 20 input and 4 output
# tokens (24 tokens, 5,400,000 picodollars), what the call is charged once it has returned.
EST_TOKENS, EST_PICO = 23, 7_950_000
REAL_TOKENS, REAL_PICO = 24, 5_400_000
KWARGS: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello to the fleet."}],
    "max_tokens": 10,
}
BODY = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24},
}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """The ledger holding the counters: a file, or a PostgreSQL database of the test's own."""
    if request.param == "sqlite":
        return tmp_path / "ledger.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture(autouse=True)
def _pinned_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_limits, "clock", lambda: float(NOW))
    yield
    tokentrace.configure(limits=[])


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer({"/v1/chat/completions": [Recorded(json.dumps(BODY).encode())]}) as running:
        yield running


@pytest.fixture
def client(server: ReplayServer) -> Any:
    server.requests.clear()
    return openai.OpenAI(api_key="sk-test", base_url=server.url + "/v1", max_retries=0)


def _limit(store: Path | str, *limits: tokentrace.Limit) -> None:
    tokentrace.configure(ledger=store, limits=list(limits))


def _call(client: Any, **task: Any) -> str:
    """One call, in a task with ``task``'s dimensions when given: ``sent`` or the refusing limit."""
    try:
        if task:
            with tokentrace.task(task.pop("name", "job"), **task):
                client.chat.completions.create(**KWARGS)
        else:
            client.chat.completions.create(**KWARGS)
    except tokentrace.BudgetExceeded as exc:
        return f"refused {exc.breach.limit}"
    return "sent"


def _usage(store: Path | str, key: str, value: str, window_start: int = HOUR) -> Usage | None:
    counters = Counters(store)
    try:
        return counters.usage((key, value, window_start))
    finally:
        counters.close()


def test_each_tenant_has_its_own_allowance(store: Path | str, client: Any, server: ReplayServer) -> None:
    """Under 2 calls per tenant, acme's third call is refused while beta's calls still go."""
    _limit(store, tokentrace.Limit(per="tenant", max_llm_calls=2, window="1h"))
    outcomes = [_call(client, tenant=tenant) for tenant in ("acme", "acme", "acme", "beta", "beta")]
    assert outcomes == ["sent", "sent", "refused max_llm_calls", "sent", "sent"]
    assert len(server.requests) == 4
    assert _usage(store, "per=tenant window=1h", "acme") == Usage(2, 2 * REAL_TOKENS, 2 * REAL_PICO, 0, 0)
    assert _usage(store, "per=tenant window=1h", "beta") == Usage(2, 2 * REAL_TOKENS, 2 * REAL_PICO, 0, 0)


def test_the_counter_holds_exactly_the_recorded_cost(store: Path | str, client: Any) -> None:
    """After three calls the counter row holds the calls' real tokens and their recorded cost in
    picodollars (not their estimates), and nothing reserved."""
    _limit(store, tokentrace.Limit(max_cost_usd="1", window="1d"))
    with capture() as cap:
        assert [_call(client) for _ in range(3)] == ["sent"] * 3
    recorded = sum(Decimal(str(s.attributes[sc.COST_USD])) for s in cap.call_spans() if s.attributes)
    assert recorded == Decimal("0.0000162")
    assert _usage(store, "per=* window=1d", "*", DAY) == Usage(3, 3 * REAL_TOKENS, 16_200_000, 0, 0)


def test_a_filter_limits_only_its_calls(sqlite_store: Path, client: Any) -> None:
    """A limit on feature 'summarise' refuses its second call and leaves other features' calls alone."""
    _limit(sqlite_store, tokentrace.Limit(max_llm_calls=1, window="1h", feature="summarise"))
    outcomes = [
        _call(client, feature="summarise"),
        _call(client, feature="chat"),
        _call(client, feature="summarise"),
        _call(client, feature="chat"),
        _call(client),
    ]
    assert outcomes == ["sent", "sent", "refused max_llm_calls", "sent", "sent"]
    assert _usage(sqlite_store, "per=* window=1h feature=summarise", "*") == Usage(
        1, REAL_TOKENS, REAL_PICO, 0, 0
    )


def test_calls_outside_tasks_meet_only_limits_without_per_or_filters(sqlite_store: Path, client: Any) -> None:
    """Outside every task a per-tenant and a filtered limit do not apply; one for all calls does."""
    _limit(
        sqlite_store,
        tokentrace.Limit(per="tenant", max_llm_calls=0, window="1h"),
        tokentrace.Limit(max_llm_calls=0, window="1h", user="u1"),
        tokentrace.Limit(max_llm_calls=2, window="1h"),
    )
    assert [_call(client) for _ in range(3)] == ["sent", "sent", "refused max_llm_calls"]
    assert _call(client, tenant="acme") == "refused max_llm_calls"
    assert _usage(sqlite_store, "per=* window=1h", "*") == Usage(2, 2 * REAL_TOKENS, 2 * REAL_PICO, 0, 0)


def test_a_task_without_the_per_value_is_not_limited(sqlite_store: Path, client: Any) -> None:
    """A per-user limit leaves alone a task with no user; the task name is a dimension too."""
    _limit(
        sqlite_store,
        tokentrace.Limit(per="user", max_llm_calls=0, window="1h"),
        tokentrace.Limit(per="task", max_llm_calls=1, window="1h"),
    )
    assert _call(client, name="draft") == "sent"
    assert _call(client, name="draft") == "refused max_llm_calls"
    assert _call(client, name="review") == "sent"
    assert _call(client, name="review", user_id="u1") == "refused max_llm_calls"


def test_the_allowance_resets_when_the_window_ends(
    store: Path | str, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1h window is a clock hour: its allowance is back at the next hour, in a row of its own."""
    _limit(store, tokentrace.Limit(per="tenant", max_llm_calls=1, window="1h"))
    assert [_call(client, tenant="acme") for _ in range(2)] == ["sent", "refused max_llm_calls"]
    monkeypatch.setattr(_limits, "clock", lambda: float(HOUR + 3599))
    assert _call(client, tenant="acme") == "refused max_llm_calls"
    monkeypatch.setattr(_limits, "clock", lambda: float(HOUR + 3600))
    assert [_call(client, tenant="acme") for _ in range(2)] == ["sent", "refused max_llm_calls"]
    assert _usage(store, "per=tenant window=1h", "acme") == Usage(1, REAL_TOKENS, REAL_PICO, 0, 0)
    later = _usage(store, "per=tenant window=1h", "acme", HOUR + 3600)
    assert later == Usage(1, REAL_TOKENS, REAL_PICO, 0, 0)


def test_token_and_cost_limits_count_reservations(sqlite_store: Path, client: Any) -> None:
    """A token limit refuses the call whose estimate no longer fits: 24 + 24 used, 23 more > 70."""
    _limit(sqlite_store, tokentrace.Limit(max_tokens=70, window="1h"))
    assert [_call(client) for _ in range(3)] == ["sent", "sent", "refused max_tokens"]
    _limit(sqlite_store, tokentrace.Limit(max_cost_usd="0.0000100", window="30m"))
    assert [_call(client) for _ in range(2)] == ["sent", "refused max_cost_usd"]


def test_a_limit_stop_is_described_and_recorded_on_the_span(sqlite_store: Path, client: Any) -> None:
    """The error names the tenant, the limit, the window's use, and the span says which limit stopped it."""
    _limit(sqlite_store, tokentrace.Limit(per="tenant", max_llm_calls=1, window="1h", feature="summarise"))
    _call(client, tenant="acme", feature="summarise")
    with (
        capture() as cap,
        pytest.raises(tokentrace.BudgetExceeded) as info,
        tokentrace.task("job", tenant="acme", feature="summarise"),
    ):
        client.chat.completions.create(**KWARGS)
    breach = info.value.breach
    assert str(info.value) == (
        "tenant 'acme' (feature='summarise') has a limit of max_llm_calls=1 per 1h window: 1 calls used in "
        "this window (calls in flight included), this openai gpt-4o-mini call would bring it to 2 "
        "(estimated before sending); the request was not sent"
    )
    assert (breach.scope_value, breach.window_start, breach.spent, breach.projected) == ("acme", HOUR, 1, 2)
    assert breach.budget == tokentrace.Budget(max_llm_calls=1)
    stopped = cap.call_spans()[-1].attributes or {}
    assert {
        k: v for k, v in stopped.items() if k.startswith(("tokentrace.limit", "tokentrace.budget.b"))
    } == {
        sc.BUDGET_BLOCKED: True,
        sc.LIMIT_KEY: "per=tenant window=1h feature=summarise",
        sc.LIMIT_SCOPE_VALUE: "acme",
        sc.LIMIT_WINDOW_START: HOUR,
    }
    (event,) = [e for e in cap.task_spans()[-1].events if e.name == sc.EVENT_LIMIT_BLOCKED]
    assert dict(event.attributes or {})[sc.BUDGET_LIMIT] == "max_llm_calls"


def test_a_call_outside_tasks_is_described_without_a_task(sqlite_store: Path, client: Any) -> None:
    """A stop outside every task has no task, empty totals, and describes all calls' allowance."""
    _limit(sqlite_store, tokentrace.Limit(max_tokens=0, window="7d"))
    with pytest.raises(tokentrace.BudgetExceeded) as info:
        client.chat.completions.create(**KWARGS)
    breach = info.value.breach
    assert (breach.task, breach.totals, breach.spent, breach.projected) == (None, tokentrace.Totals(), 0, 23)
    assert breach.describe() == (
        "all calls have a limit of max_tokens=0 per 7d window: 0 tokens used in this window (calls in "
        "flight included), this openai gpt-4o-mini call would bring it to 23 (estimated before sending)"
    )


UNREACHABLE = "postgresql://tokentrace:s3cret@127.0.0.1:1/ledger"


def test_an_unreachable_store_lets_calls_go_when_open(
    client: Any, server: ReplayServer, caplog: pytest.LogCaptureFixture
) -> None:
    """on_error='open': calls go unchecked, counted, warned of once, the password never shown."""
    _limit(UNREACHABLE, tokentrace.Limit(per="tenant", max_llm_calls=0, window="1h"))
    before = _limits.unchecked_calls()
    with caplog.at_level(logging.WARNING, logger="tokentrace"), capture() as cap:
        assert [_call(client, tenant="acme") for _ in range(2)] == ["sent", "sent"]
    assert len(server.requests) == 2
    assert _limits.unchecked_calls() - before == 2
    warnings = [r.getMessage() for r in caplog.records if "tokentrace limits" in r.getMessage()]
    assert len(warnings) <= 1  # once per store and process (an earlier test may have warned)
    assert all("s3cret" not in text and "***" in text for text in warnings)
    reason = (cap.call_spans()[0].attributes or {})[sc.LIMIT_UNAVAILABLE]
    assert isinstance(reason, str)
    assert reason.startswith(
        "cannot use the limits in the ledger postgresql://tokentrace:***@127.0.0.1:1/ledger"
    )


def test_an_unreachable_store_refuses_calls_when_closed(client: Any, server: ReplayServer) -> None:
    """on_error='closed': the call is refused before it is sent, and says why."""
    _limit(UNREACHABLE, tokentrace.Limit(per="tenant", max_llm_calls=5, window="1h", on_error="closed"))
    with pytest.raises(tokentrace.BudgetExceeded) as info, tokentrace.task("job", tenant="acme"):
        client.chat.completions.create(**KWARGS)
    assert server.requests == []
    assert info.value.breach.unavailable is not None
    assert "s3cret" not in str(info.value)
    assert str(info.value).startswith(
        "tenant 'acme' has a limit of max_llm_calls=5 per 1h window, and its store cannot be reached "
        "(cannot use the limits in the ledger postgresql://tokentrace:***@127.0.0.1:1/ledger: "
    )
    assert str(info.value).endswith("on_error='closed' refuses the call; the request was not sent")


def test_a_call_a_budget_callback_stops_gives_its_reservation_back(sqlite_store: Path, client: Any) -> None:
    """A call reserved on a limit and then stopped by a budget's callback is given back: 0 calls used."""

    def refuse(breach: tokentrace.BudgetBreach) -> None:
        raise RuntimeError("no")

    _limit(sqlite_store, tokentrace.Limit(max_llm_calls=5, window="1h"))
    with (
        pytest.raises(RuntimeError),
        tokentrace.task("job", budget=tokentrace.Budget(max_llm_calls=0, on_exceed=refuse)),
    ):
        client.chat.completions.create(**KWARGS)
    assert _usage(sqlite_store, "per=* window=1h", "*") == Usage(0, 0, 0, 0, 0)


def test_a_raising_budget_stops_the_call_before_the_limits_count_it(sqlite_store: Path, client: Any) -> None:
    """A task's budget that refuses the call leaves the limits' counters untouched."""
    _limit(sqlite_store, tokentrace.Limit(max_llm_calls=5, window="1h"))
    with (
        pytest.raises(tokentrace.BudgetExceeded),
        tokentrace.task("job", budget=tokentrace.Budget(max_llm_calls=0)),
    ):
        client.chat.completions.create(**KWARGS)
    assert _usage(sqlite_store, "per=* window=1h", "*") is None


def test_limits_replace_and_clear(sqlite_store: Path, client: Any) -> None:
    """configure(limits=[...]) replaces the list; limits=[] removes every limit."""
    _limit(sqlite_store, tokentrace.Limit(max_llm_calls=0, window="1h"))
    assert _call(client) == "refused max_llm_calls"
    tokentrace.configure(limits=[tokentrace.Limit(max_llm_calls=0, window="1h", feature="x")])
    assert _call(client) == "sent"
    tokentrace.configure(limits=[])
    assert _call(client, feature="x") == "sent"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": "1h"}, "a Limit needs at least one of max_cost_usd, max_tokens, max_llm_calls"),
        (
            {"per": "org", "max_llm_calls": 1, "window": "1h"},
            'Limit per must be "tenant", "user", "feature", "task" or None, got \'org\'',
        ),
        (
            {"max_llm_calls": 1, "window": "1 hour"},
            'Limit window must be a number and a unit s, m, h or d ("30m", "1h", "1d", "7d"), got \'1 hour\'',
        ),
        (
            {"max_llm_calls": 1, "window": "0h"},
            'Limit window must be a number and a unit s, m, h or d ("30m", "1h", "1d", "7d"), got \'0h\'',
        ),
        (
            {"max_llm_calls": -1, "window": "1h"},
            "Limit max_llm_calls must be a non-negative int or None, got -1",
        ),
        ({"max_tokens": 1.5, "window": "1h"}, "Limit max_tokens must be a non-negative int or None, got 1.5"),
        (
            {"max_cost_usd": "lots", "window": "1h"},
            "Limit max_cost_usd must be a number of US dollars, got 'lots'",
        ),
        (
            {"max_llm_calls": 1, "window": "1h", "on_error": "fail"},
            'Limit on_error must be "open" or "closed", got \'fail\'',
        ),
        (
            {"max_llm_calls": 1, "window": "1h", "tenant": ""},
            "Limit tenant must be a non-empty string or None, got ''",
        ),
    ],
)
def test_a_limit_is_checked_when_it_is_built(kwargs: dict[str, Any], message: str) -> None:
    """Every field of a Limit is checked at construction, with a one-line message."""
    with pytest.raises(ConfigurationError) as info:
        tokentrace.Limit(**kwargs)
    assert str(info.value) == message


def test_configure_takes_a_list_of_limits() -> None:
    """configure(limits=) refuses a lone Limit and anything that is not one."""
    one = tokentrace.Limit(max_llm_calls=1, window="1h")
    with pytest.raises(ConfigurationError) as info:
        tokentrace.configure(limits=one)  # type: ignore[arg-type]
    assert str(info.value).startswith("limits must be a list of tokentrace.Limit, got Limit(")
    with pytest.raises(ConfigurationError) as info:
        tokentrace.configure(limits=[one, "two"])  # type: ignore[list-item]
    assert str(info.value) == "limits[1] must be a tokentrace.Limit, got 'two'"


def test_a_limits_key_and_window() -> None:
    """A limit's key names its per, window and sorted filters; its window length is in seconds."""
    limit = tokentrace.Limit(per="user", max_llm_calls=1, window="30m", tenant="acme", feature="chat")
    assert limit.key == "per=user window=30m feature=chat tenant=acme"
    assert (limit.window_seconds, tokentrace.Limit(max_tokens=1, window="7d").window_seconds) == (
        1800,
        604800,
    )


LIMIT_POINTS = ["limit.gate", "limit.check", "limit.settle", "limit.blocked", "limit.give_back"]


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize("point", LIMIT_POINTS)
def test_a_failing_limit_step_never_breaks_a_call_within_the_limit(
    point: str, sqlite_store: Path, client: Any
) -> None:
    """Within its limit a call returns the response unchanged whichever limit step fails."""
    _limit(sqlite_store, tokentrace.Limit(per="tenant", max_llm_calls=5, window="1h"))
    with inject_fault(point), tokentrace.task("job", tenant="acme"):
        response = client.chat.completions.create(**KWARGS)
    assert response.usage.total_tokens == REAL_TOKENS


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize("point", ["limit.blocked", "budget.block", "limit.give_back"])
def test_a_failing_block_step_still_stops_the_call(
    point: str, sqlite_store: Path, client: Any, server: ReplayServer
) -> None:
    """When recording a call a limit stopped fails, the call is still refused before it is sent."""
    _limit(sqlite_store, tokentrace.Limit(per="tenant", max_llm_calls=0, window="1h"))
    with inject_fault(point):
        assert _call(client, tenant="acme") == "refused max_llm_calls"
    assert server.requests == []


def test_every_limit_step_is_a_fault_point() -> None:
    """tokentrace.testing names each guarded limit step, so plug-ins' tests can fail it too."""
    from tokentrace.testing import FAULT_POINTS

    assert [p for p in FAULT_POINTS if p.startswith("limit.")] == [
        "limit.gate",
        "limit.check",
        "limit.settle",
        "limit.give_back",
        "limit.blocked",
    ]
