"""The store as a report reads it: opened read-only, queried with exact money sums.

``cost_pusd`` holds each cost as integer pico-dollars (1e-12 USD). A query sums
it in SQL where it writes ``_COST_SUMS``, and ``_usd`` turns the sums into a
``Decimal`` only at the end. :class:`Follower` reads new events for
``fluxgate tail``. Nothing here writes to the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Final

from .._errors import FluxgateError
from .._models import CostEvent
from .._store import TABLE, event_from_row

__all__ = ["Follower", "NoStoreError", "ReportError", "connect"]

#: Where a query sums money: two columns that ``_usd`` adds up exactly, then
#: the count of unpriced calls. Plain ``SUM(cost_pusd)`` raises "integer
#: overflow" past $9.2M in one sum; ``_query`` then runs the query again with
#: ``_SPLIT_SUMS``, which sums the micro-dollar quotient and the remainder apart
#: (exact to $9.2 trillion) at the price of two more operations per row.
_COST_SUMS: Final = "{cost}"
_PLAIN_SUMS: Final = "0, SUM(cost_pusd), SUM(cost_pusd IS NULL)"
_SPLIT_SUMS: Final = "SUM(cost_pusd / 1000000), SUM(cost_pusd % 1000000), SUM(cost_pusd IS NULL)"
#: Where a query reads the ``aborted`` flag. Stores written before fluxgate
#: recorded it have no such column until a newer fluxgate writes to them, and a
#: report opens the store read-only: ``_query`` reads such stores as "none aborted".
_ABORTED: Final = "{aborted}"


class ReportError(FluxgateError, ValueError):
    """A report cannot be made: no store, not a store, or a bad argument; the message says which."""


class NoStoreError(ReportError):
    """There is no store yet: no file, or a file that does not hold the events table yet (being created)."""


def _usd(micro: int | None, rest: int | None) -> Decimal:
    """Exact USD from the two halves of ``_COST_SUMS``, without trailing zeros."""
    pico = (micro or 0) * 1_000_000 + (rest or 0)
    value = Decimal(pico).scaleb(-12)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


# --- the store ------------------------------------------------------------------


def connect(path: str | Path) -> sqlite3.Connection:
    """Open a store read-only; never creates one.

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


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {str(row[1]) for row in conn.execute(f"PRAGMA table_info({TABLE})")}


def _query(conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
    """Run ``sql``, with ``{cost}`` standing for the money sums (see ``_COST_SUMS``) and ``{aborted}`` for the flag."""
    try:
        if _ABORTED in sql:
            sql = sql.replace(_ABORTED, "COALESCE(aborted, 0)" if "aborted" in _columns(conn) else "0")
        try:
            return conn.execute(sql.replace(_COST_SUMS, _PLAIN_SUMS), params).fetchall()
        except sqlite3.OperationalError as exc:
            if "overflow" not in str(exc) or _COST_SUMS not in sql:
                raise
            return conn.execute(sql.replace(_COST_SUMS, _SPLIT_SUMS), params).fetchall()
    except sqlite3.DatabaseError as exc:
        msg = f"the store could not be read ({exc})."
        raise ReportError(msg) from None


def _int(value: object) -> int:
    return int(value) if isinstance(value, (int, float)) else 0


def _text(value: object) -> str | None:
    return None if value is None else str(value)


# --- tail ---------------------------------------------------------------------------


class Follower:
    """Read the events written since the last poll, in the order they were written.

    Args:
        conn: An open store (:func:`connect`).
        since_ms: Also return events already stored from this time on;
            by default only events written after the follower starts.
        last: Also return the last ``last`` events already stored (of those
            from ``since_ms`` on, with both), oldest first, as ``tail -n`` does.
    """

    def __init__(self, conn: sqlite3.Connection, *, since_ms: int | None = None, last: int | None = None) -> None:
        self._conn = conn
        self._since_ms = since_ms
        if last is not None:
            # The rowid just before the last ``last`` stored rows: polls read what comes after it.
            since = -1 if since_ms is None else since_ms
            found = _query(
                conn,
                f"SELECT rowid FROM {TABLE} WHERE created_at >= ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
                (since, max(last, 0)),
            )
            self._last_rowid = _int(found[0][0]) if found else 0
            if last == 0:  # nothing stored: start at the end, whatever since_ms says
                self._last_rowid = _int(_query(conn, f"SELECT MAX(rowid) FROM {TABLE}", ())[0][0])
        elif since_ms is None:
            self._last_rowid = _int(_query(conn, f"SELECT MAX(rowid) FROM {TABLE}", ())[0][0])
        else:
            self._last_rowid = 0
        self.skipped = 0

    def poll(self, *, limit: int = 1000) -> list[CostEvent]:
        """The next ``limit`` events at most; rows that no longer parse are counted in ``skipped``."""
        since = -1 if self._since_ms is None else self._since_ms
        self._conn.row_factory = sqlite3.Row
        try:
            rows = self._conn.execute(
                f"SELECT rowid AS _rowid, * FROM {TABLE} WHERE rowid > ? AND created_at >= ? ORDER BY rowid LIMIT ?",
                (self._last_rowid, since, limit),
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            msg = f"the store could not be read ({exc})."
            raise ReportError(msg) from None
        finally:
            self._conn.row_factory = None
        events: list[CostEvent] = []
        for row in rows:
            data = dict(row)
            self._last_rowid = int(data.pop("_rowid"))
            try:
                events.append(event_from_row(data))
            except (ValueError, TypeError, KeyError):
                self.skipped += 1
        return events
