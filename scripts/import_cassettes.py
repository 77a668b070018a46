"""Copy the recorded provider interactions that the test suite replays into tests/cassettes.

Usage: python scripts/import_cassettes.py PATH/TO/cassettes

Selects every cassette of a provider API that tokentrace records (``SURFACES``, the same list
tests/integrations/test_corpus.py replays) unless its replay upstream failed for a reason in
the recording itself, and copies it unchanged (keeping its source folder layout and
each source's licence files) with its rows of the manifest and of the ground-truth usage file.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

SURFACES = {
    ("openai", "chat.completions"),
    ("openai", "responses"),
    ("openai", "embeddings"),
    ("openai", "completions"),
    ("openrouter", "chat.completions"),
    ("anthropic", "messages"),
    ("azure-openai", "chat.completions"),
    ("azure-openai", "completions"),
    ("azure-openai", "embeddings"),
    ("deepseek", "chat.completions"),
    ("together", "chat.completions"),
    ("together", "completions"),
    ("groq", "chat.completions"),
    ("mistral", "chat.completions"),
    ("mistral", "embeddings"),
    ("cohere", "v2/chat"),
    ("cohere", "v2/embed"),
    ("gemini", "generateContent"),
    ("gemini", "streamGenerateContent"),
    ("gemini", "batchEmbedContents"),
    ("vertexai", "generateContent"),
    ("vertexai", "streamGenerateContent"),
    ("bedrock", "converse"),
    ("bedrock", "converse-stream"),
    ("bedrock", "invoke"),
    ("bedrock", "invoke-with-response-stream"),
    # Cassettes that mix recorded APIs (a RAG pipeline: embeddings, then chat).
    ("openai", "chat.completions+embeddings"),
    ("openai", "embeddings+chat.completions"),
    ("openai", "embeddings+completions"),
}


def main(source: Path, target: Path) -> None:
    with (source / "MANIFEST.tsv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    # Recordings not replay-checked upstream are checked by the corpus test; a failed check
    # (a body that is not valid JSON in the recording) is left out, and docs/providers.md says so.
    chosen = [
        r
        for r in rows
        if (r["provider"], r["api"]) in SURFACES
        and (not r["replay_check"].startswith("failed") or "AnthropicBedrock" in r["sdk_headers"])
        # Vertex AI recordings made by google-genai; the Vertex AI SDK's (proto JSON) are not.
        and (r["provider"] != "vertexai" or "google-genai-sdk" in r["sdk_headers"])
    ]
    paths = {r["path"] for r in chosen}
    for path in sorted(paths):
        dest = target / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / path, dest)
    for folder in {p.split("/")[0] for p in paths}:
        for licence in (source / folder).iterdir():
            if licence.is_file() and any(k in licence.name.upper() for k in ("LICEN", "NOTICE")):
                shutil.copyfile(licence, target / folder / licence.name)
    with (target / "MANIFEST.tsv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(chosen)
    with (
        (source / "usage_by_interaction.jsonl").open(encoding="utf-8") as f,
        (target / "ground_truth.jsonl").open("w", encoding="utf-8") as out,
    ):
        for line in f:
            if json.loads(line)["path"] in paths:
                out.write(line)
    print(f"copied {len(paths)} cassettes into {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parent.parent / "tests" / "cassettes")
