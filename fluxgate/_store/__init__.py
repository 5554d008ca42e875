"""The store: events, budget spend and batch contexts, in a SQLite file or in PostgreSQL.

``location`` turns the one setting (``store=``, ``db_path=``, ``$FLUXGATE_DB``)
into a file or a URL. SQLite: ``sqlite`` opens the file the one safe way
every writer uses; ``events`` is the events schema and :class:`SQLiteSink`;
``spend`` the budget ledger; ``batches`` the batch-context tables.
PostgreSQL: ``postgres`` (URLs, connections, schema and migrations),
``pg_spend`` and ``pg_batches``; the sink is ``fluxgate.sinks.PostgresSink``.
"""

from __future__ import annotations

from .batches import BatchStore, Claim
from .events import (
    COLUMNS,
    TABLE,
    SQLiteSink,
    breakdown_text,
    default_db_path,
    ensure_schema,
    event_from_row,
    usage_values,
)
from .lines import (
    clean_text,
    encode,
    event_dict,
    event_from_dict,
    event_line,
    lock_file,
    unlock_file,
    write_all,
)
from .location import describe_store, resolve_store
from .pg_batches import PostgresBatchStore
from .pg_schema import EVENT_COLUMNS, EVENTS_TABLE, ensure_events_schema, quoted
from .pg_schema import event_from_row as pg_event_from_row
from .pg_spend import PostgresSpendStore
from .postgres import (
    Connections,
    StoreError,
    StoreUnavailableError,
    check_timeout,
    is_postgres_url,
    mask_url,
    parse_target,
)
from .spend import SQLiteSpendStore
from .sqlite import connect, immediate

__all__ = [
    "COLUMNS",
    "EVENTS_TABLE",
    "EVENT_COLUMNS",
    "TABLE",
    "BatchStore",
    "Claim",
    "Connections",
    "PostgresBatchStore",
    "PostgresSpendStore",
    "SQLiteSink",
    "SQLiteSpendStore",
    "StoreError",
    "StoreUnavailableError",
    "breakdown_text",
    "check_timeout",
    "clean_text",
    "connect",
    "default_db_path",
    "describe_store",
    "encode",
    "ensure_events_schema",
    "ensure_schema",
    "event_dict",
    "event_from_dict",
    "event_from_row",
    "event_line",
    "immediate",
    "is_postgres_url",
    "lock_file",
    "mask_url",
    "parse_target",
    "pg_event_from_row",
    "quoted",
    "resolve_store",
    "unlock_file",
    "usage_values",
    "write_all",
]
