"""The botocore integration: Bedrock requests sent through botocore's ``URLLib3Session`` to a real
server on 127.0.0.1 that answers with recorded Bedrock responses, recorded once whichever layer
sees them (the Bedrock SDK integration when a boto3 client method is in flight, else the wire)."""

from __future__ import annotations

import gc
import gzip
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import quote, unquote

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.config
import botocore.credentials
import botocore.exceptions
import botocore.httpsession
import pytest

import tokentrace
from tests.support.cassettes import Interaction, ground_truth, served
from tests.support.clients import recorded
from tests.support.faults import WIRE_STEPS, requests_unchanged, restores
from tokentrace._core import registry as _registry
from tokentrace.integrations import _wire, _wire_urllib3
from tokentrace.integrations import botocore as botocore_integration
from tokentrace.testing import Capture, Recorded, ReplayServer

_DD = "dd-trace-py/tests/contrib/botocore/bedrock_cassettes/"
_OI = (
    "openinference/python/instrumentation/openinference-instrumentation-bedrock/tests/openinference/"
    "instrumentation/bedrock/cassettes/"
)
CACHED = _DD + "bedrock_converse_prompt_caching.yaml"  # 12 + 1,028 cache reads in, 185 out: $0.0031194
CACHED_STREAM = _DD + "bedrock_converse_stream_prompt_caching.yaml"  # 12 + 1,028 in, 250 out: $0.0040944
NOVA = _OI + "TestNovaInvokeModel.test_nova_micro_text.yaml"  # 13 in, 3 out: $0.000000875
INVOKE_STREAM = _OI + "TestInvokeModelWithStreamResponse.test_invoke.yaml"  # 702 in, 98 out: $0.003576
TRUTH = ground_truth()
PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"


def _llm(path: str) -> tuple[int, Interaction]:
    """The recording's last model call and its index (a caching recording writes, then reads)."""
    calls = [(i, item) for i, item in enumerate(recorded(path)) if item.key[3].startswith("/model/")]
    return calls[-1]


def _model(item: Interaction) -> str:
    return unquote(item.key[3].split("/")[2])


def _path(model: str, verb: str) -> str:
    """The path botocore sends for ``model`` (its URI label percent-encoded, ``/`` and ``:`` too)."""
    return f"/model/{quote(model, safe='-_.~')}/{verb}"


def _client(url: str, service: str = "bedrock-runtime") -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        endpoint_url=url,
        config=botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def _serving(*paths: str) -> tuple[ReplayServer, list[tuple[Interaction, str]]]:
    """A server answering each recording's model call at its recorded path."""
    calls = [_llm(path) for path in paths]
    server = ReplayServer({item.key[3]: [served(item)] for _, item in calls})
    return server, [(item, path) for (_, item), path in zip(calls, paths, strict=True)]


@pytest.fixture(params=["wire", "sdk"])
def layer(request: pytest.FixtureRequest) -> str:
    """``wire``: the botocore integration alone (``instrument("botocore")``); ``sdk``: every
    integration on, the Bedrock SDK integration's among them."""
    if request.param == "wire":
        tokentrace.uninstrument()
        assert tokentrace.instrument("botocore") == ["botocore"]
    else:
        assert {"bedrock", "botocore"} <= set(_registry.instrumented())
    assert hasattr(botocore.httpsession.URLLib3Session.send, "__wrapped__")
    return str(request.param)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[_wire.Route]:
    """The routes of the calls the wire layer opened."""
    seen: list[_wire.Route] = []
    begin = _wire.begin

    def spy(route: _wire.Route, origin: str, body: bytes | None) -> _wire.Exchange | None:
        exchange = begin(route, origin, body)
        if exchange is not None:
            seen.append(route)
        return exchange

    monkeypatch.setattr(_wire, "begin", spy)
    return seen


def _one_call(cap: Capture, path: str, index: int) -> dict[str, Any]:
    """The one call span, its usage the recording's ground truth."""
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    truth = TRUTH[(path, index)]["usage_norm"]
    cached = truth.get("cache_read", 0) + truth.get("cache_write", 0)
    assert attrs["gen_ai.provider.name"] == "aws.bedrock"
    assert attrs["gen_ai.usage.input_tokens"] == truth["in"] + cached
    assert attrs["gen_ai.usage.output_tokens"] == truth["out"]
    assert attrs.get("gen_ai.usage.cache_read.input_tokens", 0) == truth.get("cache_read", 0)
    assert attrs["tokentrace.cost.status"] == "priced"
    return attrs


