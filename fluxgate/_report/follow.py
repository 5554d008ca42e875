"""Reading the events written since the last look, for ``fluxgate tail``: :class:`Follower`.

On SQLite the table's ``rowid`` is the order the events were written in, so a
poll reads the rows after the last one it saw. PostgreSQL's table has no such
column, so a poll reads in ``(created_at, tracking_id)`` order after the last
row it saw, and also looks back: an event reaches the table a flush after it
was made, and hosts flush at their own pace, so a row can arrive behind one
already shown. A poll first counts the rows of the last :data:`LATE_MS` before
its mark (one indexed count); only when that differs from the rows it has
seen does it fetch their ids and show the new ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Final

from .._models import CostEvent
from .store import Reader, _int, as_reader

__all__ = ["LATE_MS", "Follower"]

#: How late (by its ``created_at``) an event may reach PostgreSQL and still be
#: shown by a running ``tail``: later ones, replayed from a spill file after an
#: outage say, are in the reports but not in that ``tail``.
LATE_MS: Final = 10 * 60_000


class Follower:
    """Read the events written since the last poll, in the order they were written.

    Args:
        conn: An open store (see :func:`~.store.open_reader`).
        since_ms: Also return events already stored from this time on;
            by default only events written after the follower starts.
        last: Also return the last ``last`` events already stored (of those
            from ``since_ms`` on, with both), oldest first, as ``tail -n`` does.
    """

    def __init__(
        self, conn: Reader | sqlite3.Connection, *, since_ms: int | None = None, last: int | None = None
    ) -> None:
        self._reader = as_reader(conn)
        self._cursor: _Rowids | _Keys
        if self._reader.dialect.name == "sqlite":
            self._cursor = _Rowids(self._reader, since_ms=since_ms, last=last)
        else:
            self._cursor = _Keys(self._reader, since_ms=since_ms, last=last)
        self.skipped = 0

    def poll(self, *, limit: int = 1000) -> list[CostEvent]:
        """The next ``limit`` events at most; rows that no longer parse are counted in ``skipped``."""
        events: list[CostEvent] = []
        for record in self._cursor.next(limit):
            try:
                events.append(self._reader.event(record))
            except (ValueError, TypeError, KeyError):
                self.skipped += 1
        return events


class _Rowids:
    """SQLite: the rows after the last ``rowid`` seen."""

    def __init__(self, reader: Reader, *, since_ms: int | None, last: int | None) -> None:
        self._reader = reader
        self._since = -1 if since_ms is None else since_ms
        table = reader.dialect.table
        if last is not None:
            # The rowid just before the last ``last`` stored rows: polls read what comes after it.
            found = reader.rows(
                f"SELECT rowid FROM {table} WHERE created_at >= ? ORDER BY rowid DESC LIMIT 1 OFFSET ?",
                (self._since, max(last, 0)),
            )
            self._last_rowid = _int(found[0][0]) if found else 0
            if last == 0:  # nothing stored: start at the end, whatever since_ms says
                self._last_rowid = _int(reader.rows(f"SELECT MAX(rowid) FROM {table}", ())[0][0])
        elif since_ms is None:
            self._last_rowid = _int(reader.rows(f"SELECT MAX(rowid) FROM {table}", ())[0][0])
        else:
            self._last_rowid = 0

    def next(self, limit: int) -> list[dict[str, object]]:
        records = self._reader.records(
            f"SELECT rowid AS _rowid, * FROM {self._reader.dialect.table}"
            " WHERE rowid > ? AND created_at >= ? ORDER BY rowid LIMIT ?",
            (self._last_rowid, self._since, limit),
        )
        for record in records:
            self._last_rowid = _int(record.pop("_rowid"))
        return records


_Key = tuple[int, str]


class _Keys:
    """PostgreSQL: the rows after a ``(created_at, tracking_id)`` mark, and the late ones before it.

    ``seen`` holds every row at or before the mark from ``LATE_MS`` before it
    on that was shown or was there when the follower started, so a late row
    is told from one already handled.
    """

    def __init__(self, reader: Reader, *, since_ms: int | None, last: int | None) -> None:
        self._reader = reader
        self._table = reader.dialect.table
        self._since = -1 if since_ms is None else since_ms
        self._mark: _Key | None = None
        self._seen: dict[str, int] = {}
        if last is not None or since_ms is None:
            # Start after the last ``last`` rows (after every row for none), as the rowid does on SQLite.
            skip = 0 if last is None else max(last, 0)
            since = self._since if last else -1  # -n 0 starts at the end, whatever since_ms says
            found = reader.rows(
                f"SELECT created_at, tracking_id FROM {self._table} WHERE created_at >= ?"
                " ORDER BY created_at DESC, tracking_id DESC LIMIT 1 OFFSET ?",
                (since, skip),
            )
            if found:
                self._mark = (_int(found[0][0]), str(found[0][1]))
                self._seen = self._window_ids()

    def _window_ids(self) -> dict[str, int]:
        """The rows now stored from ``LATE_MS`` before the mark up to it."""
        assert self._mark is not None
        at, key = self._mark
        rows = self._reader.rows(
            f"SELECT tracking_id, created_at FROM {self._table} WHERE created_at >= ? AND created_at >= ?"
            " AND (created_at < ? OR (created_at = ? AND tracking_id <= ?))",
            (at - LATE_MS, self._since, at, at, key),
        )
        return {str(tracking_id): _int(created_at) for tracking_id, created_at in rows}

    def next(self, limit: int) -> list[dict[str, object]]:
        records = self._late(limit)
        if len(records) < limit:
            records.extend(self._after(limit - len(records)))
        if self._mark is not None:
            floor = self._mark[0] - LATE_MS
            self._seen = {key: at for key, at in self._seen.items() if at >= floor}
        return records

    def _late(self, limit: int) -> list[dict[str, object]]:
        """Rows that arrived behind the mark since the last poll, oldest first."""
        if self._mark is None:
            return []
        at, key = self._mark
        floor = max(at - LATE_MS, self._since)
        [(count,)] = self._reader.rows(
            f"SELECT COUNT(*) FROM {self._table} WHERE created_at >= ?"
            " AND (created_at < ? OR (created_at = ? AND tracking_id <= ?))",
            (floor, at, at, key),
        )
        known = sum(1 for stored in self._seen.values() if stored >= floor)
        if _int(count) == known:
            return []
        stored = self._window_ids()
        # Rows deleted meanwhile (a retention job) leave the count short: forget them too.
        self._seen = {tid: when for tid, when in self._seen.items() if tid in stored or when < floor}
        new = sorted((when, tid) for tid, when in stored.items() if tid not in self._seen)[:limit]
        if not new:
            return []
        records = self._reader.records(
            f"SELECT * FROM {self._table} WHERE tracking_id = ANY(?) ORDER BY created_at, tracking_id",
            ([tid for _, tid in new],),
        )
        self._seen.update(_keys(records))
        return records

    def _after(self, limit: int) -> list[dict[str, object]]:
        """Rows after the mark, in key order; the mark moves to the last one."""
        params: list[object]
        if self._mark is None:
            sql, params = "created_at >= ?", [self._since]
        else:
            at, key = self._mark
            sql = "created_at >= ? AND created_at >= ? AND (created_at > ? OR tracking_id > ?)"
            params = [self._since, at, at, key]
        records = self._reader.records(
            f"SELECT * FROM {self._table} WHERE {sql} ORDER BY created_at, tracking_id LIMIT ?", [*params, limit]
        )
        seen = _keys(records)
        self._seen.update(seen)
        if records:
            self._mark = (_int(records[-1]["created_at"]), str(records[-1]["tracking_id"]))
        return records


def _keys(records: list[dict[str, object]]) -> Mapping[str, int]:
    return {str(r["tracking_id"]): _int(r["created_at"]) for r in records}
