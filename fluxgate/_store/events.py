"""SQLiteSink: the embedded default store, one row per event.

The connection is opened lazily on the flusher's thread. The database runs in
WAL mode, so ``fluxgate report`` can read while an application writes, and
several processes on one host can share a file. Rows are keyed by
``tracking_id``, so a batch retried after a failure is not stored twice.

A batch is one transaction of multi-row ``INSERT`` statements, 128 rows
each (see ``SQLiteSink._insert_rows``), and each row is a tuple
read straight from the event's attributes (or from a :class:`PendingEvent`'s
facts, which skips building the ``CostEvent`` at all): this is most of what
the flusher's thread does for every call, so it is kept to attribute reads.
Values SQLite cannot bind (a lone surrogate in a user id, an integer past 64
bits) are made storable on a second pass that only a failing batch pays for.
"""

from __future__ import annotations

import functools
import json
import math
import numbers
import operator
import os
import re
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, cast

import attrs

from .._errors import ConfigurationError, TransientSinkError
from .._handoff import ROWS_PER_STEP, Handoff
from .._models import AiEventUser, ContextFrame, CostEvent, Status, Usage, UsageFacts
from .._recording import PendingEvent
from .lines import clean_text, json_default
from .sqlite import SteppingConnection, connect, immediate

__all__ = [
    "COLUMNS",
    "TABLE",
    "SQLiteSink",
    "breakdown_text",
    "default_db_path",
    "ensure_schema",
    "event_from_row",
    "usage_values",
]

TABLE = "events"

#: Column name -> SQLite type, one per ``CostEvent`` field, plus ``cost_pusd``:
#: the cost in pico-dollars (1e-12 USD) as an integer, exact for every price
#: with at most six decimals per million tokens, so reports can sum in SQL.
#: A cost too large for a 64-bit column (over $9.2 million for one call)
#: stores NULL there; ``cost_usd`` keeps it exactly, as text.
COLUMNS: dict[str, str] = {}
for _field in attrs.fields(CostEvent):
    _type = _field.type if isinstance(_field.type, str) else str(_field.type)
    if _field.name in ("created_at",) or _type.startswith("int") or _type == "bool":
        COLUMNS[_field.name] = "INTEGER"
    elif _type.startswith("float"):
        COLUMNS[_field.name] = "REAL"
    else:
        COLUMNS[_field.name] = "TEXT"
COLUMNS["cost_pusd"] = "INTEGER"
del _field, _type

#: The one secondary index: every report reads a time window. Each index is
#: a B-tree insert per row, and in a local store the write is what runs
#: beside the application (the flusher holds the GIL to make the row; sqlite3
#: lets go of it only to step). Stores an earlier fluxgate made also index
#: ``(feature, created_at)``, ``(user_id, created_at)`` and ``model``; they
#: are kept where they exist (``DROP INDEX`` them for writes about a third
#: cheaper). Without them a report filtered by feature, user or model scans
#: its window: about 0.3 s more on a million events (``bench_report.py``).
_INDEXES = {
    "ix_events_created_at": "created_at",
}

# A row is, in this order: the fields whose value SQLite takes as it is (str,
# int, float, None; Status is a str and a bool an int), the cost's, the
# scope's (the same for every call of a ``track_context``, so a pending
# event's are made once per scope: ``SQLiteSink._scope_values``), and the
# sparse ones, which a call that succeeds usually leaves empty (no error, no
# batch, no thinking count, no speed). A row whose sparse fields are all
# empty ends before them (it is "lean"), and a write of lean rows only
# inserts without those columns (SQLite stores NULL): six values fewer to
# bind per row, about 3 % of the flusher's work per event.
#
# A scope that keeps making calls (a batch job, a worker, code outside any
# ``track_context``) is written once into a table of the writing connection's
# own (``temp.fluxgate_scopes``) and its calls' rows give its number in place
# of its eight columns ("keyed" rows): the statement takes the columns from
# that table (``SQLiteSink._statement``). Every value bound takes SQLite's
# mutex (Debian's build is serialized), so a keyed row costs the flusher about
# 1,150 instructions less; writing a scope's row (and deleting it later) costs
# what several keyed rows save, so a scope is keyed from its
# ``_KEYED_AFTER``-th call on and a request's few calls stay inline. Rows keep
# their order, which ``fluxgate tail`` shows: a write's keyed and inline rows
# go in runs, one after the other (a new lasting scope: its first calls inline,
# then the rest keyed). Where the two kinds interleave (a worker's calls among
# requests'), the keyed rows get their scope's columns back
# (``SQLiteSink._inline``), and the next writes key nothing
# (``_INLINE_WRITES``): such a workload writes as it would without keys.
_SPECIAL = ("cost_usd", "cost_breakdown", "cost_pusd")
_SCOPE = ("feature", "user_id", "step", "session_id", "conversation_id", "service_tier", "user", "metadata")
_SPARSE = ("reasoning_tokens", "speed", "error_type", "error_message", "batch_id", "custom_id")
_PLAIN = tuple(name for name in COLUMNS if name not in (*_SPECIAL, *_SCOPE, *_SPARSE))
_LEAN_ORDER = (*_PLAIN, *_SPECIAL, *_SCOPE)
_INSERT_ORDER = (*_LEAN_ORDER, *_SPARSE)
_LEAN = len(_LEAN_ORDER)
#: Values of a lean keyed row: its scope's number in place of the scope's columns.
_KEYED = _LEAN - len(_SCOPE) + 1
#: A scope's calls are written inline up to this many, keyed after (see above).
_KEYED_AFTER = 8
#: A write in more runs of keyed and inline rows than this is written all inline, and so are
#: the next ``_INLINE_WRITES`` writes.
_MOST_RUNS = 3
_INLINE_WRITES = 32
_SCOPES_TABLE = "temp.fluxgate_scopes"
_SCOPE_INSERT = (
    f"INSERT OR REPLACE INTO {_SCOPES_TABLE} (id, {', '.join(_SCOPE)}) VALUES ({', '.join('?' * (1 + len(_SCOPE)))})"
)
_SCOPE_FORGET = f"DELETE FROM {_SCOPES_TABLE} WHERE id < ?"
_plain_of = operator.attrgetter(*_PLAIN)
_sparse_of = operator.attrgetter(*_SPARSE)
_NO_SPARSE = (None,) * len(_SPARSE)
_scope_of = operator.attrgetter(*_SCOPE[:-2])
_STATUS_AT, _STREAMED_AT, _ABORTED_AT = (_PLAIN.index(name) for name in ("status", "streamed", "aborted"))

