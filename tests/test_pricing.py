"""Prices: the database, user overrides, discounts, self-hosted endpoints and unpriced models."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import openai
import pytest
from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

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
from tests.support.clock import set_price_clock, utc
from tokentrace import pricing
from tokentrace._pricing import database as _price_database
from tokentrace._pricing import money as _money
from tokentrace._pricing import prices as _pricing
from tokentrace._telemetry.config import load_price_file
from tokentrace.exceptions import ConfigurationError
from tokentrace.testing import Capture
from tokentrace.types import Modalities, Usage

CACHED = "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_prompt_caching_cache_read.yaml"


@pytest.fixture(autouse=True)
def _reset_prices() -> Iterator[None]:
    pricing.set_prices([])
    yield
    pricing.set_prices([])


def _cached_call(**client_kw: object) -> tokentrace.Task:
    (interaction,) = recorded(CACHED)
    replay = Replay([interaction])
    client = openai_client(replay)
    if client_kw:
        client = client.with_options(**client_kw)
    with tokentrace.task("priced") as task:
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
    return task


def _anthropic_usage(input_tokens: int, cache_read: int, cache_write: int, output: int) -> dict[str, object]:
    usage = {
        "input_tokens": input_tokens,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
        "output_tokens": output,
    }
    return message_body(usage, model="claude-sonnet-4-5-20250929")


def _anthropic_call(body: dict[str, object]) -> tokentrace.Task:
    client = anthropic_client(Replay(synthetic("https://api.anthropic.com/v1/messages", body)))
    with tokentrace.task("anthropic") as task:
        client.messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    return task


def test_long_context_tier_applies_to_all_tokens_above_200k() -> None:
    """claude-sonnet-4-5 over 200k input: 150k x $6 + 60k read x $0.60 + 40k write x $7.50 + 1k x $22.50."""
    task = _anthropic_call(_anthropic_usage(150_000, 60_000, 40_000, 1_000))
    assert task.totals.input_tokens == 250_000
    assert task.totals.cost_usd == Decimal("1.2585")


def test_below_the_tier_the_base_rates_apply() -> None:
    """claude-sonnet-4-5 at 100k input: 100k x $3 + 1k x $15 per million = $0.315."""
    task = _anthropic_call(_anthropic_usage(100_000, 0, 0, 1_000))
    assert task.totals.cost_usd == Decimal("0.315")


def test_anthropic_cache_prices_follow_the_published_multipliers() -> None:
    """For every current Claude model: cache read 0.1x, 5-minute write 1.25x, 1-hour write 2x input."""
    checked = 0
    for model in (
        "claude-sonnet-4-5",
        "claude-opus-4-1",
        "claude-3-5-haiku-latest",
        "claude-sonnet-4-20250514",
    ):
        info = pricing.lookup(model, "anthropic")
        assert info is not None, model
        r = info.rates
        assert r.cache_read == r.input * Decimal("0.1"), model
        assert r.cache_write == r.input * Decimal("1.25"), model
        assert r.cache_write_1h == r.input * 2, model
        checked += 1
    assert checked == 4


def test_exact_user_rates_win_over_the_database() -> None:
    """User rates: 68 x $2 + 1,152 cached x $1 + 100 x $8 per million = $0.002088, source 'user'."""
    pricing.set_prices(
        [pricing.Rates(model="gpt-4o-2024-08-06", provider="openai", input="2", output="8", cache_read="1")]
    )
    task = _cached_call()
    assert task.totals.cost_usd == Decimal("0.002088")
    assert pricing.lookup("gpt-4o-2024-08-06", "openai").source == "user"  # type: ignore[union-attr]


def test_exact_rates_beat_patterns_which_beat_the_database() -> None:
    """Resolution order: user exact, user pattern, database, unpriced."""
    pricing.set_prices(
        [
            pricing.Rates(model="gpt-4o*", input=1, output=1),
            pricing.Rates(model="gpt-4o-mini", input=2, output=2),
        ]
    )
    assert pricing.lookup("gpt-4o-mini", "openai").source == "user"  # type: ignore[union-attr]
    assert pricing.lookup("gpt-4o-2024-08-06", "openai").source == "user_pattern"  # type: ignore[union-attr]
    assert pricing.lookup("gpt-3.5-turbo", "openai").source == "genai-prices"  # type: ignore[union-attr]
    assert pricing.lookup("no-such-model-anywhere", "openai") is None


def test_discount_multiplies_database_prices() -> None:
    """A 0.5 discount on OpenAI halves the database price: $0.00261 becomes $0.001305."""
    pricing.set_prices([pricing.Discount(provider="openai", multiplier="0.5")])
    task = _cached_call()
    assert task.totals.cost_usd == Decimal("0.001305")


def test_discount_does_not_touch_exact_user_rates() -> None:
    """Exact user rates are what you pay; a discount applies to database prices only."""
    pricing.set_prices(
        [
            pricing.Rates(model="gpt-4o-2024-08-06", input="2", output="8", cache_read="1"),
            pricing.Discount(multiplier="0.5"),
        ]
    )
    assert _cached_call().totals.cost_usd == Decimal("0.002088")


def test_a_discount_scales_audio_image_and_video_rates_too() -> None:
    """A 0.5 discount on Google halves gemini-2.5-flash's audio rates with the rest: 1,000 audio
    input tokens (400 of them cached) and 100 output cost 600 x $0.50 + 400 x $0.05 + 100 x $1.25
    per million = $0.000445, half the list price."""
    usage = Usage(1_000, 100, 400, modalities=Modalities(audio_input=1_000, audio_cache_read=400))
    listed = pricing.lookup("gemini-2.5-flash", "gcp.gemini")
    assert listed is not None
    assert listed.cost(usage) == Decimal("0.00089")
    pricing.set_prices([pricing.Discount(provider="gcp.gemini", multiplier="0.5")])
    discounted = pricing.lookup("gemini-2.5-flash", "gcp.gemini")
    assert discounted is not None
    assert dict(discounted.rates.modalities) == {
        "audio_input": Decimal("0.5"),
        "audio_cache_read": Decimal("0.05"),
    }
    assert discounted.cost(usage) == Decimal("0.000445")


def test_user_rates_can_price_tool_calls_and_a_discount_scales_the_databases() -> None:
    """Your own per-search prices apply as given: 2 web searches at $0.02 and 3 file searches at
    $0.004 cost $0.052 beside no tokens; the database's $0.01 and $0.0025 under a 0.8 discount
    make those calls cost 2 x $0.008 + 3 x $0.002 = $0.022."""
    searches = Usage(web_search_requests=2, file_search_requests=3)
    pricing.set_prices(
        [pricing.Rates(model="tooly", input=1, output=1, per_web_search="0.02", per_file_search="0.004")]
    )
    mine = pricing.lookup("tooly", "openai")
    assert mine is not None
    assert mine.cost(searches) == Decimal("0.052")
    pricing.set_prices([pricing.Discount(provider="openai", multiplier="0.8")])
    listed = pricing.lookup("gpt-4.1", "openai")
    assert listed is not None
    assert (listed.per_web_search, listed.per_file_search) == (Decimal("0.008"), Decimal("0.002"))
    assert listed.cost(searches) == Decimal("0.022")


def test_user_modality_rates_apply_at_every_long_context_tier() -> None:
    """Your audio rate holds above a tier too: 300,000 input tokens (1,000 of them audio) over a
    200k tier at $2 text and $40 audio per million = 299,000 x $2 + 1,000 x $40 = $0.638; a
    modality without a rate (the image tokens) costs the text rate."""
    rates = pricing.Rates(
        model="voice-model",
        input=1,
        output=4,
        audio_input=40,
        tiers=[pricing.Tier(above_input_tokens=200_000, input=2, output=8)],
    )
    pricing.set_prices([rates])
    info = pricing.lookup("voice-model", "openai")
    assert info is not None
    assert info.source == "user"
    assert info.cost(Usage(300_000, modalities=Modalities(audio_input=1_000, image_input=5_000))) == Decimal(
        "0.638"
    )
    assert info.cost(Usage(100, modalities=Modalities(audio_input=10))) == Decimal(
        "0.00049"
    )  # 90 x $1 + 10 x $40


def test_self_hosted_endpoint_is_priced_at_zero_not_unpriced(cap: Capture) -> None:
    """A SelfHosted base URL with no hourly rate costs $0, status priced, source self_hosted."""
    pricing.set_prices([pricing.SelfHosted(base_url="http://gpu-box:8000")])
    task = _cached_call(base_url="http://gpu-box:8000/v1")
    assert task.totals.cost_usd == Decimal(0)
    assert task.totals.unpriced_calls == 0
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["tokentrace.cost.source"] == "self_hosted"
    assert attrs["tokentrace.cost.status"] == "priced"


def test_hourly_self_hosted_cost_is_apportioned_and_flagged_estimated(cap: Capture) -> None:
    """An hourly rate charges each call its duration and marks it estimated."""
    pricing.set_prices([pricing.SelfHosted(base_url="http://gpu-box:8000", usd_per_hour="3600")])
    task = _cached_call(base_url="http://gpu-box:8000/v1")
    assert task.totals.estimated_calls == 1
    assert (
        Decimal(0) < task.totals.cost_usd < Decimal(60)
    )  # $1 a second, and the call takes well under a minute
    assert dict(cap.call_spans()[0].attributes or {})["tokentrace.cost.status"] == "estimated"


def _azure_deployment_call(cap: Capture) -> tokentrace.Task:
    """An Azure OpenAI call to deployment 'prod-chat' whose response names only the deployment."""
    body = chat_completion_body(
        {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}, "prod-chat"
    )
    uri = "https://acme.openai.azure.com/openai/deployments/prod-chat/chat/completions"
    client = openai.AzureOpenAI(
        api_key="k",
        api_version="2024-10-21",
        azure_endpoint="https://acme.openai.azure.com",
        http_client=Replay(synthetic(uri, body)).sync_client(),
        max_retries=0,
    )
    with tokentrace.task("azure") as task:
        client.chat.completions.create(model="prod-chat", messages=[{"role": "user", "content": "hi"}])
    return task


def test_an_unmapped_azure_deployment_is_unpriced_never_zero(cap: Capture) -> None:
    """A deployment name no price table knows: tokens kept, unpriced, provider azure.ai.openai."""
    task = _azure_deployment_call(cap)
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["gen_ai.provider.name"] == "azure.ai.openai"
    assert attrs["tokentrace.cost.status"] == "unpriced"
    assert "tokentrace.cost.usd" not in attrs
    assert (task.totals.input_tokens, task.totals.unpriced_calls, task.totals.cost_usd) == (
        1000,
        1,
        Decimal(0),
    )


def test_an_alias_prices_an_azure_deployment_as_its_model(cap: Capture) -> None:
    """Alias('prod-chat' -> gpt-4o-mini): 1,000 x $0.15 + 500 x $0.60 per million = $0.00045."""
    pricing.set_prices([pricing.Alias(name="prod-chat", model="gpt-4o-mini", provider="azure.ai.openai")])
    task = _azure_deployment_call(cap)
    attrs = dict(cap.call_spans()[0].attributes or {})
    assert attrs["tokentrace.cost.status"] == "priced"
    assert task.totals.cost_usd == Decimal("0.00045")
    assert task.totals.unpriced_calls == 0


def test_alias_globs_providers_and_cycles() -> None:
    """A glob alias matches many names, a provider restricts it, and a cycle ends unpriced."""
    pricing.set_prices(
        [
            pricing.Alias(name="team-*", model="gpt-4o-mini"),
            pricing.Alias(name="azure-only", model="gpt-4o", provider="azure.ai.openai"),
            pricing.Alias(name="loop-a", model="loop-b"),
            pricing.Alias(name="loop-b", model="loop-a"),
        ]
    )
    team = pricing.lookup("team-search", "openai")
    assert team is not None
    assert (team.rates.input, team.rates.output) == (Decimal("0.15"), Decimal("0.6"))
    assert pricing.lookup("azure-only", "openai") is None
    azure = pricing.lookup("azure-only", "azure.ai.openai")
    assert azure is not None
    assert azure.rates.input == Decimal("2.5")
    assert pricing.lookup("loop-a", "openai") is None


def test_an_alias_needs_a_name_and_a_model() -> None:
    with pytest.raises(ConfigurationError, match="invalid Alias: model"):
        pricing.Alias(name="prod-chat", model="")


def test_unknown_model_keeps_tokens_is_unpriced_and_warns_once(
    cap: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown model is never $0: tokens kept, cost status unpriced, one warning per model."""
    body = chat_completion_body(
        {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}, model="acme-private-7b"
    )
    client = openai_client(Replay(synthetic("https://api.openai.com/v1/chat/completions", body, times=2)))
    with caplog.at_level(logging.WARNING, logger="tokentrace"), tokentrace.task("unknown") as task:
        for _ in range(2):
            client.chat.completions.create(
                model="acme-private-7b", messages=[{"role": "user", "content": "x"}]
            )
    assert (task.totals.input_tokens, task.totals.output_tokens) == (22, 14)
    assert task.totals.unpriced_calls == 2
    assert task.totals.cost_usd == Decimal(0)
    for span in cap.call_spans():
        attrs = dict(span.attributes or {})
        assert attrs["tokentrace.cost.status"] == "unpriced"
        assert "tokentrace.cost.usd" not in attrs
    warnings = [r for r in caplog.records if "acme-private-7b" in r.getMessage()]
    assert len(warnings) == 1
    (task_span,) = cap.task_spans("unknown")
    assert task_span.attributes is not None
    assert task_span.attributes["tokentrace.task.unpriced_calls"] == 2


