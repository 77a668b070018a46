"""Which ledger: a SQLite file or a PostgreSQL URL, from an argument, ``TOKENTRACE_LEDGER`` or the
user's data directory, and how its name is shown (a password never is)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tokentrace.ledger._postgres import is_url, masked

__all__ = ["default_path", "default_target", "shown", "target_of"]


def default_path() -> Path:
    """Where the ledger file lives: ``TOKENTRACE_LEDGER`` (when it names a file), else the
    user's data directory."""
    configured = os.environ.get("TOKENTRACE_LEDGER", "").strip()
    if configured and not is_url(configured):
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "tokentrace" / "ledger.db"


def default_target() -> Path | str:
    """The ledger to use when none is given: ``TOKENTRACE_LEDGER`` (a file path or a PostgreSQL
    URL), else the file in the user's data directory."""
    configured = os.environ.get("TOKENTRACE_LEDGER", "").strip()
    return configured if is_url(configured) else default_path()


def target_of(value: str | os.PathLike[str] | None) -> Path | str:
    """A ledger named by a path, a PostgreSQL URL, or ``None`` (``default_target``)."""
    if value is None:
        return default_target()
    if is_url(value):
        return str(value).strip()
    return Path(value).expanduser()


def shown(target: Path | str) -> str:
    """A ledger's name as it may be printed (a URL's password masked)."""
    return masked(target) if isinstance(target, str) else str(target)
