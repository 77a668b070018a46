"""tokentrace: what each task of your LLM application costs, exactly.

The public names are loaded on first use (PEP 562), so ``import tokentrace`` costs almost
nothing until the application calls into it; ``tokentrace.instrument()`` or the first
``tokentrace.task`` loads OpenTelemetry's API and tokentrace's engine.
"""

from __future__ import annotations

import importlib

from tokentrace._version import __version__

# Not ``typing.TYPE_CHECKING``: importing ``typing`` alone would triple the import time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tokentrace._accounting.scope import TaskScope, task
    from tokentrace._accounting.task import Task, current_task
    from tokentrace._core.api import dropped_spans, instrument, uninstrument
    from tokentrace._telemetry.config import configure
    from tokentrace.exceptions import BudgetExceeded
    from tokentrace.types import Budget, BudgetBreach, Limit, Totals

__all__ = [
    "Budget",
    "BudgetBreach",
    "BudgetExceeded",
    "Limit",
    "Task",
    "TaskScope",
    "Totals",
    "__version__",
    "configure",
    "current_task",
    "dropped_spans",
    "instrument",
    "task",
    "uninstrument",
]

_HOMES = {
    "Budget": "tokentrace.types",
    "BudgetBreach": "tokentrace.types",
    "BudgetExceeded": "tokentrace.exceptions",
    "Limit": "tokentrace.types",
    "Task": "tokentrace._accounting.task",
    "TaskScope": "tokentrace._accounting.scope",
    "Totals": "tokentrace.types",
    "configure": "tokentrace._telemetry.config",
    "current_task": "tokentrace._accounting.task",
    "dropped_spans": "tokentrace._core.api",
    "instrument": "tokentrace._core.api",
    "task": "tokentrace._accounting.scope",
    "uninstrument": "tokentrace._core.api",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'tokentrace' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups are plain module attributes
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, "exceptions", "integrations", "ledger", "pricing", "testing", "types"})