def test_price_info_cost_is_exact_decimal_arithmetic() -> None:
    """A million-token call is priced exactly to the last digit, with no float rounding."""
    info = pricing.lookup("gpt-4o-mini", "openai")
    assert info is not None
    usage = Usage(input_tokens=1_000_001, output_tokens=3, cache_read_tokens=1)
    # (1,000,000 x $0.15 + 1 x $0.075 + 3 x $0.60) per million tokens = $0.150001875
    assert info.cost(usage) == Decimal("0.150001875")


def test_money_units_are_exact_and_print_without_trailing_zeros() -> None:
    """Costs are counted in integer units of 10**-24 USD and become exact, canonical Decimals."""
    assert _money.to_units(Decimal("0.00261")) == 2_610_000_000_000_000_000_000
    assert str(_money.usd(2_610_000_000_000_000_000_000)) == "0.00261"
    assert str(_money.usd(10 * 10**24)) == "10"
    assert str(_money.usd(1)) == "1E-24"
    assert _money.usd(0) == 0
    # The float on a span is the correctly rounded double of the exact value.
    units = 123_456_789_012_345_678_901_234
    assert _money.as_float(units) == float(_money.usd(units)) == 0.12345678901234568
    assert _money.needs_exact_text(units) is True
    assert _money.needs_exact_text(2_610_000_000_000_000_000_000) is False


