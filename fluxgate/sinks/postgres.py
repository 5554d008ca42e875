"""PostgresSink: one row per event in a PostgreSQL database many hosts share.

The table is ``fluxgate_events``: a column per ``CostEvent`` field (the cost
as an exact ``numeric``) plus ``cost_pusd``, the cost in integer pico-dollars
as in the SQLite store. It is created on first write, and newer fluxgates
only ever add to it. A batch goes in one transaction (``executemany``, which
psycopg pipelines into one round trip) with ``ON CONFLICT DO NOTHING``, so a
batch retried after a failure, or sent twice by two processes, is stored
once. Needs ``pip install 'fluxgate[postgres]'``.
"""

from __future__ import annotations

import json
import operator
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError, SinkError, TransientSinkError
from .._handoff import ROWS_PER_STEP, Handoff
from .._models import CostEvent, json_ready
from .._store import (
    EVENT_COLUMNS,
    EVENTS_TABLE,
    Connections,
    StoreError,
    StoreUnavailableError,
    check_timeout,
    ensure_events_schema,
    parse_target,
    quoted,
)
from .._store import (
    pg_event_from_row as event_from_row,
)

if TYPE_CHECKING:
    from .._store.postgres import Conn

__all__ = ["PostgresSink", "event_from_row", "to_pusd"]

_INSERT = (
    f"INSERT INTO {EVENTS_TABLE} ({', '.join(map(quoted, EVENT_COLUMNS))})"
    f" VALUES ({', '.join(['%s'] * len(EVENT_COLUMNS))})"
    # No conflict target: a table an operator partitioned by created_at (its
    # key is then (tracking_id, created_at)) de-duplicates just the same.
    " ON CONFLICT DO NOTHING"
)
# A table or column that vanished under us: create it again on the retry.
_SCHEMA_GONE = frozenset({"42P01", "42703"})
# Data exceptions and constraint violations belong to single events...
_ROW_CLASSES = ("22", "23")
# ...except "no partition of relation found for row": an operator who forgot
# next month's partition fixes it, and meanwhile the batch is retried, then
# spilled, instead of dropped event by event.
_NO_PARTITION = "23514"
_PICO = Decimal(10) ** 12
_BIGINT = 2**63


def to_pusd(cost: Decimal | None) -> int | None:
    """USD as integer pico-dollars (rounded as the SQLite sink does); None when it does not fit a bigint."""
    if cost is None or not cost.is_finite():
        return None
    value = int((cost * _PICO).to_integral_value())
    return value if -_BIGINT <= value < _BIGINT else None


