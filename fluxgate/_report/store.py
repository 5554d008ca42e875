"""The store as a report reads it: a :class:`Reader` over a SQLite file or a PostgreSQL database.

Every report query is written once, and a :class:`Dialect` spells what the two
databases spell differently: the table's name, the group expressions,
counting the rows that meet a condition, and the ``aborted`` flag (which
stores written before fluxgate recorded it lack). Money is summed in SQL as
the integer pico-dollars of ``cost_pusd`` where a query writes
:data:`COST_SUMS`; ``_usd`` turns the sums into a ``Decimal`` only at the end.
Queries use ``?`` placeholders, which the PostgreSQL reader translates.

:func:`open_reader` opens either (``postgres`` holds the PostgreSQL side);
:func:`connect` opens a SQLite file as a plain ``sqlite3`` connection, which
the report functions also accept. Nothing here writes to the store.
"""

from __future__ import annotations

import os
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Final

import attrs

from .._errors import FluxgateError
from .._models import CostEvent
from .._store import TABLE, event_from_row, is_postgres_url

__all__ = ["COST_SUMS", "Dialect", "NoStoreError", "Reader", "ReportError", "as_reader", "connect", "open_reader"]

#: Where a query sums money: three columns, two that ``_usd`` adds up exactly,
#: then the count of unpriced calls. On SQLite plain ``SUM(cost_pusd)`` raises
#: "integer overflow" past $9.2M in one sum; the query then runs again with
#: ``_SPLIT_SUMS``, which sums the micro-dollar quotient and the remainder apart
#: (exact to $9.2 trillion) at the price of two more operations per row.
COST_SUMS: Final = "{cost}"
_PLAIN_SUMS: Final = "0, SUM(cost_pusd), SUM(cost_pusd IS NULL)"
_SPLIT_SUMS: Final = "SUM(cost_pusd / 1000000), SUM(cost_pusd % 1000000), SUM(cost_pusd IS NULL)"

#: Group-by name -> the SQLite expression it groups on. Days are UTC days.
#: The unary ``+`` keeps SQLite from walking an index in group order, which
#: costs a random row read per event (twice as slow as a scan and a sort on a
#: million events); filters on the same columns still use the indexes.
SQLITE_GROUPS: Final[Mapping[str, str]] = {
    "feature": "+feature",
    "user": "+user_id",
    "step": "+step",
    "model": "+model",
    "session": "+session_id",
    "conversation": "+conversation_id",
    "day": "created_at / 86400000",  # the UTC day number: half the cost of strftime(); dated by the report
    "status": "+status",
}


class ReportError(FluxgateError, ValueError):
    """A report cannot be made: no store, not a store, or a bad argument; the message says which."""


class NoStoreError(ReportError):
    """There is no store yet: no file, or no events table in it yet (being created)."""


@attrs.frozen(kw_only=True)
class Dialect:
    """How one kind of store spells what the report's queries need."""

    #: ``sqlite`` or ``postgresql``.
    name: str
    table: str
    #: Group-by name -> the expression it groups on.
    groups: Mapping[str, str]
    #: The ``aborted`` flag as a condition; false in a store that has no such column yet.
    aborted: str

    def count(self, condition: str) -> str:
        """How many rows of a group meet ``condition`` (``NULL`` or 0 when none do)."""
        if self.name == "sqlite":
            return f"SUM({condition})"  # a comparison is 0 or 1 there
        return f"COUNT(*) FILTER (WHERE {condition})"


