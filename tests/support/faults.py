"""The fault matrix of the HTTP client integrations: each of tokentrace's own steps made to raise
in turn, the application's requests must come out exactly as they do with tokentrace off."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

import tokentrace
from tokentrace._core import call as _call

T = TypeVar("T")


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
