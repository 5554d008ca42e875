"""The report as typed rows for notebooks and scripts: :func:`query` and :class:`Rows`.

``query`` runs the same grouped report as ``fluxgate report`` (the same SQL,
the same exact sums) and hands back :class:`~.records.Row` records instead of
a table. Times are read the way the command line reads them, so
``since="7d"`` means the same in both.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import closing
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final

import attrs

from .._ids import now_ms as clock_ms
from .._ids import parse_when
from .._models import Status
from .._store import resolve_store
from .records import Filters, Row
from .store import ReportError, open_reader
from .summary import GROUPS, report

__all__ = ["WHERE_KEYS", "Rows", "parse_when", "query"]

#: What ``query(where=...)`` filters on -> the ``Filters`` field it fills.
WHERE_KEYS: Final[Mapping[str, str]] = {"feature": "features", "user": "users", "model": "models", "status": "statuses"}


When = str | datetime | date | timedelta


def _when_ms(name: str, value: When | None, now_ms: int) -> int | None:
    """A ``since``/``until`` argument as Unix ms: naive datetimes and dates are UTC, a timedelta is "ago"."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return now_ms - int(value / timedelta(milliseconds=1))
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp() * 1000)
    if isinstance(value, str):
        try:
            return parse_when(value, now_ms=now_ms)
        except ValueError as exc:
            raise ReportError(f"'{name}': {exc}.") from None
    msg = f"'{name}' must be a str such as '7d', a datetime, a date or a timedelta (got {value!r})."
    raise ReportError(msg)


def _values(name: str, value: str | Iterable[str]) -> tuple[str, ...]:
    values = (value,) if isinstance(value, str) else tuple(value)
    if not values or not all(isinstance(v, str) for v in values):
        msg = f"where[{name!r}] must be a str or a non-empty list of str (got {value!r})."
        raise ReportError(msg)
    return values


def _filters(where: Mapping[str, str | Iterable[str]] | None, since: int | None, until: int | None) -> Filters:
    fields: dict[str, tuple[str, ...]] = {}
    for name, value in (where or {}).items():
        if name not in WHERE_KEYS:
            msg = f"unknown where key {name!r}; choose from {', '.join(WHERE_KEYS)}."
            raise ReportError(msg)
        values = _values(name, value)
        if name == "status":
            values = tuple(v.upper() for v in values)
            unknown = [v for v in values if v not in Status.__members__]
            if unknown:
                msg = f"unknown status {unknown[0]!r}; choose from {', '.join(Status)}."
                raise ReportError(msg)
        fields[WHERE_KEYS[name]] = values
    if since is not None and until is not None and since >= until:
        msg = "'since' must be earlier than 'until'."
        raise ReportError(msg)
    return Filters(since_ms=since, until_ms=until, **fields)


class Rows(list[Row]):
    """The rows of :func:`query`, largest cost first, with the ``totals`` of every group.

    A plain list of :class:`~fluxgate.report.Row` otherwise; ``by`` names the
    groups and ``total_groups`` says how many there were before ``top``.
    """

    by: tuple[str, ...]
    totals: Row
    total_groups: int

    def __init__(self, rows: Iterable[Row] = (), *, by: tuple[str, ...], totals: Row, total_groups: int) -> None:
        super().__init__(rows)
        self.by = by
        self.totals = totals
        self.total_groups = total_groups

    def __repr__(self) -> str:
        return f"Rows(by={self.by!r}, {len(self)} of {self.total_groups} groups, {super().__repr__()})"

    def to_pandas(self) -> Any:  # pandas.DataFrame; Any, as pandas ships no type stubs of its own
        """The rows as a ``pandas.DataFrame``: a column per group, then the report's columns.

        Money stays an exact ``Decimal`` (``df["cost_usd"].astype(float)`` to plot it).

        Raises:
            ImportError: pandas is not installed.
        """
        try:
            pandas = importlib.import_module("pandas")  # not ``import``: pandas ships no type stubs
        except ImportError:
            msg = "Rows.to_pandas() needs pandas, which is not installed: pip install pandas"
            raise ImportError(msg) from None
        skip = {name for name in GROUPS if name not in self.by}
        columns = [*self.by, *(f.name for f in attrs.fields(Row) if f.name not in GROUPS)]
        records = [{k: v for k, v in attrs.asdict(row).items() if k not in skip} for row in self]
        return pandas.DataFrame.from_records(records, columns=columns)


def query(
    by: str | Sequence[str] = "feature",
    *,
    since: When | None = None,
    until: When | None = None,
    where: Mapping[str, str | Iterable[str]] | None = None,
    db: str | os.PathLike[str] | None = None,
    sort: str = "cost",
    top: int | None = None,
) -> Rows:
    """Cost, calls, tokens and latency from the store, one typed row per group.

    Args:
        by: A group name from ``GROUPS`` (``"feature"``, ``"user"``, ``"step"``,
            ``"model"``, ``"session"``, ``"conversation"``, ``"day"``,
            ``"status"``), several as a list or comma-separated.
        since: From this time on: ``"7d"``, ``"2026-11-01"``, an ISO time, a
            ``datetime`` or ``date`` (UTC when naive), or a ``timedelta`` ago.
        until: Before this time (exclusive), in the same forms.
        where: Only these values: ``{"feature": "chat", "user": ["u1", "u2"]}``;
            keys ``feature``, ``user``, ``model`` and ``status``.
        db: The store: a SQLite file or a ``postgresql://`` URL; default
            ``$FLUXGATE_DB``, else ``~/.local/share/fluxgate/events.db``.
        sort: ``cost`` (default), ``calls``, ``tokens``, ``errors``, ``p50``, ``p95`` or ``name``.
        top: Keep only the first ``top`` rows (``totals`` still cover all).

    Raises:
        ReportError: No store, not a store, or an argument it cannot read; the
            message says which (and shows a URL with its password masked).

    >>> rows = query(by="feature", since="7d")        # doctest: +SKIP
    >>> rows[0].feature, rows[0].cost_usd             # doctest: +SKIP
    ('summarize', Decimal('1.2345'))
    """
    given = (by,) if isinstance(by, str) else tuple(by) if isinstance(by, Iterable) else (by,)
    if not all(isinstance(value, str) for value in given):
        msg = f"'by' must be a group name or a list of them, such as 'feature' (got {by!r})."
        raise ReportError(msg)
    group_by = tuple(name.strip() for value in given for name in value.split(",") if name.strip())
    now = clock_ms()
    filters = _filters(where, _when_ms("since", since, now), _when_ms("until", until, now))
    with closing(open_reader(resolve_store(db))) as reader:
        rep = report(reader, group_by=group_by, filters=filters, sort=sort, top=top)
    rows = (Row.from_stats(stats, rep.group_by) for stats in rep.rows)
    return Rows(rows, by=rep.group_by, totals=Row.from_stats(rep.totals, ()), total_groups=rep.total_groups)