@pytest.mark.parametrize(
    "units",
    [
        0,
        1,
        10**15 - 1,  # 15 digits
        10**15,  # 1 digit and zeros
        10**15 + 1,  # 16 digits
        999_999_999_999_999 * 10**9,  # 15 digits and zeros
        1_000_000_000_000_001 * 10**9,  # 16 digits and zeros
        2**53,
        2**64 - 1,
        2**80 * 5**30,  # a power of two times a power of five: many digits, many zeros
        123_456_789_012_345 * 10**40,
        10**62 + 10**20,  # beyond the table of powers of ten
        10**70,
        -(10**15 + 1),
        -(10**20),
    ],
)
def test_needs_exact_text_counts_the_digits_before_the_trailing_zeros(units: int) -> None:
    """More than 15 significant decimal digits, worked out without writing the number out."""
    assert _money.needs_exact_text(units) is (len(str(abs(units)).rstrip("0")) > 15)


def test_a_rate_finer_than_the_unit_is_rounded_half_even_per_token() -> None:
    """$0.0000000000000000005 per million tokens is half a unit per token: rounded to even (0)."""
    rates = pricing.Rates(model="fine", input="0.0000000000000000005", output="0.0000000000000000015")
    pricing.set_prices([rates])
    info = pricing.lookup("fine", "openai")
    assert info is not None
    # 0.5 unit per input token rounds to 0, 1.5 units per output token rounds to 2.
    assert info.parts(Usage(input_tokens=10, output_tokens=10)) == (0, 0, 0, 20, 0)