def _recorded_by(layer: str, opened: list[_wire.Route], api: str) -> None:
    """The call was opened on the wire only when the SDK integration was off."""
    assert [route.method.api for route in opened] == ([api] if layer == "wire" else [])


def test_converse_is_one_exact_call(cap: Capture, layer: str, opened: list[_wire.Route]) -> None:
    """Converse: 12 + 1,028 cache reads in, 185 out of Claude 3.7 Sonnet = $0.0031194, once."""
    index, item = _llm(CACHED)
    with ReplayServer({item.key[3]: [served(item)]}) as server, tokentrace.task("converse") as task:
        response = _client(server.url).converse(modelId=_model(item), **item.request_json())
    assert response["usage"]["cacheReadInputTokens"] == 1028
    _one_call(cap, CACHED, index)
    _recorded_by(layer, opened, "converse")
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, Decimal("0.0031194"))


def test_converse_stream_is_one_exact_call(cap: Capture, layer: str, opened: list[_wire.Route]) -> None:
    """ConverseStream read to its end: the metadata event's 12 + 1,028 in, 250 out = $0.0040944."""
    index, item = _llm(CACHED_STREAM)
    with ReplayServer({item.key[3]: [served(item)]}) as server, tokentrace.task("stream") as task:
        response = _client(server.url).converse_stream(modelId=_model(item), **item.request_json())
        events = [next(iter(event)) for event in response["stream"]]
    assert events[-1] == "metadata"
    attrs = _one_call(cap, CACHED_STREAM, index)
    assert attrs["tokentrace.stream.end"] == "completed"
    _recorded_by(layer, opened, "converse-stream")
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, Decimal("0.0040944"))


def _read_into(stream: Any) -> bytes:
    """A body read with ``readinto``, 16 bytes at a time, as an ``io`` reader reads it."""
    buffer, out = bytearray(16), bytearray()
    while count := stream.readinto(buffer):
        out += buffer[:count]
    return bytes(out)


@pytest.mark.parametrize("how", ["read", "iter_chunks", "iter_lines", "readinto"])
def test_invoke_model_is_one_exact_call_however_its_body_is_read(
    cap: Capture, layer: str, opened: list[_wire.Route], how: str
) -> None:
    """InvokeModel, its StreamingBody read whole, in chunks or by lines: Bedrock's token headers,
    13 in and 3 out of Nova Micro = $0.000000875, and the body reaches the application whole."""
    index, item = _llm(NOVA)
    with ReplayServer({item.key[3]: [served(item)]}) as server, tokentrace.task("invoke") as task:
        response = _client(server.url).invoke_model(modelId=_model(item), body=item.request_body)
        stream = response["body"]
        if how == "read":
            body = stream.read()
        elif how == "iter_chunks":
            body = b"".join(stream.iter_chunks(chunk_size=16))
        elif how == "iter_lines":
            body = b"\n".join(stream.iter_lines(chunk_size=16))
        else:
            body = _read_into(stream)
    assert body == item.body
    _one_call(cap, NOVA, index)
    _recorded_by(layer, opened, "invoke")
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, Decimal("0.000000875"))


def test_invoke_model_with_response_stream_is_one_exact_call(
    cap: Capture, layer: str, opened: list[_wire.Route]
) -> None:
    """InvokeModelWithResponseStream: the invocation metrics' 702 in, 98 out of Claude 3.5 Sonnet
    = $0.003576."""
    index, item = _llm(INVOKE_STREAM)
    with ReplayServer({item.key[3]: [served(item)]}) as server, tokentrace.task("invoke-stream") as task:
        response = _client(server.url).invoke_model_with_response_stream(
            modelId=_model(item), body=item.request_body
        )
        chunks = list(response["body"])
    assert chunks
    assert all("chunk" in chunk for chunk in chunks)
    attrs = _one_call(cap, INVOKE_STREAM, index)
    assert attrs["tokentrace.stream.end"] == "completed"
    _recorded_by(layer, opened, "invoke-stream")
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, Decimal("0.003576"))


def test_a_model_arn_is_priced_by_the_model_it_names(cap: Capture, layer: str) -> None:
    """An inference profile's ARN (sent with its slashes and colons percent-encoded) is the call's
    model, priced by the model its resource id names: $0.0031194."""
    index, item = _llm(CACHED)
    arn = PROFILE_ARN + _model(item)
    with (
        ReplayServer({_path(arn, "converse"): [served(item)]}) as server,
        tokentrace.task("arn") as task,
    ):
        _client(server.url).converse(modelId=arn, **item.request_json())
    assert server.requests[0][0] == _path(arn, "converse")
    attrs = _one_call(cap, CACHED, index)
    assert attrs["gen_ai.request.model"] == arn
    assert task.totals.cost_usd == Decimal("0.0031194")


