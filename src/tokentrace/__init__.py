"""tokentrace: what each task of your LLM application costs, exactly."""

from tokentrace._api import dropped_spans, instrument, uninstrument
from tokentrace._config import configure
from tokentrace._scope import TaskScope, task
from tokentrace._task import Task, current_task
from tokentrace._version import __version__
from tokentrace.exceptions import BudgetExceeded
from tokentrace.types import Budget, BudgetBreach, Totals

__all__ = [
    "Budget",
    "BudgetBreach",
    "BudgetExceeded",
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
