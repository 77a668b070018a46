"""Extract the recorded response bodies that the examples replay (from tests/cassettes).

Usage: python scripts/extract_example_recordings.py
"""

from __future__ import annotations

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
}


def main() -> None:
    out = ROOT / "examples" / "recordings"
    out.mkdir(parents=True, exist_ok=True)
    for name, path in PICKS.items():
        (interaction,) = [
            i for i in load(CASSETTES / path) if i.key[3].endswith(("/completions", "/messages"))
        ][:1]
        (out / name).write_bytes(interaction.body)
    for licence in ("LICENSE", "LICENSE.Apache", "LICENSE.BSD3", "NOTICE"):
        shutil.copyfile(CASSETTES / "dd-trace-py" / licence, out / licence)


if __name__ == "__main__":
    main()
