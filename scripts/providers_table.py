"""Write docs/providers.md: the corpus test's pass table per provider and API, and every recorded
cassette of the full collection that the corpus does not replay, with the reason.

Usage: python scripts/providers_table.py [PATH/TO/full/cassettes]   (default: ../shared/cassettes)

It runs tests/integrations/test_corpus.py (a JUnit XML report, nothing else) and reads each
case's outcome, so the table says what the suite measured on this checkout, never what was typed.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integrations.test_corpus import DIFFERS, LEFT_OUT  # after the path is set

CORPUS = ROOT / "tests" / "cassettes" / "MANIFEST.tsv"
OUT = ROOT / "docs" / "providers.md"

# The SDK each replayed provider goes through.
SDK = {
    "openai": "openai",
    "openrouter": "openai (base URL)",
    "azure-openai": "openai (`AzureOpenAI`)",
    "deepseek": "openai (base URL)",
    "together": "openai (base URL)",
    "anthropic": "anthropic",
    "groq": "groq",
    "mistral": "mistralai",
    "cohere": "cohere (`ClientV2`)",
    "gemini": "google-genai",
    "vertexai": "google-genai (`vertexai=True`)",
    "bedrock": "boto3 (and anthropic's `AnthropicBedrock` for the recordings made with it)",
}

# Why a (provider, API) of the full collection is not replayed.
NOT_YET = {
    "gemini": "Gemini's Interactions API is not recorded yet",
    "cohere": "cohere's v1 API (the legacy `Client`) and rerank are not instrumented yet",
    "openai+cohere": "cohere (rerank) is not instrumented yet",
    "pydantic-gateway": "the Pydantic AI Gateway's proxy path is not a recognised endpoint yet",
}
NOT_TOKEN_PRICED = {
    "assistants": "the Assistants API bills through runs, which tokentrace does not record yet",
    "assistants+chat.completions": "the Assistants API bills through runs, which tokentrace does not record yet",
    "images.generations": "image generation is priced per image, which tokentrace does not record yet",
    "moderations": "moderations are free and not recorded",
    "audio.transcriptions+responses+audio.speech": "audio APIs are priced per second or character, not recorded yet",
    "complete": "Anthropic's legacy Text Completions API is retired and not recorded",
}


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _outcomes() -> dict[str, list[str]]:
    """Each corpus cassette's case outcomes ("passed", "failed", ...), from a JUnit report."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "corpus.xml"
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "tests/integrations/test_corpus.py", f"--junitxml={report}"],
            cwd=ROOT, check=False, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        tree = ET.parse(report)  # our own pytest's report
    outcomes: dict[str, list[str]] = defaultdict(list)
    for case in tree.iter("testcase"):
        name = case.get("name", "")
        if "[" not in name:
            continue
        path = name.split("[", 1)[1].rsplit("]", 1)[0].split(":", 1)[1]
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        outcomes[path].append("failed" if failed else "skipped" if skipped else "passed")
    return outcomes


def _reason(row: dict[str, str]) -> str:
    if row["path"] in LEFT_OUT:
        return LEFT_OUT[row["path"]]
    if row["replay_check"].startswith("failed"):
        return "the recording cannot be replayed: " + row["replay_check"].removeprefix("failed: ")
    if row["provider"] == "vertexai":
        return (
            "recorded with the Vertex AI SDK (`vertexai`, proto JSON with numeric enums), which "
            "tokentrace does not instrument; google-genai cannot parse these responses"
        )
    if row["provider"] in NOT_YET:
        return NOT_YET[row["provider"]]
    if row["api"] in NOT_TOKEN_PRICED:
        return NOT_TOKEN_PRICED[row["api"]]
    raise SystemExit(f"no reason known for leaving out {row['path']} ({row['provider']} {row['api']})")


def main(source: Path) -> None:
    corpus = _read(CORPUS)
    full = _read(source / "MANIFEST.tsv")
    outcomes = _outcomes()
    replayed = {row["path"] for row in corpus} - set(LEFT_OUT)

    table: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for row in corpus:
        if row["path"] not in replayed:
            continue
        counts = table[(row["provider"], row["api"])]
        counts["cassettes"] += 1
        counts["streamed"] += row["streaming"] in ("yes", "mixed")
        for outcome in outcomes.get(row["path"], ["not run"]):
            counts[outcome] += 1
            counts["cases"] += 1

    lines = [
        "# Providers: the recorded-corpus pass table",
        "",
        "Generated by `scripts/providers_table.py` from a run of `tests/integrations/test_corpus.py`;",
        "do not edit by hand.",
        "",
        "The corpus test replays every recorded cassette of an API tokentrace records through the",
        "official SDK, inside a task, and checks each call span and the task's totals against the",
        "usage the provider reported (`tests/cassettes/ground_truth.jsonl`). A cassette whose",
        "recording came from an async client is replayed through both clients (two cases).",
        "",
        "| provider | API | SDK | cassettes | streamed | cases | passed | failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (provider, api), counts in sorted(table.items()):
        lines.append(
            f"| {provider} | {api} | {SDK[provider]} | {counts['cassettes']} | {counts['streamed']} "
            f"| {counts['cases']} | {counts['passed']} | {counts['failed'] + counts['not run']} |"
        )
    total = Counter[str]()
    for counts in table.values():
        total.update(counts)
    lines.append(
        f"| **all** | | | **{total['cassettes']}** | **{total['streamed']}** | **{total['cases']}** "
        f"| **{total['passed']}** | **{total['failed'] + total['not run']}** |"
    )

    lines += [
        "",
        "Where the test expects other numbers than the recording's own usage object, it says why:",
        "",
        "| cassette | expected | reason |",
        "|---|---|---|",
    ]
    for path, (want, why) in sorted(DIFFERS.items()):
        numbers = ", ".join(f"{key} {value}" for key, value in want.items() if value)
        lines.append(f"| `{path}` | {numbers} | {why} |")

    left = [row for row in full if row["path"] not in replayed]
    by_reason: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in left:
        by_reason[_reason(row)].append(row)
    lines += [
        "",
        f"## Left out: {len(left)} of {len(full)} recorded cassettes",
        "",
        "| reason | provider / API | cassettes |",
        "|---|---|---|",
    ]
    for reason, rows in sorted(by_reason.items(), key=lambda item: -len(item[1])):
        apis = ", ".join(sorted({f"{r['provider']} {r['api']}" for r in rows}))
        lines.append(f"| {reason} | {apis} | {len(rows)} |")
    lines += ["", "Every left-out cassette, by reason:", ""]
    for reason, rows in sorted(by_reason.items(), key=lambda item: -len(item[1])):
        lines += [f"<details><summary>{reason} ({len(rows)})</summary>", ""]
        lines += [f"- `{row['path']}`" for row in sorted(rows, key=lambda r: r["path"])]
        lines += ["", "</details>", ""]
    OUT.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}: {total['passed']} of {total['cases']} cases passed")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "cassettes")