def test_cost_parts_add_up_to_the_cost_with_every_token_kind() -> None:
    """claude-sonnet-4-5 with reads, 5-minute and 1-hour writes, reasoning and 2 web searches."""
    info = pricing.lookup("claude-sonnet-4-5-20250929", "anthropic")
    assert info is not None
    usage = Usage(
        input_tokens=10_000,
        output_tokens=2_000,
        cache_read_tokens=4_000,
        cache_write_tokens=3_000,
        cache_write_1h_tokens=1_000,
        reasoning_tokens=500,
        web_search_requests=2,
    )
    # 3,000 x $3 + 4,000 x $0.30 + 2,000 x $3.75 + 1,000 x $6 + 2,000 x $15 per million, + 2 x $0.01
    # = 0.009 + 0.0012 + 0.0075 + 0.006 + 0.03 + 0.02 = $0.0737
    parts = info.parts(usage)
    assert [str(_money.usd(p)) for p in parts] == ["0.009", "0.0012", "0.0135", "0.03", "0.02"]
    assert info.cost(usage) == Decimal("0.0737")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "m", "input": -1, "output": 1}, "input"),
        ({"model": "m", "input": "abc", "output": 1}, "not a number"),
        ({"model": "", "input": 1, "output": 1}, "model"),
        ({"model": "m", "input": 1}, "output"),
        ({"model": "m", "input": 1, "output": 1, "audio_output": -2}, "audio_output"),
        (
            {"model": "m", "input": 1, "output": 1, "image_cache_read": 1},
            "image_cache_read needs image_input",
        ),
        ({"model": "m", "input": 1, "output": 1, "smell_input": 1}, "smell_input"),
    ],
)
def test_invalid_rates_raise_configuration_errors(kwargs: dict[str, object], message: str) -> None:
    """Bad rates raise ConfigurationError naming the field."""
    with pytest.raises(ConfigurationError, match=message):
        pricing.Rates(**kwargs)  # type: ignore[arg-type]


