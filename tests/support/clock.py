"""The time tokentrace prices calls at, set by a test (some prices change with the time of day)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from tokentrace._pricing import prices as _pricing


def utc(when: str) -> datetime:
    """``"16:30:01"`` on a fixed day (2026-12-02), in UTC."""
    hour, minute, *second = (int(part) for part in when.split(":"))
    return datetime(2026, 12, 2, hour, minute, second[0] if second else 0, tzinfo=timezone.utc)


def set_price_clock(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """Price every call from now on as if the wall clock read ``when`` (see ``utc``)."""
    moment = utc(when).timestamp()
    monkeypatch.setattr(_pricing, "_clock", lambda: moment)