def _clean(value: Any) -> Any:
    """``value`` without NUL characters, which PostgreSQL text and jsonb cannot hold."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


#: A row is the event's fields in their order, then ``cost_pusd`` (``EVENT_COLUMNS``).
_FIELDS = tuple(EVENT_COLUMNS)[:-1]
_values_of = operator.attrgetter(*_FIELDS)
_TEXT = tuple(i for i, name in enumerate(_FIELDS) if EVENT_COLUMNS[name] == "text")
_JSONB = tuple(i for i, name in enumerate(_FIELDS) if EVENT_COLUMNS[name] == "jsonb")


def _row(event: CostEvent, jsonb: Callable[[Any], Any]) -> tuple[Any, ...]:
    """The event's row: each field as ``CostEvent.to_dict()`` gives it, but the cost (a Decimal, for ``numeric``).

    Read in one go and left as they are but for the few columns that need
    more: text that is not a plain string (the status) or holds a NUL, and
    the JSON columns (``jsonb`` wraps them: psycopg's ``Jsonb``).
    """
    values = list(_values_of(event))
    for i in _TEXT:
        value = values[i]
        if value is not None and (type(value) is not str or "\x00" in value):
            values[i] = _text(value)
    for i in _JSONB:
        value = values[i]
        if value is not None:
            values[i] = jsonb(_clean(json_ready(value)))
    values.append(to_pusd(event.cost_usd))
    return tuple(values)


def _text(value: object) -> str:
    """A text column's value that is not a plain string: as JSON if ``to_dict()`` does not make it one."""
    ready = json_ready(value)
    cleaned: str = _clean(ready if isinstance(ready, str) else json.dumps(ready, default=str))
    return cleaned


class PostgresSink:
    """Store events in PostgreSQL, shared by every process on every host.

    Args:
        url: ``postgresql://user:password@host:5432/dbname``. The password is
            never logged or put in an error; ``repr`` shows it as ``***``.
        connect_timeout_s: Bound on opening a connection (at least 2 s).
        statement_timeout_s: Bound on each statement, set on the server.
        pool_size: Connections the sink keeps open.

    Raises:
        ConfigurationError: ``url`` is not a PostgreSQL URL, an option is out
            of range, or psycopg is not installed.

    ``write`` raises :class:`fluxgate.TransientSinkError` when the database is
    unreachable, restarting or too slow (the flusher retries, then spills),
    and :class:`fluxgate.SinkError` when it refuses the batch for good
    (permissions, say).

    >>> sink = PostgresSink("postgresql://app:secret@db.internal:5432/fluxgate")
    >>> sink
    PostgresSink('postgresql://app:***@db.internal:5432/fluxgate')
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 5.0,
        statement_timeout_s: float = 10.0,
        pool_size: int = 2,
    ) -> None:
        self._target = parse_target(url, owner="PostgresSink")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            msg = f"PostgresSink 'pool_size' must be an int >= 1 (got {pool_size!r})."
            raise ConfigurationError(msg)
        #: Where the writer is, for busy callers to hand it the GIL when it
        #: waits for it after each answer of the server (see fluxgate._handoff).
        self._handoff = Handoff()
        self._conns = Connections(
            self._target,
            max_size=pool_size,
            connect_timeout_s=check_timeout("PostgresSink", "connect_timeout_s", connect_timeout_s),
            statement_timeout_s=check_timeout("PostgresSink", "statement_timeout_s", statement_timeout_s),
            handoff=self._handoff,
        )
        self._ready = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresSink({self._target.masked!r})"

    @property
    def url(self) -> str:
        """The database URL with its password masked."""
        return self._target.masked

    def write(self, batch: Sequence[CostEvent]) -> None:
        """Insert ``batch`` in one transaction; events already stored are skipped.

        Raises:
            TransientSinkError: Unreachable, restarting, timed out.
            SinkError: Refused for good (permissions, say).
        """
        handoff = self._handoff
        handoff.enter()
        try:
            self._write(batch)
        finally:
            handoff.leave()

    def _write(self, batch: Sequence[CostEvent]) -> None:
        # An event that can't be stored raises ValueError: the flusher then splits
        # the batch until it finds that event, drops it alone as 'unserializable'
        # (on_drop is told) and delivers the rest.
        from psycopg.types.json import Jsonb

        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(batch), ROWS_PER_STEP):  # a step at a time: see fluxgate._handoff
            rows += [_row(event, Jsonb) for event in batch[start : start + ROWS_PER_STEP]]
            self._handoff.advance()
        if not rows:
            return
        try:
            self._ensure()
            self._conns.run(lambda conn: _insert_all(conn, rows), what="PostgresSink write")
        except StoreUnavailableError as exc:
            raise TransientSinkError(str(exc)) from exc
        except StoreError as exc:
            if exc.sqlstate in _SCHEMA_GONE or exc.sqlstate == _NO_PARTITION:
                self._ready = False
                raise TransientSinkError(str(exc)) from exc
            if (exc.sqlstate or "").startswith(_ROW_CLASSES):
                # The message may quote a value: name only the code.
                msg = f"PostgresSink: the database refused a row of the batch [{exc.sqlstate}]"
                raise ValueError(msg) from None
            raise SinkError(str(exc)) from exc

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                self._conns.run(ensure_events_schema, what="PostgresSink schema")
                self._ready = True

    def close(self) -> None:
        """Close the pooled connections (a later write opens new ones)."""
        self._conns.close()


def _insert_all(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    """``rows``, one statement each, pipelined: sent together, answered together.

    Not ``executemany``: it sends the same statements but goes through the
    connection's ``wait`` a few times for them all, while it lets go of the
    GIL at every row; a writer behind a busy caller waited for the GIL many
    times within one step and ran out of pauses (see fluxgate._handoff). Each
    ``execute`` here goes through ``wait``: a step per row, for about 10 µs
    more of the writer's CPU per row.
    """
    with conn.pipeline(), conn.cursor() as cur:
        for row in rows:
            cur.execute(_INSERT, row, prepare=True)