_INT64 = 2**63
_NO_USAGE = UsageFacts()
_usage_fields = operator.attrgetter(*UsageFacts._fields)
_SAFE_KEY = re.compile(r"[A-Za-z0-9_.\-]+")
_JSON_CACHE_SIZE = 256
#: Users whose JSON a sink keeps by value: about 300 bytes each.
_USERS_KEPT = 1024
# What binding a value SQLite cannot store raises.
_UNBINDABLE = (ValueError, OverflowError, sqlite3.InterfaceError, sqlite3.ProgrammingError)


def usage_values(usage: Usage | UsageFacts | None) -> tuple[Any, ...]:
    """A usage's fields in ``UsageFacts`` order: none, or a ``Usage`` given at the call's start (an estimate)."""
    return _NO_USAGE if usage is None else _usage_fields(usage)


def default_db_path() -> Path:
    """``$FLUXGATE_DB``, else ``$XDG_DATA_HOME/fluxgate/events.db`` (``~/.local/share/...``)."""
    env = os.environ.get("FLUXGATE_DB")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fluxgate" / "events.db"


def _to_pusd(cost: Decimal | None) -> int | None:
    """The cost in pico-dollars, or None when there is none or it does not fit the column."""
    if cost is None or not cost.is_finite():
        return None
    return _pico_column(int(cost.scaleb(12).to_integral_value()))


def _pico_column(pusd: int) -> int | None:
    return pusd if -_INT64 <= pusd < _INT64 else None


#: A scope's user and metadata as compact JSON (one encoder: ``json.dumps`` given options builds one per call).
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=json_default).encode


# Breakdowns have a handful of shapes (which components a call used): the JSON
# of each is a %-template made once, five times faster than the encoder.
_TEMPLATES: dict[tuple[str, ...], str | None] = {}


def _template(keys: tuple[str, ...]) -> str | None:
    if len(_TEMPLATES) > 1024:
        _TEMPLATES.clear()
    template = None
    if all(_SAFE_KEY.fullmatch(key) for key in keys):
        template = "{" + ",".join(f'"{key}":"%s"' for key in keys) + "}"
    _TEMPLATES[keys] = template
    return template


def _breakdown_json(breakdown: Mapping[str, Any]) -> str:
    """The breakdown as JSON, each figure as its ``str()``."""
    return breakdown_text(tuple(breakdown), tuple(map(str, breakdown.values())))


def breakdown_text(keys: tuple[str, ...], texts: tuple[str, ...]) -> str:
    """The breakdown whose components ``keys`` have the figures ``texts``, as JSON."""
    template = _TEMPLATES[keys] if keys in _TEMPLATES else _template(keys)
    if template is None:  # a component name that would need escaping
        return _dumps(dict(zip(keys, texts, strict=True)))
    return template % texts


def _storable(value: object) -> object:
    """``value`` as something SQLite binds: text without lone surrogates, a 64-bit int, a float or None."""
    if value is None or isinstance(value, float):
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int):
        if -_INT64 <= value < _INT64:
            return int(value)
        try:
            return float(value)  # too large for INTEGER: kept approximately, as REAL
        except OverflowError:
            return None
    if isinstance(value, numbers.Real):
        return float(value)
    return clean_text(str(value))