def test_set_prices_rejects_other_objects() -> None:
    """Only Rates, Discount, SelfHosted and Alias are accepted."""
    with pytest.raises(ConfigurationError, match="Rates, Discount, SelfHosted or Alias objects"):
        pricing.set_prices([{"model": "x"}])  # type: ignore[list-item]


def test_price_file_round_trip(tmp_path: Path) -> None:
    """A JSON price file loads into the same overrides."""
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "rates": [{"model": "ft:gpt-4o*", "input": "3.75", "output": "15"}],
                "discounts": [{"provider": "anthropic", "multiplier": "0.9"}],
                "self_hosted": [{"base_url": "http://vllm:8000", "usd_per_hour": "2.5"}],
                "aliases": [{"name": "prod-chat", "model": "gpt-4o", "provider": "azure.ai.openai"}],
            }
        )
    )
    items = load_price_file(path)
    assert [type(i).__name__ for i in items] == ["Rates", "Discount", "SelfHosted", "Alias"]
    assert items[3] == pricing.Alias(name="prod-chat", model="gpt-4o", provider="azure.ai.openai")
    assert items[0] == pricing.Rates(model="ft:gpt-4o*", input="3.75", output="15")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"rates": [{"model": "x"}]}', r"rates\[0\] is invalid"),
        ('{"price": []}', "unknown keys"),
        ("[]", "JSON object"),
    ],
)
def test_bad_price_files_name_the_file_and_the_fault(tmp_path: Path, content: str, message: str) -> None:
    """Errors in a price file say which file and what is wrong."""
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=message) as info:
        load_price_file(path)
    assert str(path) in str(info.value)