@pytest.mark.usefixtures("layer")
@pytest.mark.parametrize("layer", ["wire"], indirect=True)
def test_a_stream_closed_early_or_dropped_unread_is_one_call_without_usage(cap: Capture) -> None:
    """A ConverseStream closed before its end and an InvokeModel body dropped unread are calls whose
    usage is unknown (unpriced, never $0), each ended once."""
    server, ((stream_item, _), (nova, _)) = _serving(CACHED_STREAM, NOVA)
    with server, tokentrace.task("unread") as task:
        client = _client(server.url)
        response = client.converse_stream(modelId=_model(stream_item), **stream_item.request_json())
        response["stream"].close()
        response = client.invoke_model(modelId=_model(nova), body=nova.request_body)
        del response
        gc.collect()
    ends = [dict(span.attributes or {}).get("tokentrace.stream.end") for span in cap.call_spans()]
    assert ends == ["closed", None]
    assert (task.totals.llm_calls, task.totals.unpriced_calls, task.totals.cost_usd) == (2, 2, 0)


def test_other_aws_traffic_is_left_alone(cap: Capture, layer: str, opened: list[_wire.Route]) -> None:
    """A GET (ListFoundationModels), a POST to another path (ApplyGuardrail) and a POST to a model
    path whose body is no model request are not calls."""
    routes = {
        "/foundation-models": [Recorded(b'{"modelSummaries": []}')],
        "/guardrail/g/version/1/apply": [Recorded(b'{"action": "NONE", "outputs": [], "assessments": []}')],
        "/model/m/converse": [Recorded(b"{}")],
    }
    with ReplayServer(routes) as server, tokentrace.task("other") as task:
        _client(server.url, "bedrock").list_foundation_models()
        _client(server.url).apply_guardrail(
            guardrailIdentifier="g", guardrailVersion="1", source="INPUT", content=[{"text": {"text": "hi"}}]
        )
        request = botocore.awsrequest.AWSRequest("POST", server.url + "/model/m/converse", data=b"a=1")
        botocore.httpsession.URLLib3Session().send(request.prepare())
    assert len(server.requests) == 3
    assert (cap.call_spans(), task.totals.llm_calls) == ([], 0)
    assert opened == []


@pytest.mark.parametrize("layer", ["wire"], indirect=True)
def test_a_budget_stops_the_second_request_before_it_is_sent(cap: Capture, layer: str) -> None:
    """``Budget(max_llm_calls=1)``: the second Converse raises ``BudgetExceeded`` before it leaves."""
    _, item = _llm(CACHED)
    budget = tokentrace.Budget(max_llm_calls=1)
    with (
        ReplayServer({item.key[3]: [served(item)]}) as server,
        tokentrace.task("budget", budget=budget) as task,
    ):
        client = _client(server.url)
        client.converse(modelId=_model(item), **item.request_json())
        with pytest.raises(tokentrace.BudgetExceeded):
            client.converse(modelId=_model(item), **item.request_json())
        assert len(server.requests) == 1
    assert (task.totals.llm_calls, task.totals.cost_usd) == (1, Decimal("0.0031194"))


THROTTLED = Recorded(
    b'{"message": "Too many requests, please wait before trying again."}',
    status=429,
    headers={"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"},
)


@pytest.mark.parametrize("layer", ["wire"], indirect=True)
@pytest.mark.parametrize("operation", ["converse", "converse_stream"])
def test_an_error_status_is_a_failed_call_without_usage(cap: Capture, layer: str, operation: str) -> None:
    """A 429 ThrottlingException, read by botocore whole or from the streamed body it leaves, is a
    call that failed: its status code, no tokens, never $0."""
    _, item = _llm(CACHED)
    verb = operation.replace("_", "-")
    with (
        ReplayServer({_path(_model(item), verb): [THROTTLED]}) as server,
        tokentrace.task("throttled"),
        pytest.raises(botocore.exceptions.ClientError, match="ThrottlingException"),
    ):
        getattr(_client(server.url), operation)(modelId=_model(item), **item.request_json())
    (span,) = cap.call_spans()
    attrs = dict(span.attributes or {})
    assert attrs["error.type"] == "ProviderHTTPError"
    assert attrs["http.response.status_code"] == 429
    assert attrs["tokentrace.cost.status"] == "no_usage"


def _signed(url: str, body: bytes) -> Any:
    """A request signed by hand with SigV4, as a client without boto3's client methods sends one."""
    request = botocore.awsrequest.AWSRequest(
        "POST", url, data=body, headers={"content-type": "application/json"}
    )
    credentials = botocore.credentials.Credentials("AKIDEXAMPLE", "secret")
    botocore.auth.SigV4Auth(credentials, "bedrock", "us-east-1").add_auth(request)
    return request.prepare()


