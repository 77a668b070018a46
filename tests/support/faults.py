"""What every HTTP client integration's tests check alike: the fault matrix (each of tokentrace's
own steps made to raise in turn, the application's requests must come out exactly as they do with
tokentrace off), and that undoing the integration is exact."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

import tokentrace
from tokentrace._core import call as _call
from tokentrace.integrations import _wire, _wire_bodies

T = TypeVar("T")

# The steps every recorded request goes through, whatever its client: opening its call, its
# response coming in or its request failing, and its body fed and ended.
WIRE_STEPS: list[tuple[Any, str]] = [
    (_wire, "_open_call"),
    (_wire.Exchange, "responded"),
    (_wire.Exchange, "failed"),
    (_wire_bodies.Body, "feed"),
    (_wire_bodies.Body, "end"),
]


class Injected(RuntimeError):
    """The error a step of tokentrace's is made to raise."""


def boom(*args: Any, **kwargs: Any) -> Any:
    raise Injected("injected fault")


def requests_unchanged(
    integrations: tuple[str, ...],
    every_way: Callable[[], T],
    step: tuple[Any, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> T:
    """What ``every_way()`` gives with ``integrations`` off, then with them on and ``step``
    (an object and the name of one of its functions) raising: the same, the failure logged, and no
    call left in flight. Returns what it gave."""
    tokentrace.uninstrument(*integrations)
    try:
        baseline = every_way()
    finally:
        tokentrace.instrument(*integrations)
    target, name = step
    monkeypatch.setattr(target, name, boom)
    with caplog.at_level(logging.WARNING, logger="tokentrace"), tokentrace.task("faults"):
        assert every_way() == baseline
    assert any("Injected" in r.getMessage() for r in caplog.records), name
    assert _call.active_call() is None
    return baseline


def restores(integration: str, *doors: tuple[Any, str]) -> None:
    """Undoing ``integration`` puts each of its doors (an object and a function's name) back, and
    instrumenting it again wraps each once."""
    tokentrace.uninstrument(integration)
    assert not [name for owner, name in doors if hasattr(getattr(owner, name), "__wrapped__")]
    assert tokentrace.instrument(integration) == [integration]
    assert tokentrace.instrument(integration) == []
    assert all(hasattr(getattr(owner, name), "__wrapped__") for owner, name in doors)
