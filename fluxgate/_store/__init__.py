"""The local store: one SQLite opener, the events table, budget spend and batch contexts.

``sqlite`` opens the file the one safe way every writer uses; ``events`` is
the events schema and :class:`SQLiteSink`; ``spend`` the budget ledger;
``batches`` the batch-context tables.
"""

from __future__ import annotations

from .batches import BatchStore, Claim
from .events import COLUMNS, TABLE, SQLiteSink, default_db_path, ensure_schema, event_from_row
from .spend import SQLiteSpendStore
from .sqlite import connect, immediate

__all__ = [
    "COLUMNS",
    "TABLE",
    "BatchStore",
    "Claim",
    "SQLiteSink",
    "SQLiteSpendStore",
    "connect",
    "default_db_path",
    "ensure_schema",
    "event_from_row",
    "immediate",
]