def event_from_row(row: sqlite3.Row | dict[str, Any]) -> CostEvent:
    """Rebuild a :class:`CostEvent` from a stored row (for readers and tests)."""
    data = dict(row)
    data.pop("cost_pusd", None)
    user = data.get("user")
    if user:
        fields = json.loads(user)
        data["user"] = AiEventUser(fields.pop("id"), **fields)
    data["metadata"] = json.loads(data["metadata"]) if data.get("metadata") else None
    data["cost_breakdown"] = {k: Decimal(v) for k, v in json.loads(data.get("cost_breakdown") or "{}").items()}
    data["cost_usd"] = None if data.get("cost_usd") is None else Decimal(data["cost_usd"])
    data["status"] = Status(data["status"])
    data["streamed"] = bool(data.get("streamed"))
    data["aborted"] = bool(data.get("aborted"))
    for name, kind in COLUMNS.items():
        value = data.get(name)
        if kind == "INTEGER" and isinstance(value, float) and value.is_integer():
            data[name] = int(value)  # a count too large for INTEGER was stored as REAL
    known = {f.name for f in attrs.fields(CostEvent)}
    return CostEvent(**{k: v for k, v in data.items() if k in known})


#: The plain columns ``SQLiteSink._pending_row`` fills, in its order (the sparse ones follow
#: the scope's, in ``_SPARSE`` order). Should ``CostEvent`` gain a field this does not
#: name, pending events take the slower way through ``materialize()`` rather than
#: store a wrong row.
_PENDING_PLAIN = (
    "tracking_id",
    "created_at",
    "status",
    "cost_status",
    "price_version",
    "model",
    "api",
    "platform",
    "streamed",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "cache_read_input_tokens",
    "web_search_requests",
    "web_fetch_requests",
    "stop_reason",
    "latency_ms",
    "time_to_first_token_ms",
    "stream_duration_ms",
    "request_id",
    "usage_service_tier",
    "inference_geo",
    "aborted",
)
_FAST_PENDING = _PENDING_PLAIN == _PLAIN


