"""Two cost questions answered from Arize Phoenix: cost by feature, and the most expensive task runs.

Send tokentrace's spans to Phoenix (it takes OTLP traces, not metrics):

    export OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:6006
    export OTEL_RESOURCE_ATTRIBUTES=openinference.project.name=support-bot
    export OTEL_METRICS_EXPORTER=none
    python examples/support_agent.py

then ask Phoenix's REST API (``GET /v1/projects/{project}/spans``; standard library only):

    python examples/phoenix_costs.py --url http://localhost:6006 --project support-bot --days 7

Cost by feature sums the **call** spans (``tokentrace.cost.usd``), each counted once; the most
expensive runs are the **root task** spans (``parent_id=null``), whose
``tokentrace.task.cost.usd`` already holds their whole tree. Sums are exact decimals.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any


def spans(url: str, project: str, **query: Any) -> list[dict[str, Any]]:
    """Every span of ``project`` matching ``query`` (``start_time``, ``parent_id``, ``attribute``...)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 1000, **query, **({"cursor": cursor} if cursor else {})}
        address = f"{url}/v1/projects/{urllib.parse.quote(project)}/spans?" + urllib.parse.urlencode(
            params, doseq=True
        )
        try:
            with urllib.request.urlopen(address, timeout=30) as response:
                page = json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # the project does not exist yet: no span has arrived
                return []
            raise
        found += page["data"]
        cursor = page.get("next_cursor")
        if not cursor:
            return found


def _money(value: object) -> Decimal:
    return Decimal(str(value))  # the shortest repr of the exported double: $0.00261, not 0.0026099...


def cost_by_feature(url: str, project: str, since: datetime) -> dict[str, Decimal]:
    """The cost of every LLM call since ``since``, summed per ``tokentrace.feature``."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for span in spans(url, project, start_time=since.isoformat()):
        attributes = span["attributes"]
        if "tokentrace.cost.usd" in attributes:  # a call span (task spans carry task.cost.usd)
            feature = str(attributes.get("tokentrace.feature", "(none)"))
            totals[feature] += _money(attributes["tokentrace.cost.usd"])
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def top_task_runs(url: str, project: str, since: datetime, limit: int = 10) -> list[tuple[Decimal, str, str]]:
    """The ``limit`` most expensive root task runs since ``since``: (cost, task name, trace id)."""
    runs = [
        (
            _money(span["attributes"]["tokentrace.task.cost.usd"]),
            str(span["attributes"].get("tokentrace.task.name", span["name"])),
            str(span["context"]["trace_id"]),
        )
        for span in spans(url, project, start_time=since.isoformat(), parent_id="null")
        if "tokentrace.task.cost.usd" in span["attributes"]
    ]
    return sorted(runs, key=lambda run: -run[0])[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://localhost:6006", help="Phoenix's address")
    parser.add_argument("--project", default="default", help="openinference.project.name of the spans")
    parser.add_argument("--days", type=float, default=7, help="how far back to look")
    parser.add_argument("--top", type=int, default=10, help="how many task runs to list")
    args = parser.parse_args()
    since = datetime.now(timezone.utc) - timedelta(days=args.days)
    print(f"cost by feature, last {args.days:g} days:")
    for feature, cost in cost_by_feature(args.url, args.project, since).items():
        print(f"  {feature:20s} ${cost.normalize():f}")
    print("most expensive task runs:")
    for cost, name, trace_id in top_task_runs(args.url, args.project, since, args.top):
        print(f"  ${cost.normalize():f}  {name}  trace {trace_id}")


if __name__ == "__main__":
    main()
