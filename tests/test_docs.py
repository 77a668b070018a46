"""Every Python code block in the README and docs/ runs, offline, against recorded responses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.proc import ROOT, run_python

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

# A real server on 127.0.0.1 answering with recorded responses, and the SDKs pointed at it
# through their standard environment variables, so the documented code runs unchanged.
PRELUDE = """
import os
from pathlib import Path
from tokentrace.testing import Recorded, ReplayServer
_rec = Path("src/tokentrace/_demo/recordings")
_server = ReplayServer({
    "/v1/chat/completions": [Recorded((_rec / "openai_chat.json").read_bytes())],
    "/v1/chat/completions#stream": [
        Recorded((_rec / "openai_chat_stream.sse").read_bytes(), content_type="text/event-stream")
    ],
    "/v1/messages": [Recorded((_rec / "anthropic_messages_cached.json").read_bytes())],
}).__enter__()
os.environ.update(
    OPENAI_BASE_URL=_server.url + "/v1", OPENAI_API_KEY="docs",
    ANTHROPIC_BASE_URL=_server.url, ANTHROPIC_API_KEY="docs",
)
"""


def _blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", [p for p in DOCS if _blocks(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_documented_code_runs(path: Path) -> None:
    """The page's Python blocks run in order in one fresh interpreter without error."""
    code = PRELUDE + "\n".join(f"# --- block {i}\n{b}" for i, b in enumerate(_blocks(path)))
    run_python(code)


def test_every_doc_page_with_code_is_checked() -> None:
    """The pages this test runs include the README and the provider pages."""
    checked = {str(p.relative_to(ROOT)) for p in DOCS if _blocks(p)}
    assert {"README.md", "docs/concepts.md", "docs/pricing.md", "docs/providers/openai.md"} <= checked