class Reader(ABC):
    """An open store, read-only: the events table and the dialect to query it in.

    ``name`` is the store as it may be shown: a path, or a URL with its
    password masked. Every method raises :class:`ReportError` when the store
    cannot be read; its message never holds a password.
    """

    name: str
    dialect: Dialect

    @abstractmethod
    def rows(self, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        """The rows of ``sql``, with :data:`COST_SUMS` standing for the money sums."""

    @abstractmethod
    def records(self, sql: str, params: Sequence[object]) -> list[dict[str, object]]:
        """The rows of ``sql`` as dicts keyed by column name."""

    @abstractmethod
    def event(self, record: Mapping[str, object]) -> CostEvent:
        """The event a ``SELECT *`` record holds.

        Raises:
            ValueError, TypeError, KeyError: The row no longer parses.
        """

    @abstractmethod
    def percentiles(
        self, exprs: Sequence[str], where: str, params: Sequence[object], counts: Mapping[tuple[object, ...], int]
    ) -> tuple[dict[tuple[object, ...], list[float]], list[float]]:
        """Nearest-rank p50 and p95 of ``latency_ms`` per group of ``exprs`` (those in ``counts``) and over all.

        ``counts`` holds each group's number of calls with a latency, keyed as
        the grouped query returned the group values. Returns the ``[p50, p95]``
        of each group found, and of all of them (empty when none).
        """

    @abstractmethod
    def session(self) -> AbstractContextManager[Reader]:
        """A reader to use on the current thread, for the time of a ``with`` block."""

    @abstractmethod
    def close(self) -> None:
        """Close the connections this reader opened."""


def _ranks(n: int) -> tuple[int, int]:
    """The 1-based nearest ranks of p50 and p95 among ``n`` values: ceil(p * n)."""
    return (n * 50 + 99) // 100, (n * 95 + 99) // 100


def _usd(micro: int | None, rest: int | None) -> Decimal:
    """Exact USD from the two halves of :data:`COST_SUMS`, without trailing zeros."""
    pico = (micro or 0) * 1_000_000 + (rest or 0)
    value = Decimal(pico).scaleb(-12)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _int(value: object) -> int:
    # PostgreSQL's SUM of a bigint column is a numeric: a Decimal here, always whole.
    return int(value) if isinstance(value, (int, float, Decimal)) else 0


def _text(value: object) -> str | None:
    return None if value is None else str(value)


# --- SQLite -----------------------------------------------------------------------


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open a SQLite store read-only; never creates one.

    Raises:
        ReportError: There is no file at ``path``, or it is not a fluxgate store.
    """
    store = Path(path).expanduser()
    if not store.is_file():
        msg = (
            f"no fluxgate store at {str(store)!r}: pass --db PATH or set FLUXGATE_DB "
            "(the store is created when the first call is recorded)."
        )
        raise NoStoreError(msg)
    try:
        conn = sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    except sqlite3.DatabaseError as exc:
        msg = f"{str(store)!r} cannot be opened ({exc})."
        raise ReportError(msg) from None
    try:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        msg = f"{str(store)!r} is not a fluxgate store ({exc})."
        raise ReportError(msg) from None
    if found is None:
        conn.close()
        msg = f"{str(store)!r} is not a fluxgate store (it has no {TABLE!r} table)."
        raise NoStoreError(msg)
    return conn


class SQLiteReader(Reader):
    """A SQLite store, through one read-only connection.

    Args:
        conn: An open connection (see :func:`connect`).
        path: The file, when known: :meth:`session` then opens a connection of
            its own for each thread, and :meth:`close` closes ``conn``.
    """

    def __init__(self, conn: sqlite3.Connection, *, path: Path | None = None) -> None:
        self._conn = conn
        self._path = path
        self.name = str(path) if path is not None else "the SQLite store"
        try:
            columns = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({TABLE})")}
        except sqlite3.DatabaseError as exc:
            raise ReportError(f"the store could not be read ({exc}).") from None
        # A report opens the store read-only, so a store written before fluxgate
        # recorded ``aborted`` keeps lacking the column: it reads as "none aborted".
        aborted = "COALESCE(aborted, 0)" if "aborted" in columns else "0"
        self.dialect = Dialect(name="sqlite", table=TABLE, groups=SQLITE_GROUPS, aborted=aborted)

    @classmethod
    def open(cls, path: Path) -> SQLiteReader:
        """The store at ``path``, read-only.

        Raises:
            ReportError: No file there (:class:`NoStoreError`), or not a fluxgate store.
        """
        return cls(connect(path), path=Path(path).expanduser())

    def rows(self, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        try:
            try:
                return self._conn.execute(sql.replace(COST_SUMS, _PLAIN_SUMS), params).fetchall()
            except sqlite3.OperationalError as exc:
                if "overflow" not in str(exc) or COST_SUMS not in sql:
                    raise
                return self._conn.execute(sql.replace(COST_SUMS, _SPLIT_SUMS), params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise ReportError(f"the store could not be read ({exc}).") from None

    def records(self, sql: str, params: Sequence[object]) -> list[dict[str, object]]:
        cursor = self._conn.cursor()
        cursor.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in cursor.execute(sql, params).fetchall()]
        except sqlite3.DatabaseError as exc:
            raise ReportError(f"the store could not be read ({exc}).") from None
        finally:
            cursor.close()

    def event(self, record: Mapping[str, object]) -> CostEvent:
        return event_from_row(dict(record))

    def percentiles(
        self, exprs: Sequence[str], where: str, params: Sequence[object], counts: Mapping[tuple[object, ...], int]
    ) -> tuple[dict[tuple[object, ...], list[float]], list[float]]:
        """From one sorted pass: SQLite sorts the latencies once, and walking them counts each group's ranks.

        Each group's count is known from the grouped query, so the walk finds
        every rank without holding the values in memory. (A window function per
        group plus one for the total took twice as long on a million events.)
        """
        width = len(exprs)
        targets = {key: _ranks(n) for key, n in counts.items() if n}
        overall_targets = _ranks(sum(counts.values()))
        seen = dict.fromkeys(targets, 0)
        found: dict[tuple[object, ...], list[float]] = {key: [] for key in targets}
        overall: list[float] = []
        selected = ", ".join(exprs)
        sql = (
            f"SELECT {selected}, latency_ms FROM {TABLE} WHERE ({where}) AND latency_ms IS NOT NULL ORDER BY latency_ms"
        )
        # This loop is the only per-event Python in a report; keep it lean.
        low, high = overall_targets
        try:
            rank = 0
            for row in self._conn.execute(sql, params):
                rank += 1
                if rank in (low, high):
                    overall.append(float(row[width]))
                key = row[:width]
                count = seen.get(key)
                if count is None:  # a row written after the grouped query ran
                    continue
                count += 1
                seen[key] = count
                if count in targets[key]:
                    found[key].append(float(row[width]))
        except sqlite3.DatabaseError as exc:
            raise ReportError(f"the store could not be read ({exc}).") from None
        if overall_targets[0] == overall_targets[1] and len(overall) == 1:
            overall.append(overall[0])
        for key, (p50, p95) in targets.items():
            if p50 == p95 and len(found[key]) == 1:
                found[key].append(found[key][0])
        return found, overall

    @contextmanager
    def session(self) -> Iterator[Reader]:
        # One connection per thread: SQLite releases the GIL while it scans, so
        # parts of a report run side by side on connections of their own.
        if self._path is None:
            yield self
            return
        reader = SQLiteReader.open(self._path)
        try:
            yield reader
        finally:
            reader.close()

    def close(self) -> None:
        if self._path is not None:
            self._conn.close()


# --- either -------------------------------------------------------------------------


def open_reader(store: str | os.PathLike[str]) -> Reader:
    """The store read-only: a ``postgresql://`` URL, else a SQLite file. Never creates one.

    Raises:
        NoStoreError: No store there yet (no file, or no events table).
        ReportError: It cannot be reached or read, or it is not a fluxgate store;
            a URL's password is masked in the message.
    """
    if is_postgres_url(store):
        from .postgres import PostgresReader

        return PostgresReader(str(store))
    return SQLiteReader.open(Path(store))


def as_reader(source: Reader | sqlite3.Connection) -> Reader:
    """``source`` as a :class:`Reader`: a bare SQLite connection is wrapped (and left open by ``close``)."""
    return source if isinstance(source, Reader) else SQLiteReader(source)
