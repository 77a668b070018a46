"""Extract the recorded response bodies that ``tokentrace demo`` and the examples replay.

Usage: python scripts/extract_example_recordings.py
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.cassettes import CASSETTES, load

PICKS = {
    "openai_chat.json": "dd-trace-py/tests/cassettes/openai/openai_chat_completions_post_1d538f35.yaml",
    "openai_chat_cached.json": "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_prompt_caching_cache_read.yaml",
    "openai_chat_stream.sse": "dd-trace-py/tests/contrib/litellm/cassettes/completion_stream.yaml",
    "anthropic_messages_cached.json": "dd-trace-py/tests/contrib/anthropic/cassettes/anthropic_completion_cache_read.yaml",
    "openai_error_401.json": "dd-trace-py/tests/contrib/openai/cassettes/v1/chat_completion_error.yaml",
    "openai_embedding.json": "dd-trace-py/tests/contrib/openai/cassettes/v1/embedding.yaml",
}
# (file, cassette, the response's model): a model tokentrace has no price for.
UNPRICED = (
    "openai_completion_unpriced.json",
    "openllmetry/packages/opentelemetry-instrumentation-openai/tests/traces/cassettes/test_completions/"
    "test_async_completion.yaml",
    "davinci:2023-07-21-v2",
)


def main() -> None:
    out = ROOT / "src" / "tokentrace" / "_cli" / "demo" / "recordings"
    out.mkdir(parents=True, exist_ok=True)
    for name, path in PICKS.items():
        (interaction,) = [
            i
            for i in load(CASSETTES / path)
            if i.key[3].endswith(("/completions", "/messages", "/embeddings"))
        ][:1]
        (out / name).write_bytes(interaction.body)
    for licence in ("LICENSE", "LICENSE.Apache", "LICENSE.BSD3", "NOTICE"):
        shutil.copyfile(CASSETTES / "dd-trace-py" / licence, out / licence)
    name, path, model = UNPRICED
    source = Path(__file__).resolve().parents[2] / "shared" / "cassettes" / path
    body = next(i.body for i in load(source) if json.loads(i.body or b"{}").get("model") == model)
    (out / name).write_bytes(body)
    shutil.copyfile(source.parents[len(Path(path).parts) - 2] / "LICENSE", out / "LICENSE.openllmetry")


if __name__ == "__main__":
    main()