def test_a_hand_signed_request_is_read_from_its_compressed_body(cap: Capture) -> None:
    """A SigV4 request sent with ``URLLib3Session`` (no client method in flight, every integration
    on), its response gzip-compressed and read whole by botocore as sent: one exact call."""
    index, item = _llm(CACHED)
    compressed = Recorded(gzip.compress(item.body), headers={"content-encoding": "gzip"})
    with ReplayServer({item.key[3]: [compressed]}) as server, tokentrace.task("signed") as task:
        response = botocore.httpsession.URLLib3Session().send(
            _signed(server.url + item.key[3], item.request_body)
        )
    assert gzip.decompress(response.content) == item.body
    _one_call(cap, CACHED, index)
    assert task.totals.cost_usd == Decimal("0.0031194")


@pytest.mark.parametrize("layer", ["wire"], indirect=True)
def test_a_watched_body_still_takes_a_socket_timeout(cap: Capture, layer: str) -> None:
    """``StreamingBody.set_socket_timeout`` reaches through the watcher to urllib3's socket."""
    _, item = _llm(NOVA)
    with ReplayServer({item.key[3]: [served(item)]}) as server, tokentrace.task("timeout") as task:
        response = _client(server.url).invoke_model(modelId=_model(item), body=item.request_body)
        assert isinstance(response["body"]._raw_stream, _wire_urllib3.WatchedRaw)
        response["body"].set_socket_timeout(5.0)
        assert response["body"].read() == item.body
    assert task.totals.cost_usd == Decimal("0.000000875")


def test_uninstrument_restores_the_sessions_send() -> None:
    """Undoing the integration puts ``URLLib3Session.send`` back; instrumenting wraps it once."""
    restores("botocore", (botocore.httpsession.URLLib3Session, "send"))


HOOKS = [
    *WIRE_STEPS,
    (_wire, "may_route"),
    (_wire, "peek_url"),
    (botocore_integration, "_peek"),
    (_wire.Exchange, "read"),
    (botocore_integration, "_streamed"),
    (botocore_integration, "_received"),
    (_wire_urllib3.WatchedRaw, "_self_decoded"),
    (_wire_urllib3.WatchedRaw, "_self_read_into"),
]


def _without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value for key, value in response.items() if key not in ("ResponseMetadata", "body", "stream")
    }


def _every_way(url: str) -> Iterator[Any]:
    """What the application gets: each operation, each way of reading a body, and the error of a
    request to a closed port."""
    client = _client(url)
    for path in (CACHED, CACHED_STREAM, NOVA, INVOKE_STREAM):
        _, item = _llm(path)
        model = _model(item)
        if path == CACHED:
            yield _without_metadata(client.converse(modelId=model, **item.request_json()))
        elif path == CACHED_STREAM:
            response = client.converse_stream(modelId=model, **item.request_json())
            yield [event for event in response["stream"]]
        elif path == NOVA:
            for how in ("read", "iter_chunks", "iter_lines", "readinto"):
                response = client.invoke_model(modelId=model, body=item.request_body)
                body = response["body"]
                if how == "read":
                    yield how, body.read()
                elif how == "readinto":
                    yield how, _read_into(body)
                else:
                    yield how, list(getattr(body, how)(chunk_size=16))
        else:
            response = client.invoke_model_with_response_stream(modelId=model, body=item.request_body)
            yield list(response["body"])
    _, item = _llm(CACHED)
    with pytest.raises(botocore.exceptions.EndpointConnectionError) as refused:
        _client("http://127.0.0.1:9").converse(modelId=_model(item), **item.request_json())
    yield type(refused.value)


@pytest.mark.usefixtures("lenient")
@pytest.mark.parametrize("layer", ["wire"], indirect=True)
@pytest.mark.parametrize(("target", "name"), HOOKS, ids=[f"{t.__name__}.{n}" for t, n in HOOKS])
def test_a_failing_wire_step_leaves_every_request_as_it_would_be(
    target: Any, name: str, layer: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With any of tokentrace's steps raising, every request returns exactly what (or raises exactly
    the error) it does with tokentrace off, and the failure is logged."""
    server, _ = _serving(CACHED, CACHED_STREAM, NOVA, INVOKE_STREAM)
    with server:
        baseline = requests_unchanged(
            ("botocore",), lambda: list(_every_way(server.url)), (target, name), monkeypatch, caplog
        )
    assert baseline[0]["usage"]["outputTokens"] == 185
