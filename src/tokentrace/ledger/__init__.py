"""The ledger: the record of every call and task run that ``tokentrace report`` reads, in a local
SQLite file or, for a fleet, in PostgreSQL.

``LedgerExporter`` is the OpenTelemetry span exporter that writes it; put it on a
``BatchSpanProcessor`` of your own ``TracerProvider`` to keep a ledger beside another backend.
``default_path()`` is where it is written when no path is given. The modules inside are private:
the writer (``_writer``) and the rows it writes (``_rows``), the schema and its migrations
(``_schema``), read-only opening (``_read``) and the queries behind ``report``, ``outcomes`` and ``whatif``.
"""

from __future__ import annotations

import importlib

# Not ``typing.TYPE_CHECKING``: the command line imports this package on every run.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from tokentrace.ledger._target import default_path
    from tokentrace.ledger._writer import LedgerExporter

__all__ = ["LedgerExporter", "default_path"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'tokentrace.ledger' has no attribute {name!r}")
    module = "tokentrace.ledger._target" if name == "default_path" else "tokentrace.ledger._writer"
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
