"""One replica of a fleet: it resolves support tickets for a tenant, writing to the fleet's
ledger and held to a per-tenant daily limit that every replica shares (docs/fleet.md).

Offline: it replays recorded real OpenAI and Anthropic responses (the agent ``tokentrace demo``
runs: 3 calls a ticket) from a local server on 127.0.0.1. The ledger, and with it the limit's
counters, is ``TOKENTRACE_LEDGER``: a ``postgresql://`` URL for a fleet (a file path holds the
limit across the processes of one machine).

    export TOKENTRACE_LEDGER=postgresql://app:PASSWORD@127.0.0.1:5432/ledger
    python examples/fleet_replica.py --name A --tenant acme --tickets 2
    python examples/fleet_replica.py --name B --tenant acme --tickets 2
"""

from __future__ import annotations

import argparse

import tokentrace
from tokentrace._cli.demo import offline_clients, replay_server, resolve_ticket


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", default="A", help="this replica's name, for its output")
    parser.add_argument("--tenant", default="acme")
    parser.add_argument("--tickets", type=int, default=2)
    parser.add_argument("--max-calls", type=int, default=6, help="LLM calls a tenant may make per UTC day")
    args = parser.parse_args()

    # One allowance per tenant per UTC day, held in the ledger's store: every replica that
    # writes the same ledger draws on it.
    tokentrace.configure(limits=[tokentrace.Limit(per="tenant", max_llm_calls=args.max_calls, window="1d")])
    tokentrace.instrument()
    with replay_server() as url:
        oa, an = offline_clients(url)
        for n in range(1, args.tickets + 1):
            try:
                task = resolve_ticket(
                    f"Ticket {n}: my invoice is wrong.", "user-17", oa, an, tenant=args.tenant
                )
            except tokentrace.BudgetExceeded as exc:
                print(f"replica {args.name}, ticket {n}: refused before sending: {exc.breach.describe()}")
                break
            cost = task.totals.cost_usd.normalize()
            print(f"replica {args.name}, ticket {n}: resolved with {task.totals.llm_calls} calls, ${cost:f}")


if __name__ == "__main__":
    main()
