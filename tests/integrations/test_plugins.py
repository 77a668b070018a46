"""A third-party integration, installed through the entry-point group, records calls exactly as
a built-in does, and the built-in provider integrations use only the public plug-in API."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from tests.support.proc import ROOT, run_python

# The plug-in is the code docs/architecture.md shows, taken from there unchanged.
_DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
PLUGIN = re.search(r'```python\n("""tokentrace_minichat:.*?)```', _DOC, re.S).group(1)  # type: ignore[union-attr]

# A small client library for OpenAI-compatible servers: JSON over urllib, streams as SSE.
MINICHAT = """
import json
import urllib.request


class Client:
    def __init__(self, base_url):
        self.base_url = base_url

    def complete(self, *, model, messages, stream=False):
        body = json.dumps({"model": model, "messages": messages, "stream": stream}).encode()
        request = urllib.request.Request(
            self.base_url + "/chat/completions", body, {"Content-Type": "application/json"}
        )
        response = urllib.request.urlopen(request)
        if not stream:
            with response:
                return json.load(response)
        return _chunks(response)


def _chunks(response):
    with response:
        for line in response:
            line = line.decode().strip()
            if line.startswith("data: ") and line != "data: [DONE]":
                yield json.loads(line[6:])
"""


def _install(site: Path) -> None:
    """``minichat`` and ``tokentrace-minichat`` as installed distributions in ``site``."""
    (site / "minichat.py").write_text(MINICHAT, encoding="utf-8")
    (site / "tokentrace_minichat.py").write_text(PLUGIN, encoding="utf-8")
    for name, extra in (
        ("minichat", ""),
        ("tokentrace_minichat", "minichat = tokentrace_minichat:MinichatIntegration\n"),
    ):
        info = site / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
        )
        if extra:
            (info / "entry_points.txt").write_text(f"[tokentrace.integrations]\n{extra}", encoding="utf-8")


SCRIPT = """
import json
from pathlib import Path

import minichat
import tokentrace
from tokentrace.testing import Recorded, ReplayServer, capture

recordings = Path("src/tokentrace/_cli/demo/recordings")
server = ReplayServer({
    "/v1/chat/completions": [Recorded((recordings / "openai_chat.json").read_bytes())],
    "/v1/chat/completions#stream": [
        Recorded((recordings / "openai_chat_stream.sse").read_bytes(), content_type="text/event-stream")
    ],
})
with server, capture() as cap:
    assert "minichat" in tokentrace.instrument()
    client = minichat.Client(server.url + "/v1")
    messages = [{"role": "user", "content": "hi"}]
    with tokentrace.task("plugin") as task:
        reply = client.complete(model="gpt-4o-mini", messages=messages)
        chunks = list(client.complete(model="gpt-3.5-turbo", messages=messages, stream=True))
    spans = [dict(span.attributes) for span in cap.call_spans()]
print(json.dumps({
    "reply_model": reply["model"],
    "chunks": len(chunks),
    "spans": [
        {k: v for k, v in s.items() if k.startswith(("gen_ai.", "tokentrace.cost"))} for s in spans
    ],
    "totals": [task.totals.llm_calls, task.totals.input_tokens, task.totals.output_tokens,
               str(task.totals.cost_usd)],
}))
"""


def test_a_plugin_installed_through_the_entry_point_group_records_its_calls(tmp_path: Path) -> None:
    """The documented 40-line plug-in, found through ``tokentrace.integrations`` entry points,
    records a plain and a streamed call with the recordings' exact usage and cost, and the
    application gets the SDK's own results."""
    _install(tmp_path)
    out = json.loads(run_python(SCRIPT, env={"PYTHONPATH": f"{tmp_path}:{ROOT}/src:{ROOT}"}))
    assert out["reply_model"] == "gpt-4o-mini-2024-07-18"
    plain, streamed = out["spans"]
    assert plain["gen_ai.provider.name"] == "openai"
    assert plain["gen_ai.request.model"] == "gpt-4o-mini"
    assert plain["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert (plain["gen_ai.usage.input_tokens"], plain["gen_ai.usage.output_tokens"]) == (123, 17)
    # 123 x $0.15 + 17 x $0.60 per million
    assert (plain["tokentrace.cost.status"], plain["tokentrace.cost.usd"]) == ("priced", 0.00002865)
    assert streamed["gen_ai.request.stream"] is True
    assert (streamed["gen_ai.usage.input_tokens"], streamed["gen_ai.usage.output_tokens"]) == (13, 20)
    # 13 x $0.50 + 20 x $1.50 per million (gpt-3.5-turbo-0125)
    assert (streamed["tokentrace.cost.status"], streamed["tokentrace.cost.usd"]) == ("priced", 0.0000365)
    assert out["chunks"] > 2
    assert out["totals"] == [2, 136, 37, "0.00006515"]


PUBLIC = ("tokentrace.integrations", "tokentrace.types", "tokentrace.exceptions")
PROVIDERS = ("openai", "anthropic", "bedrock", "cohere", "google_genai", "groq", "mistral")


@pytest.mark.parametrize("name", PROVIDERS)
def test_built_in_provider_integrations_import_only_the_plugin_api(name: str) -> None:
    """A built-in provider integration imports from tokentrace only what a plug-in can: the
    public ``tokentrace.integrations`` (and its sibling integrations), types and exceptions, and
    the attribute names module for an attribute of its own."""
    tree = ast.parse(
        (ROOT / "src" / "tokentrace" / "integrations" / f"{name}.py").read_text(encoding="utf-8")
    )
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tokentrace")
    }
    private = {m for m in imported if not m.startswith(PUBLIC) and m != "tokentrace._foundation"}
    assert private == set()
