"""PostgresSink: one row per event in a PostgreSQL database many hosts share.

The table is ``fluxgate_events``: a column per ``CostEvent`` field (the cost
as an exact ``numeric``) plus ``cost_pusd``, the cost in integer pico-dollars
as in the SQLite store. It is created on first write, and newer fluxgates
only ever add to it. A batch goes in one transaction, one ``COPY``; one that
holds an event stored already (a batch retried after its commit was lost, or
sent twice by two processes) goes again as ``INSERT ... ON CONFLICT DO
NOTHING``, so each event is stored once. Needs ``pip install 'fluxgate[postgres]'``.
"""

from __future__ import annotations

import json
import operator
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from .._errors import ConfigurationError, SinkError, TransientSinkError
from .._handoff import ROWS_PER_STEP, Handoff
from .._models import ContextFrame, CostEvent, UsageFacts, json_ready
from .._recording import PendingEvent
from .._store import (
    EVENT_COLUMNS,
    EVENTS_TABLE,
    Connections,
    StoreError,
    StoreUnavailableError,
    breakdown_text,
    check_timeout,
    ensure_events_schema,
    parse_target,
    quoted,
    usage_values,
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
_COPY = f"COPY {EVENTS_TABLE} ({', '.join(map(quoted, EVENT_COLUMNS))}) FROM STDIN"
# A row stored already (a batch retried after its commit was lost, or sent by
# another process): COPY refuses the batch, which then goes as INSERTs.
_UNIQUE = "23505"
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
    return _bigint(int((cost * _PICO).to_integral_value()))


def _bigint(value: int) -> int | None:
    """``value`` if a ``bigint`` column holds it, else None."""
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


#: The scope's columns, in their order among the fields (a scope's calls share their values).
_SCOPE = ("feature", "user_id", "user", "step", "session_id", "conversation_id", "service_tier", "metadata")
_scope_of = operator.attrgetter(*_SCOPE)
_SCOPE_TEXT = tuple(i for i, name in enumerate(_SCOPE) if EVENT_COLUMNS[name] == "text")
_SCOPE_JSONB = tuple(i for i, name in enumerate(_SCOPE) if EVENT_COLUMNS[name] == "jsonb")
#: Scopes whose columns a sink keeps made (each about a kilobyte): more are made again.
_MAX_SCOPES = 1024


def _row(event: CostEvent, jsonb: Callable[[Any], Any]) -> tuple[Any, ...]:
    """The event's row: each field as ``CostEvent.to_dict()`` gives it, but the cost (a Decimal, for ``numeric``).

    Read in one go and left as they are but for the few columns that need
    more: text that is not a plain string (the status) or holds a NUL, and
    the JSON columns (``jsonb`` wraps them: psycopg's ``Jsonb``).
    """
    values = _converted(list(_values_of(event)), _TEXT, _JSONB, jsonb)
    values.append(to_pusd(event.cost_usd))
    return tuple(values)


def _converted(
    values: list[Any], text: tuple[int, ...], jsonb_at: tuple[int, ...], jsonb: Callable[[Any], Any]
) -> list[Any]:
    """``values`` with those at ``text`` made plain strings without NULs, and those at ``jsonb_at`` wrapped as JSON."""
    for i in text:
        value = values[i]
        if value is not None and (type(value) is not str or "\x00" in value):
            values[i] = _text(value)
    for i in jsonb_at:
        value = values[i]
        if value is not None:
            values[i] = jsonb(_clean(json_ready(value)))
    return values


def _as_is(text: str) -> str:
    """JSON made already: what ``Jsonb`` sends of it."""
    return text


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

    #: The flusher may hand this sink a call's facts (``PendingEvent``) in
    #: place of its ``CostEvent``; a subclass that overrides ``write`` gets
    #: ``CostEvent`` objects only.
    accepts_pending_events: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "write" in vars(cls):
            cls.accepts_pending_events = False

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
        #: id(scope) -> (scope, its columns): see _scope_columns.
        self._scopes: dict[int, tuple[ContextFrame, list[Any]]] = {}

    def __repr__(self) -> str:
        return f"PostgresSink({self._target.masked!r})"

    @property
    def url(self) -> str:
        """The database URL with its password masked."""
        return self._target.masked

    def write(self, batch: Sequence[CostEvent | PendingEvent]) -> None:
        """Insert ``batch`` in one transaction; events already stored are skipped.

        Raises:
            TransientSinkError: Unreachable, restarting, timed out.
            SinkError: Refused for good (permissions, say).
        """
        with self._handoff:
            self._write(batch)

    def _write(self, batch: Sequence[CostEvent | PendingEvent]) -> None:
        # An event that can't be stored raises ValueError: the flusher then splits
        # the batch until it finds that event, drops it alone as 'unserializable'
        # (on_drop is told) and delivers the rest.
        from psycopg.types.json import Jsonb

        def as_json(text: str) -> Jsonb:
            return Jsonb(text, dumps=_as_is)

        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(batch), ROWS_PER_STEP):  # a step at a time: see fluxgate._handoff
            rows += [
                self._pending_row(item, as_json) if isinstance(item, PendingEvent) else _row(item, Jsonb)
                for item in batch[start : start + ROWS_PER_STEP]
            ]
            self._handoff.advance()
        if not rows:
            return
        try:
            self._ensure()
            try:
                self._conns.run(lambda conn: _copy_all(conn, rows), what="PostgresSink write")
            except StoreError as exc:
                if exc.sqlstate != _UNIQUE:
                    raise
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

    def _pending_row(self, p: PendingEvent, as_json: Callable[[str], Any]) -> tuple[Any, ...]:
        """The row of a call's facts, read from them in one go: no ``CostEvent`` is built.

        The same values ``_row`` gives of the call's event: the cost from the
        bill's text (``Decimal(str(cost))`` is the cost, to its exponent), the
        breakdown and the scope's JSON as text made once.
        """
        tracking_id, given, total, cost_status, names, texts, pico, version = p.stored()
        usage: tuple[Any, ...] = given if type(given) is UsageFacts else usage_values(given)
        inp, out, reasoning, written, w5, w1, read, searches, fetches, tier, speed, geo, _ = usage
        values = [
            tracking_id,
            p.created_at,
            p.status,
            None if total is None else Decimal(total),
            cost_status,
            as_json(breakdown_text(names, texts)),
            version,
            p.model,
            p.api,
            p.platform,
            p.streamed,
            inp,
            out,
            reasoning,
            written,
            w5,
            w1,
            read,
            searches,
            fetches,
            p.stop_reason,
            p.latency_ms,
            p.first_token_ms,
            p.stream_ms,
            p.request_id,
            p.error_type,
            p.error_message,
            *self._scope_columns(p.context, as_json),
            tier,
            speed,
            geo,
            p.batch_id,
            p.custom_id,
            p.aborted,
        ]
        _converted(values, _TEXT, (), as_json)  # the status, and a NUL anywhere (the scope's columns are plain)
        values.append(None if pico is None else _bigint(pico))
        return tuple(values)

    def _scope_columns(self, scope: ContextFrame, as_json: Callable[[str], Any]) -> list[Any]:
        """A scope's eight columns, made once for all its calls (the user's and metadata's JSON included)."""
        found = self._scopes.get(id(scope))
        if found is not None and found[0] is scope:
            return found[1]
        columns = _converted(list(_scope_of(scope)), _SCOPE_TEXT, _SCOPE_JSONB, lambda obj: as_json(json.dumps(obj)))
        if len(self._scopes) >= _MAX_SCOPES:
            self._scopes.clear()
        self._scopes[id(scope)] = (scope, columns)
        return columns

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


def _copy_all(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    """``rows`` in one ``COPY``: the values written out in C, sent in large chunks (a step each).

    ``COPY`` has no ``ON CONFLICT``: a batch holding a row stored already
    fails whole (``_UNIQUE``) and goes again through ``_insert_all``.
    """
    with conn.cursor() as cur, cur.copy(_COPY) as copy:
        for row in rows:
            copy.write_row(row)


def _insert_all(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    """``rows``, one ``INSERT ... ON CONFLICT DO NOTHING`` each, pipelined: those stored already are skipped.

    Not ``executemany``: it sends the same statements but goes through the
    connection's ``wait`` a few times for them all, while it lets go of the
    GIL at every row; a writer behind a busy caller waited for the GIL many
    times within one step and ran out of pauses (see fluxgate._handoff). Each
    ``execute`` here goes through ``wait``: a step per row.
    """
    with conn.pipeline(), conn.cursor() as cur:
        for row in rows:
            cur.execute(_INSERT, row, prepare=True)
