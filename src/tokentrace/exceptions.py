"""Errors that tokentrace raises.

Only explicit configuration calls raise them, with one deliberate exception that the user
opts into: ``BudgetExceeded``, raised before a request is sent when a task's budget says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokentrace.types import BudgetBreach, Totals

__all__ = ["BudgetExceeded", "ConfigurationError", "IntegrationError", "TokentraceError"]


class TokentraceError(Exception):
    """Base class of every error tokentrace raises."""


class ConfigurationError(TokentraceError, ValueError):
    """A configuration value is invalid; the message says which and what to change."""


class IntegrationError(TokentraceError):
    """A named integration cannot be instrumented (not installed, too old, or unknown)."""


class BudgetExceeded(TokentraceError):
    """An LLM call would take a task past its ``Budget``; the request was not sent.

    ``breach`` says which limit, what was spent and what the call was estimated to add;
    ``totals`` are the totals of the task whose budget it is, when the call was stopped.
    """

    def __init__(self, breach: BudgetBreach) -> None:
        super().__init__(f"{breach.describe()}; the request was not sent")
        self.breach = breach

    @property
    def totals(self) -> Totals:
        return self.breach.totals