class SQLiteSink:
    """Store events in a local SQLite database.

    Args:
        path: The database file; created (mode 0600, parents too) on first
            write. Defaults to :func:`default_db_path`.
        timeout_s: How long to wait for another process's write lock.

    Raises:
        ConfigurationError: ``path`` is a directory.

    >>> sink = SQLiteSink(":memory:")
    """

    #: The flusher may hand this sink a call's facts (``PendingEvent``) in
    #: place of its ``CostEvent``; a subclass that overrides ``write`` gets
    #: ``CostEvent`` objects only.
    accepts_pending_events: ClassVar[bool] = True
    #: The flusher may merge batches waiting for this sink into one write of
    #: up to this many events (one transaction, a statement per 128 rows), so a
    #: backlog drains in few, large steps.
    max_events_per_write: ClassVar[int] = 1000

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "write" in vars(cls):
            cls.accepts_pending_events = False

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout_s: float = 5.0) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if str(self.path) != ":memory:" and self.path.is_dir():
            msg = f"SQLiteSink 'path' must be a file, not a directory (got {str(self.path)!r})."
            raise ConfigurationError(msg)
        self._timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        # The metadata of a scope is one object for all its calls: its JSON is
        # made once (keyed by identity; the object is held, so its id cannot
        # be reused while it is cached). Users are kept by their fields (_user_json).
        self._json: dict[int, tuple[object, str]] = {}
        self._users: dict[tuple[Any, ...], str] = {}
        # What a pending event's row holds for its scope, by its ContextFrame (held, as
        # above): [frame, its _SCOPE columns or (its number,) once keyed, calls left before
        # it is keyed (0: keyed), its number (0: none)]. The numbers are the connection's
        # (see _connect).
        self._scopes: dict[int, list[Any]] = {}
        self._next_scope = 1
        # The numbers of the scopes keyed since the last write, to insert before its rows.
        self._unsent: list[int] = []
        # The columns of each keyed scope by its number (made storable).
        self._keyed_columns: dict[int, tuple[Any, ...]] = {}
        # Writes left that key no scope (see _MOST_RUNS).
        self._inline_writes = 0
        # After the next write, forget the scopes numbered below this (0: none).
        self._forget_below = 0
        #: INSERT statements by their number of rows and of columns (see _insert_rows).
        self._statements: dict[tuple[int, ...], str] = {}
        self._rows_per_statement = 1
        #: Where a write is in its statements: a busy caller hands the GIL over
        #: when the write waits for it (see fluxgate._handoff).
        self._handoff = Handoff()

    def __repr__(self) -> str:
        return f"SQLiteSink({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        # A forked child must not share its parent's SQLite connection (the
        # SQLite docs forbid carrying one across fork); it opens its own.
        self._conn = None
        self._pid = os.getpid()
        conn = connect(
            self.path,
            self._timeout_s,
            cached_statements=_STATEMENTS_KEPT,
            # A partial makes connections as the class does (typeshed wants the class).
            factory=cast("type[SteppingConnection]", functools.partial(SteppingConnection, handoff=self._handoff)),
        )
        # Appending touches a few pages per index; SQLite's default 2 MiB
        # cache would only hold pages nobody reads again.
        conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        ensure_schema(conn)
        # The keyed scopes: the connection's own, in memory, gone with it.
        conn.execute("PRAGMA temp_store=MEMORY")
        scopes = ", ".join(f"{name} {COLUMNS[name]}" for name in _SCOPE)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_SCOPES_TABLE} (id INTEGER PRIMARY KEY, {scopes})")
        self._forget_scopes()
        self._rows_per_statement = _rows_per_statement(conn)
        self._conn = conn
        return conn

    def _shared_json(self, value: AiEventUser | Mapping[str, Any] | None) -> str | None:
        if value is None:
            return None
        if type(value) is AiEventUser:
            return self._user_json(value)
        cached = self._json.get(id(value))
        if cached is not None and cached[0] is value:
            return cached[1]
        text = _dumps(value.to_dict() if isinstance(value, AiEventUser) else dict(value))
        if len(self._json) >= _JSON_CACHE_SIZE:
            self._json.clear()
        self._json[id(value)] = (value, text)
        return text

    def _user_json(self, user: AiEventUser) -> str:
        """The JSON of ``user``, found by its fields.

        An application that makes a new user per request writes a returning
        user's JSON without encoding it again. The key holds each field's type
        too (1 and True are equal keys, not equal JSON); a revenue of 0.0 and
        one of -0.0 are one key, stored as the first of them seen.
        """
        values = (user.id, user.name, user.email, user.monthly_revenue)
        key = (*values, *map(type, values))
        try:
            text = self._users.get(key)
        except TypeError:  # a field that cannot be a key (made with validators off)
            return _dumps(user.to_dict())
        if text is None:
            text = _dumps(user.to_dict())
            if len(self._users) >= _USERS_KEPT:
                self._users.clear()
            self._users[key] = text
        return text

    def _scope_values(self, context: ContextFrame) -> tuple[Any, ...]:
        """The ``_SCOPE`` columns of a pending event in ``context``, a scope not in the cache (then cached)."""
        user = context.user
        v: Any  # each value that may be missing, in turn (as in _pending_row)
        values = (
            _NULL if (v := context.feature) is None else v,
            _NULL if user is None else user.id,
            _NULL if (v := context.step) is None else v,
            _NULL if (v := context.session_id) is None else v,
            _NULL if (v := context.conversation_id) is None else v,
            _NULL if (v := context.service_tier) is None else v,
            _NULL if user is None else self._shared_json(user),
            _NULL if (v := context.metadata) is None else self._shared_json(v),
        )
        if len(self._scopes) >= _JSON_CACHE_SIZE:
            self._scopes.clear()
            # Rows made before this may still name a keyed scope: its row goes after the write.
            self._forget_below = self._next_scope
        self._scopes[id(context)] = [context, values, _KEYED_AFTER - 1, 0]
        return values

    def _keyed(self, scope: list[Any]) -> tuple[Any, ...]:
        """Key the cached ``scope`` (its row is inserted before the write's rows): ``(its number,)``.

        ``scope`` is ``[frame, columns, calls left, number]``; a row made outside a write (no
        table to name) or while keys are set aside (``_inline_writes``) keeps the columns.
        """
        if self._conn is None or self._pid != os.getpid() or self._inline_writes:
            scope[2] = _KEYED_AFTER
            return scope[1]  # type: ignore[no-any-return]
        number = self._next_scope
        self._next_scope += 1
        self._keyed_columns[number] = tuple(map(_storable, scope[1]))
        self._unsent.append(number)
        scope[1], scope[2], scope[3] = (number,), 0, number
        return scope[1]  # type: ignore[no-any-return]

    def _set_keys_aside(self, writes: int) -> None:
        """Write the next ``writes`` writes inline: keyed scopes give their columns again (0: key again)."""
        was, self._inline_writes = self._inline_writes, writes
        if bool(was) is not bool(writes):
            for scope in self._scopes.values():
                if scope[3]:  # keyed
                    scope[1] = self._keyed_columns[scope[3]] if writes else (scope[3],)

    def _forget_scopes(self) -> None:
        """Start numbering scopes anew: a new connection has no keyed scope, and a closed one keeps none."""
        self._scopes.clear()
        self._unsent = []
        self._keyed_columns = {}
        self._next_scope, self._forget_below, self._inline_writes = 1, 0, 0

    def _drop_keyed_below(self, number: int) -> None:
        """Let go of the columns of scopes numbered below ``number``, sent or not (writes that keep
        failing while scopes come and go would otherwise hold every one)."""
        self._unsent = [n for n in self._unsent if n >= number]
        self._keyed_columns = {n: columns for n, columns in self._keyed_columns.items() if n >= number}

    def _inline(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """A keyed row with its scope's columns in place of its number."""
        return row[: _KEYED - 1] + self._keyed_columns[row[_KEYED - 1]] + row[_KEYED:]

    def _row(self, item: CostEvent | PendingEvent) -> tuple[Any, ...]:
        """The row of ``item``, in the order of the insert statement (``_NULL`` for a missing value).

        Raises:
            TypeError, ValueError: A value cannot be stored (not JSON-serialisable metadata).
        """
        if isinstance(item, PendingEvent):  # a Call is one
            return self._pending_row(item) if _FAST_PENDING else self._row(item.materialize())
        event = item
        cost_usd = event.cost_usd
        plain = list(_plain_of(event))  # exact types for sqlite3, as in _pending_row
        plain[_STATUS_AT] = event.status._value_
        plain[_STREAMED_AT] = 1 if event.streamed else 0
        plain[_ABORTED_AT] = 1 if event.aborted else 0
        row = (
            *plain,
            None if cost_usd is None else str(cost_usd),
            _breakdown_json(event.cost_breakdown),
            _to_pusd(cost_usd),
            *_scope_of(event),
            self._shared_json(event.user),
            self._shared_json(event.metadata),
        )
        sparse = _sparse_of(event)
        if sparse != _NO_SPARSE:
            row += sparse
        return tuple([_NULL if value is None else value for value in row])

    def _pending_row(self, p: PendingEvent) -> tuple[Any, ...]:
        """The row of a call's facts, read from them in one go (no ``CostEvent`` is built).

        The figures go from the bill's integers to text: no Decimal is made.
        The status is its plain ``str`` and flags are ``int``: sqlite3 binds
        exact ``str``, ``int`` and ``float`` directly, and sends anything else
        (an enum, a bool, ``None``) through its adapter lookup, which raises
        and catches two AttributeErrors per value (about 1 µs each). So a
        value that may be missing is written ``_NULL if (v := ...) is None
        else v``, here rather than in a pass over every value of the batch
        (a third of this function's work when it was one); the token counts
        ``usage_facts`` reads are never ``None``.
        """
        tracking_id, given, total, cost_status, names, texts, pico, version = p.stored()
        # One unpacking: each attribute read on a named tuple is a descriptor call.
        u: tuple[Any, ...] = given if type(given) is UsageFacts else usage_values(given)
        inp, out, reasoning, written, w5, w1, read, searches, fetches, tier, speed, geo, _ = u
        context = p.context
        # The scope's columns, or its number once keyed: _scope_values' cache, read here (most rows find theirs).
        scope = self._scopes.get(id(context))
        if scope is None or scope[0] is not context:
            tail = self._scope_values(context)
        elif scope[2]:  # inline still
            scope[2] -= 1
            tail = scope[1] if scope[2] else self._keyed(scope)
        else:
            tail = scope[1]
        v: Any  # each value that may be missing, in turn
        row = (
            tracking_id,
            p.created_at,
            p.status._value_,
            cost_status,
            version,
            _NULL if (v := p.model) is None else v,
            p.api,
            p.platform,
            1 if p.streamed else 0,
            inp,
            out,
            written,
            _NULL if w5 is None else w5,
            _NULL if w1 is None else w1,
            read,
            searches,
            fetches,
            _NULL if (v := p.stop_reason) is None else v,
            _NULL if (v := p.latency_ms) is None else v,
            _NULL if (v := p.first_token_ms) is None else v,
            _NULL if (v := p.stream_ms) is None else v,
            _NULL if (v := p.request_id) is None else v,
            _NULL if tier is None else tier,
            _NULL if geo is None else geo,
            1 if p.aborted else 0,
            # the _SPECIAL columns, then the _SCOPE ones
            _NULL if total is None else total,
            # breakdown_text's template, looked up here: one call less per row
            template % texts if (template := _TEMPLATES.get(names)) is not None else breakdown_text(names, texts),
            pico if pico is not None and -_INT64 <= pico < _INT64 else _NULL,  # _pico_column's test
            *tail,
        )
        error_type, error_message, batch_id, custom_id = p.error_type, p.error_message, p.batch_id, p.custom_id
        if (
            reasoning is None
            and speed is None
            and error_type is None
            and error_message is None
            and batch_id is None
            and custom_id is None
        ):
            return row  # lean: the write may leave the _SPARSE columns out
        sparse = (reasoning, speed, error_type, error_message, batch_id, custom_id)
        return row + tuple([_NULL if value is None else value for value in sparse])

    def write(self, batch: Sequence[CostEvent | PendingEvent]) -> None:
        """Insert ``batch`` (see ``_insert_rows``); a locked database is transient.

        Raises:
            TransientSinkError: The database is locked or cannot be written.
            TypeError, ValueError: An event's values cannot be stored; the
                flusher then writes the batch in parts to set that event aside.
        """
        with self._lock, self._handoff:
            self._write(batch)

    def _write(self, batch: Sequence[CostEvent | PendingEvent]) -> None:
        try:
            self._connect()  # first: the rows may name scopes keyed on this connection
        except sqlite3.OperationalError as exc:
            raise TransientSinkError(f"SQLite write failed: {exc}") from exc
        if self._forget_below:  # no row names a scope the cache forgot before this write
            self._drop_keyed_below(self._forget_below)
        # A call's facts go to _pending_row at once: _row's own test, without a call of _row per row.
        pending, handoff = self._pending_row if _FAST_PENDING else self._row, self._handoff
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(batch), ROWS_PER_STEP):  # a step at a time: see fluxgate._handoff
            rows += [
                pending(item) if isinstance(item, PendingEvent) else self._row(item)
                for item in batch[start : start + ROWS_PER_STEP]
            ]
            handoff.advance()
        if self._inline_writes:  # one write fewer to make without keys (its rows are made)
            self._set_keys_aside(self._inline_writes - 1)
        try:
            self._insert_rows(rows)
        except _UNBINDABLE:
            # Rare: text with a lone surrogate, an integer past 64 bits. Only
            # a batch holding one pays for this pass over every value.
            try:
                self._insert_rows([tuple(map(_storable, row)) for row in rows])
            except _UNBINDABLE as exc:
                raise ValueError(f"an event cannot be stored: {exc}") from exc

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` in one transaction, in multi-row statements of a few fixed sizes.

        Python's sqlite3 lets go of the GIL around every statement it steps,
        so ``executemany`` hands the GIL back and forth once per row. Beside
        an application thread that keeps the interpreter busy, each hand-back
        can wait many switch intervals (5 ms each), and the flusher would fall
        behind until events are dropped. One ``INSERT ... VALUES (...), (...)``
        is stepped once. A write takes statements of 128 rows, then of powers
        of two for the rest (100 rows: 64 + 32 + 4), inside one ``BEGIN
        IMMEDIATE`` ... ``COMMIT``: each commit writes every index page the
        rows touched to the WAL, so a write of 1,000 rows in one transaction
        costs about half as much per row as ten of 100. The rows are keyed by
        ``tracking_id`` (``OR IGNORE``), so a write retried after a failure
        stores nothing twice.

        A statement is prepared once per size and kept by the connection
        (``_STATEMENTS_KEPT``): batches come in every size, and preparing a
        statement of one size per write (parsing up to 5,000 placeholders)
        cost the flusher about 20,000 instructions per event. A statement of
        32 rows or more binds the groups of columns its rows share once
        (``_SHARED_GROUPS``, ``_execute``).

        The scopes keyed since the last write are inserted first, in the same transaction (a
        failed write leaves them to the next). The rows go in the order given, in runs of
        keyed or inline rows (at most ``_MOST_RUNS``, else all inline), each run's rows all
        lean or all full.
        """
        runs = _runs(rows)
        if runs is None:  # the two kinds interleave
            runs = [[row if len(row) >= _LEAN else self._inline(row) for row in rows]]
            self._set_keys_aside(_INLINE_WRITES)
        runs = [_padded(run) for run in runs]
        most = self._rows_per_statement
        try:
            conn = self._connect()
            plan = [(run, _statement_sizes(len(run), most)) for run in runs]
            unsent, forget = self._unsent, self._forget_below
            if not unsent and not forget and sum(len(sizes) for _, sizes in plan) <= 1:
                if plan:  # one statement: no transaction of its own
                    self._execute(conn, plan[0][0])
                return
            with immediate(conn):
                if unsent:
                    columns = self._keyed_columns
                    conn.executemany(_SCOPE_INSERT, [(n, *columns[n]) for n in unsent])
                for run, sizes in plan:
                    start = 0
                    for size in sizes:
                        self._execute(conn, run[start : start + size])
                        start += size
                if forget:
                    conn.execute(_SCOPE_FORGET, (forget,))
            del unsent[:]  # keyed from here on: in the table
            if forget:
                self._drop_keyed_below(forget)
                self._forget_below = 0
        except sqlite3.OperationalError as exc:
            raise TransientSinkError(f"SQLite write failed: {exc}") from exc

    def _execute(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
        size, width = len(rows), len(rows[0])  # rows of one width (see _insert_rows)
        if size >= _SHARED_ROWS:
            # The values of each column in turn; a group of columns that holds one
            # value in every row is bound once (see _SHARED_GROUPS).
            columns = list(zip(*rows, strict=True))
            constant = 0
            for bit, indices in _GROUP_COLUMNS[width]:
                for i, kind in indices:
                    column = columns[i]
                    first, last = column[0], column[-1]
                    if (
                        (type(first) is not kind and first is not _NULL)  # 1 == 1.0 == True: equal, not the same text
                        or (last is not first and last != first)
                        or column.count(first) != size
                    ):
                        break
                else:
                    constant |= bit
            for groups in _SHARED_LADDER:  # the first that holds one value throughout (0 at the end)
                if groups & constant == groups:
                    break
            if groups:
                shared, own = _SHARED_COLUMNS[width, groups]
                statement = self._statements.get((size, width, groups)) or self._statement(size, width, groups)
                values = [columns[i][0] for i in shared]
                for i in own:
                    values += columns[i]
                conn.execute(statement, values)
                return
        statement = self._statements.get((size, width)) or self._statement(size, width)
        # One list of every row's values. Extending it by each tuple copies the
        # tuple's items in one step: chain.from_iterable went value by value,
        # about 1,000 instructions per row more.
        values = []
        for row in rows:
            values += row
        conn.execute(statement, values)

    def _statement(self, size: int, width: int, groups: int = 0) -> str:
        """The INSERT of ``size`` rows of ``width`` values: inline, or keyed by their scope's number.

        With ``groups``, the values of those groups' columns are bound once,
        first, and then each other column's values in turn (``_execute``).
        """
        if len(self._statements) >= _STATEMENTS_KEPT:
            self._statements.clear()
        if groups:
            shared, own = _SHARED_COLUMNS[width, groups]
            number = {i: n for n, i in enumerate(shared, 1)}
            number_of = {i: len(shared) + 1 + k * size for k, i in enumerate(own)}  # its first row's
            rows = ", ".join(
                "(" + ", ".join(f"?{number[i]}" if i in number else f"?{number_of[i] + j}" for i in range(width)) + ")"
                for j in range(size)
            )
        else:
            one = f"({', '.join('?' * width)})"
            rows = ", ".join([one] * size)
        if width >= _LEAN:  # the first ``width`` columns of _INSERT_ORDER
            statement = f"INSERT OR IGNORE INTO {TABLE} ({', '.join(_INSERT_ORDER[:width])}) VALUES {rows}"
        else:  # each row's scope is read from the scopes' table, by the number in its value _KEYED
            sparse = _SPARSE[: width - _KEYED]
            columns = ", ".join((*_LEAN_ORDER, *sparse))
            picked = ", ".join(
                [
                    *(f"v.column{i}" for i in range(1, _KEYED)),
                    *(f"s.{name}" for name in _SCOPE),
                    *(f"v.column{i}" for i in range(_KEYED + 1, width + 1)),
                ]
            )
            statement = (
                f"INSERT OR IGNORE INTO {TABLE} ({columns}) SELECT {picked} FROM (VALUES {rows}) AS v"
                f" CROSS JOIN {_SCOPES_TABLE} AS s ON s.id = v.column{_KEYED}"
            )
        self._statements[(size, width, groups) if groups else (size, width)] = statement
        return statement

    def close(self) -> None:
        """Close the connection (a later write reopens it)."""
        with self._lock:
            self._json.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None


#: What a row holds for NULL. Python's sqlite3 passes every ``None`` through
#: its adapter lookup before binding it (about 0.2 µs each; a row holds twenty
#: or more); a float binds on the fast path, and SQLite stores a NaN as NULL.
#: One object, so rows with it compare equal (``nan == nan`` is False, but a
#: tuple compares its items by identity first).
_NULL = math.nan
_SPARSE_NULLS = (_NULL,) * len(_SPARSE)
#: The page cache of the writing connection, in KiB.
_CACHE_KIB = 512
#: Rows per INSERT statement at most (see SQLiteSink._insert_rows).
_MAX_ROWS_PER_STATEMENT = 128
#: Prepared statements the writing connection keeps (the oldest goes first): one per size
#: (128 rows and the seven powers of two below) and width (lean or full rows, inline or
#: keyed), those of 32 rows or more that bind groups of columns once (five combinations
#: at most per size and width: ``_SHARED_LADDER``), BEGIN IMMEDIATE, COMMIT, and the
#: scopes' insert and delete: 96 when a store writes rows of all four widths and every
#: combination. A statement of 128 rows takes 0.2 to 0.4 MiB; most stores write rows of one
#: or two widths and keep a few megabytes of statements.
_STATEMENTS_KEPT = 96

# A statement of many rows binds each of its values: about 1,000 instructions for a
# text (sqlite3 checks its type, SQLite copies it and takes its mutexes), a few
# hundred for a number. Most columns that say what kind of call a row is hold the
# same value in every row of a busy store's statement (one price table, platform and
# region; usually one API, model and outcome; a lasting scope's number). SQLite's
# numbered parameters (``?NNN``) let every row of a statement name the same one, so a
# group of columns that holds one value throughout is bound once for all the rows:
# about 9 % of the flusher's work per event (bench_instructions, writes of
# 1,000). Which groups hold one value varies with the workload, and each combination
# is a statement to prepare and keep, so a statement of ``_SHARED_ROWS`` rows or more
# takes the first combination of ``_SHARED_LADDER`` its rows allow. Measurements (tokens,
# times, costs) and the ids are bound per row, as are the sparse columns.
_SHARED_GROUPS: dict[int, tuple[str, ...]] = {
    1: (
        "price_version",
        "platform",
        "web_search_requests",
        "web_fetch_requests",
        "usage_service_tier",
        "inference_geo",
        "aborted",
    ),
    2: ("api", "streamed", "cost_status", "model"),
    4: ("status", "stop_reason"),
    8: _SCOPE,  # inline rows; a keyed row's scope number stands in for them
}
#: The combinations of groups bound once, best first: every group, then without
#: the scope (a scope per request), without the outcome, without either, the
#: install's alone, and none.
_SHARED_LADDER = (1 | 2 | 4 | 8, 1 | 2 | 4, 1 | 2 | 8, 1 | 2, 1, 0)
#: Statements of this many rows or more bind shared groups once: every statement of a
#: write of 100 rows or more but its last few rows (100: 64 + 32 + 4).
_SHARED_ROWS = 32


def _group_columns(width: int) -> tuple[tuple[int, tuple[tuple[int, type], ...]], ...]:
    """Each group's bit and its columns in a row of ``width`` values: (index, the type a shared value has).

    A value is shared only where it has its column's type (or is NULL): an
    INTEGER column stores 1, 1.0 and True alike, a TEXT column does not.
    """
    order = (*_INSERT_ORDER[: _KEYED - 1], "scope", *_SPARSE) if width < _LEAN else _INSERT_ORDER
    kinds = {name: str if kind == "TEXT" else int for name, kind in COLUMNS.items()} | {"scope": int}
    return tuple(
        (bit, tuple((order.index(name), kinds[name]) for name in (("scope",) if bit == 8 and width < _LEAN else names)))
        for bit, names in _SHARED_GROUPS.items()
    )


#: Each row width's groups (lean or full, inline or keyed).
_GROUP_COLUMNS = {width: _group_columns(width) for width in (_KEYED, _KEYED + len(_SPARSE), _LEAN, len(_INSERT_ORDER))}
#: By (width, groups): the columns bound once and those bound per row, in order.
_SHARED_COLUMNS = {
    (width, groups): (
        shared := tuple(sorted(i for bit, indices in columns if groups & bit for i, _ in indices)),
        tuple(i for i in range(width) if i not in shared),
    )
    for width, columns in _GROUP_COLUMNS.items()
    for groups in _SHARED_LADDER
}
#: sqlite3.h's SQLITE_LIMIT_VARIABLE_NUMBER (the module names it from Python 3.11 on).
_SQLITE_LIMIT_VARIABLE_NUMBER = 9


def _runs(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]] | None:
    """``rows`` in runs of keyed or inline rows, in order; None if there would be more than ``_MOST_RUNS``."""
    widths = set(map(len, rows))
    if not rows or max(widths) < _LEAN or min(widths) >= _LEAN:
        return [rows] if rows else []
    runs: list[list[tuple[Any, ...]]] = []
    start, keyed = 0, len(rows[0]) < _LEAN
    for at, row in enumerate(rows):
        if (len(row) < _LEAN) is not keyed:
            if len(runs) == _MOST_RUNS - 1:
                return None
            runs.append(rows[start:at])
            start, keyed = at, not keyed
    runs.append(rows[start:])
    return runs


def _padded(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows of one kind (keyed or inline): lean rows beside full ones get every column."""
    widths = set(map(len, rows))
    if len(widths) == 1:
        return rows
    full = max(widths)
    return [row if len(row) == full else row + _SPARSE_NULLS for row in rows]


def _statement_sizes(count: int, most: int) -> list[int]:
    """The rows of each statement that inserts ``count`` rows: ``most`` each, then powers of two.

    >>> _statement_sizes(300, 128)
    [128, 128, 32, 8, 4]
    """
    sizes = [most] * (count // most)
    rest = count % most
    size = 1 << (most.bit_length() - 1)  # the largest power of two up to most
    while rest:
        if rest >= size:
            sizes.append(size)
            rest -= size
        size >>= 1
    return sizes


def _rows_per_statement(conn: sqlite3.Connection) -> int:
    """How many rows (at most 128) one statement may bind the values of."""
    getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
    if getlimit is not None:
        limit = int(getlimit(getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER", _SQLITE_LIMIT_VARIABLE_NUMBER)))
    else:  # SQLite's compiled-in default: 999 before 3.32, 32766 since
        limit = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
    return max(1, min(_MAX_ROWS_PER_STATEMENT, limit // len(_INSERT_ORDER)))


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the table and indexes, and add columns a newer fluxgate defines."""
    cols = ", ".join(
        f"{name} {kind} PRIMARY KEY" if name == "tracking_id" else f"{name} {kind}" for name, kind in COLUMNS.items()
    )
    with immediate(conn):
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} ({cols})")
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")}
        for name, kind in COLUMNS.items():
            if name not in have:
                conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {kind}")
        for index, columns in _INDEXES.items():
            conn.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {TABLE} ({columns})")