def test_missing_price_file_is_a_clear_error(tmp_path: Path) -> None:
    """A price file that does not exist is named in the error."""
    with pytest.raises(ConfigurationError, match="cannot read price file"):
        load_price_file(tmp_path / "nope.json")


DEEPSEEK = "dd-trace-py/tests/contrib/openai/cassettes/v1/deepseek_completion.yaml"


def test_a_time_of_day_price_changes_at_its_boundary_within_one_process(
    cap: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two deepseek-chat calls either side of 16:30 UTC: the cached price gives way to the off-peak one."""
    (interaction,) = recorded(DEEPSEEK)
    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://api.deepseek.com",
        http_client=Replay([interaction, interaction]).sync_client(),
    )
    with tokentrace.task("across") as task:
        set_price_clock(monkeypatch, "16:29:58")
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
        set_price_clock(monkeypatch, "16:30:02")
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
    costs = [span.attributes["tokentrace.cost.usd"] for span in cap.call_spans()]  # type: ignore[index]
    assert costs == [0.000111, 0.0000555]
    assert task.totals.cost_usd == Decimal("0.0001665")


def test_a_call_is_priced_as_of_when_it_began(monkeypatch: pytest.MonkeyPatch) -> None:
    """A call that began at 16:29:59 UTC and ended after 16:30 keeps the standard rates it was made at."""
    set_price_clock(monkeypatch, "16:30:01")
    began = _pricing.lookup("deepseek-chat", "deepseek", None, 2 * 10**9)
    now = _pricing.lookup("deepseek-chat", "deepseek")
    assert began is not None
    assert now is not None
    assert (began.rates.input, began.rates.output) == (Decimal("0.27"), Decimal("1.1"))
    assert (now.rates.input, now.rates.output) == (Decimal("0.135"), Decimal("0.55"))
    assert now.window == (utc("16:30").timestamp(), (utc("00:30") + timedelta(days=1)).timestamp())


def test_a_price_without_time_conditions_has_no_window() -> None:
    """gpt-4o's price does not change with time, so its cached price is never looked up again."""
    info = _pricing.lookup("gpt-4o", "openai")
    assert info is not None
    assert info.window is None


def _model(*constraints: object) -> SimpleNamespace:
    """A price database entry with a conditional price for each of ``constraints``."""
    return SimpleNamespace(prices=[SimpleNamespace(constraint=c) for c in (None, *constraints)])


def test_price_windows_follow_the_databases_conditions() -> None:
    """Dated changes and daily hours bound a price's window, past ones as well as future ones."""
    at = utc("12:00").timestamp()
    future = StartDateConstraint(start_date=date(2026, 12, 10))
    past = StartDateConstraint(start_date=date(2026, 11, 1))
    yesterday = StartDateConstraint(start_date=date(2026, 12, 2))
    hours = TimeOfDateConstraint(
        start_time=time(9, 0, tzinfo=timezone.utc), end_time=time(17, 0, tzinfo=timezone.utc)
    )
    assert _price_database.window(_model(), at) is None
    assert _price_database.window(_model(past), at) == (
        datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp(),
        math.inf,
    )
    assert _price_database.window(_model(future), at) == (
        -math.inf,
        datetime(2026, 12, 10, tzinfo=timezone.utc).timestamp(),
    )
    assert _price_database.window(_model(yesterday), at) == (utc("00:00").timestamp(), math.inf)
    assert _price_database.window(_model(past, hours), at) == (
        utc("09:00").timestamp(),
        utc("17:00").timestamp(),
    )
    assert _price_database.window(_model(hours), utc("20:00").timestamp()) == (
        utc("17:00").timestamp(),
        (utc("09:00") + timedelta(days=1)).timestamp(),
    )


def test_a_price_from_before_a_dated_change_is_not_the_cached_current_one() -> None:
    """o3 cost $10/$40 per million until 2025-06-10 and $2/$8 since: asking for a moment before
    the change gets the old price even once the current one is cached, and the current one after."""
    current = pricing.lookup("o3")
    before = pricing.lookup("o3", at=datetime(2025, 5, 1))
    again = pricing.lookup("o3")
    assert current is not None
    assert before is not None
    assert again is not None
    assert (current.rates.input, current.rates.output) == (Decimal(2), Decimal(8))
    assert (before.rates.input, before.rates.output) == (Decimal(10), Decimal(40))
    assert (again.rates.input, again.rates.output) == (Decimal(2), Decimal(8))
    change = datetime(2025, 6, 10, tzinfo=timezone.utc).timestamp()
    assert before.window == (-math.inf, change)
    assert current.window == (change, math.inf)


def test_a_condition_tokentrace_cannot_read_is_looked_up_again_within_a_minute() -> None:
    """A kind of price condition newer than tokentrace holds its price for 60 s either side, no longer."""
    at = utc("12:00").timestamp()
    assert _price_database.window(_model(SimpleNamespace(weekday=5)), at) == (at - 60, at + 60)


# The price keys tokentrace reads (token rates, audio, image and video token rates, web
# searches, per-request fees); models priced by anything else (hours of audio, characters,
# pages) are outside what it prices by token.
_TOKEN_KEYS = {
    "input_mtok",
    "output_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
    "output_reasoning_mtok",
    "web_searches_kcount",
    "storage_searches_kcount",
    "requests_kcount",
    *(f"{where}_{kind}_mtok" for kind in ("audio", "image", "video") for where in ("input", "output")),
    *(f"cache_{kind}_read_mtok" for kind in ("audio", "image", "video")),
}
# genai-prices' usage names -> Modalities' fields.
_MODAL_USAGE = {
    f"{prefix}_{kind}_{suffix}": f"{kind}_{field}"
    for kind in ("audio", "image", "video")
    for prefix, suffix, field in (
        ("input", "tokens", "input"),
        ("cache", "read_tokens", "cache_read"),
        ("output", "tokens", "output"),
    )
}
_USAGES = [
    {"input_tokens": 1_000, "output_tokens": 500},
    {"input_tokens": 5_000, "cache_read_tokens": 1_000, "cache_write_tokens": 3_000, "output_tokens": 700},
    {
        "input_tokens": 5_000,
        "cache_read_tokens": 1_000,
        "cache_write_tokens": 3_000,
        "cache_write_1h_tokens": 1_000,
        "output_tokens": 700,
        "output_reasoning_tokens": 300,
    },
    # Above every long-context threshold in the database (200k, 272k): the tier's rates on all tokens.
    {
        "input_tokens": 300_000,
        "cache_read_tokens": 100_000,
        "cache_write_tokens": 50_000,
        "output_tokens": 2_000,
    },
    # Audio, images and video among the input, the cache reads and the output.
    {
        "input_tokens": 6_000,
        "cache_read_tokens": 2_000,
        "cache_write_tokens": 500,
        "output_tokens": 3_000,
        "output_reasoning_tokens": 200,
        "input_audio_tokens": 1_500,
        "cache_audio_read_tokens": 600,
        "input_image_tokens": 1_200,
        "cache_image_read_tokens": 300,
        "input_video_tokens": 800,
        "cache_video_read_tokens": 100,
        "output_audio_tokens": 900,
        "output_image_tokens": 700,
        "output_video_tokens": 400,
    },
    # Audio in and out beside cached text (genai-prices wants the cached audio said, even as 0).
    {
        "input_tokens": 3_000,
        "cache_read_tokens": 1_024,
        "output_tokens": 300,
        "input_audio_tokens": 1_500,
        "cache_audio_read_tokens": 0,
        "output_audio_tokens": 200,
    },
]


def test_every_token_priced_model_costs_what_genai_prices_computes() -> None:
    """For every model the bundled database prices by token, at every service tier it has rates
    for: tokentrace's integer arithmetic gives exactly the Decimal that genai-prices' own
    ``calc_price`` gives, for plain, cached, 1-hour-cached, reasoning and long-context usage, and
    for audio, image and video tokens among them."""
    from genai_prices import data_snapshot
    from genai_prices import types as gp

    moment = utc("12:00")
    compared = tiers = modal_models = 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            contexts: list[dict[str, str] | None] = [None]
            contexts += [v.when for v in model.price_variants or () if set(v.when) == {"service_tier"}]
            for context in contexts:
                prices = model.get_prices(moment, context)
                keys = {k for k, v in vars(prices).items() if v is not None and not k.startswith("_")}
                if "input_mtok" not in keys or "output_mtok" not in keys or not keys <= _TOKEN_KEYS:
                    continue
                info = _price_database._price_info_from_model_price(prices, model.id, provider.id)
                assert info is not None
                for raw in _USAGES:
                    modal = {_MODAL_USAGE[k]: v for k, v in raw.items() if k in _MODAL_USAGE}
                    usage = Usage(
                        raw["input_tokens"],
                        raw["output_tokens"],
                        raw.get("cache_read_tokens", 0),
                        raw.get("cache_write_tokens", 0),
                        raw.get("cache_write_1h_tokens", 0),
                        raw.get("output_reasoning_tokens", 0),
                        modalities=Modalities(**modal) if modal else None,
                    )
                    assert usage.problem() is None
                    want = model.calc_price(
                        gp.Usage(**raw), provider, genai_request_timestamp=moment, price_context=context
                    ).total_price
                    assert info.cost(usage) == want, (provider.id, model.id, context, raw)
                    compared += 1
                tiers += context is not None
                modal_models += bool(info.rates.modalities)
    assert compared > 12_000  # 2,085 models in genai-prices 0.2.3, 6 usages each
    assert modal_models > 30  # gpt-audio, gpt-realtime, Gemini's audio and image models among them
    assert tiers > 100  # OpenAI's flex and priority rates among them


def test_a_service_tier_is_looked_up_at_its_own_rates() -> None:
    """gpt-5: flex and priority have rates of their own since 2026-10-12; the standard rates
    before then, and for a tier the database has none for."""
    flex = pricing.lookup("gpt-5", service_tier="flex")
    priority = pricing.lookup("gpt-5", service_tier="priority")
    standard = pricing.lookup("gpt-5", service_tier="default")
    scale = pricing.lookup("gpt-5", service_tier="scale")
    before = pricing.lookup("gpt-5", service_tier="flex", at=datetime(2026, 10, 1))
    assert flex is not None
    assert priority is not None
    assert standard is not None
    assert scale is not None
    assert before is not None
    assert (flex.rates.input, flex.rates.cache_read, flex.rates.output) == (
        Decimal("0.625"),
        Decimal("0.0625"),
        Decimal(5),
    )
    assert (priority.rates.input, priority.rates.output) == (Decimal("2.5"), Decimal(20))
    assert (standard.rates.input, standard.rates.output) == (Decimal("1.25"), Decimal(10))
    assert scale.rates == standard.rates
    assert before.rates == standard.rates
    assert (flex.service_tier, priority.service_tier, standard.service_tier, scale.service_tier) == (
        "flex",
        "priority",
        None,
        None,
    )
    start = datetime(2026, 10, 12, tzinfo=timezone.utc).timestamp()
    assert flex.window == (start, math.inf)
    # Before the tier's rates began, the standard price holds until they do.
    assert before.service_tier is None
    assert before.window == (-math.inf, start)
