"""Copy the recorded provider interactions that the test suite replays into tests/cassettes.

Usage: python scripts/import_cassettes.py PATH/TO/cassettes

Selects every OpenAI Chat Completions, Responses and Embeddings cassette and every Anthropic
Messages cassette whose replay through the
current official SDK was verified, copies it unchanged (keeping its source folder layout and
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
}


def main(source: Path, target: Path) -> None:
    with (source / "MANIFEST.tsv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    # Legacy Completions recordings were not replay-checked upstream; the corpus test checks them.
    chosen = [
        r
        for r in rows
        if (r["provider"], r["api"]) in SURFACES
        and (r["replay_check"].startswith("verified") or r["api"] == "completions")
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
