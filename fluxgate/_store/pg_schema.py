"""The PostgreSQL schema: versioned migrations per component, and the events table.

Every component (events, budgets, batches) records its version in
``fluxgate_schema`` and applies the migrations it lacks under one advisory
lock, so many hosts starting at once create each table once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from .._models import AiEventUser, CostEvent, Status

if TYPE_CHECKING:
    from .postgres import Conn

__all__ = [
    "EVENTS_TABLE",
    "EVENT_COLUMNS",
    "EVENT_MIGRATIONS",
    "ensure_events_schema",
    "ensure_schema",
    "event_from_row",
    "quoted",
]

_SCHEMA_LOCK = 0x666C7867_00000001


def ensure_schema(conn: Conn, component: str, migrations: Sequence[Sequence[str]]) -> int:
    """Apply the migrations ``component`` lacks, under a lock; return its version.

    ``migrations[k]`` holds the statements that take the component from
    version k to k + 1. They only ever add (tables, columns, indexes), so an
    older fluxgate keeps working on a newer database. Run inside a
    transaction: concurrent first uses wait for one another.
    """
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
    # Look before creating: CREATE ... IF NOT EXISTS still needs the CREATE
    # privilege, which a role that only uses the tables may not have.
    row = conn.execute("SELECT to_regclass('fluxgate_schema') IS NULL").fetchone()
    if row is not None and row[0]:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS fluxgate_schema ("
            " component text PRIMARY KEY, version integer NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now())"
        )
    row = conn.execute("SELECT version FROM fluxgate_schema WHERE component = %s", (component,)).fetchone()
    have = 0 if row is None else int(row[0])
    for statements in migrations[have:]:
        for statement in statements:
            conn.execute(statement)
    if len(migrations) > have:
        conn.execute(
            "INSERT INTO fluxgate_schema (component, version) VALUES (%s, %s)"
            " ON CONFLICT (component) DO UPDATE SET version = excluded.version, updated_at = now()",
            (component, len(migrations)),
        )
    return max(have, len(migrations))


EVENTS_TABLE = "fluxgate_events"


def _column_type(annotation: object) -> str:
    text = annotation if isinstance(annotation, str) else str(annotation)
    if text.startswith("Mapping") or "AiEventUser" in text:
        return "jsonb"
    if text.startswith("Decimal"):
        return "numeric"  # exact: the cost as the pricing code computed it
    if text.startswith("int"):
        return "bigint"
    if text == "bool":
        return "boolean"
    if text.startswith("float"):
        return "double precision"
    return "text"


#: Column name -> PostgreSQL type: one per ``CostEvent`` field, plus
#: ``cost_pusd``, the cost in integer pico-dollars as in the SQLite store
#: (NULL if it would not fit a bigint, about $9.2 million).
EVENT_COLUMNS: dict[str, str] = {f.name: _column_type(f.type) for f in attrs.fields(CostEvent)}
EVENT_COLUMNS["cost_pusd"] = "bigint"

_EVENT_INDEXES = {
    "ix_fluxgate_events_created_at": "created_at",
    "ix_fluxgate_events_feature": "feature, created_at",
    "ix_fluxgate_events_user_id": "user_id, created_at",
    "ix_fluxgate_events_model": "model",
}


def quoted(name: str) -> str:
    """A column name as an SQL identifier (``user`` is a reserved word in PostgreSQL)."""
    return '"' + name.replace('"', '""') + '"'


def _events_v1() -> tuple[str, ...]:
    columns = ", ".join(
        f"{quoted(name)} {kind} PRIMARY KEY" if name == "tracking_id" else f"{quoted(name)} {kind}"
        for name, kind in EVENT_COLUMNS.items()
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} ({columns})",
        *(f"CREATE INDEX IF NOT EXISTS {name} ON {EVENTS_TABLE} ({cols})" for name, cols in _EVENT_INDEXES.items()),
    )


EVENT_MIGRATIONS: tuple[tuple[str, ...], ...] = (_events_v1(),)


def ensure_events_schema(conn: Conn) -> None:
    """Create the events table, or add the columns a newer ``CostEvent`` defines.

    Missing columns are added before the migrations run (which may index
    them), so a table made by hand, partitioned say, is completed too. They
    are compared first: ``ALTER TABLE`` would wait behind a long report query.
    """
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
    have = {
        str(row[0])
        for row in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            (EVENTS_TABLE,),
        )
    }
    if have:
        for name, kind in EVENT_COLUMNS.items():
            if name not in have:
                conn.execute(f"ALTER TABLE {EVENTS_TABLE} ADD COLUMN IF NOT EXISTS {quoted(name)} {kind}")
    ensure_schema(conn, "events", EVENT_MIGRATIONS)


def event_from_row(row: Mapping[str, Any]) -> CostEvent:
    """Rebuild a :class:`CostEvent` from a ``fluxgate_events`` row read as a dict (readers, tests)."""
    data = dict(row)
    data.pop("cost_pusd", None)
    user = data.get("user")
    if isinstance(user, dict):
        fields = dict(user)
        data["user"] = AiEventUser(fields.pop("id"), **fields)
    data["cost_breakdown"] = {k: Decimal(v) for k, v in (data.get("cost_breakdown") or {}).items()}
    data["status"] = Status(data["status"])
    known = {f.name for f in attrs.fields(CostEvent)}
    return CostEvent(**{k: v for k, v in data.items() if k in known})
