"""Reports over the local store: pure queries that return typed records.

Every figure is aggregated in SQL, so a store of a million events reports in
seconds. Money is summed exactly: ``cost_pusd`` holds each cost as integer
pico-dollars (1e-12 USD), and the sums become ``Decimal`` only at the end.
Calls of a model fluxgate has no price for (``cost_usd IS NULL``) are counted
apart in every record, never folded in as $0.

The functions take an open store (a :class:`~.store.Reader` from
:func:`open_reader`: a SQLite file or a PostgreSQL database, the same figures
from either; or a bare ``sqlite3`` connection from :func:`connect`) and never
write to it. ``terminal`` prints these records, ``output`` writes them as JSON
and CSV and ``html`` draws them.

This module holds the grouped report and :func:`overview`, which runs every
part at once. It re-exports the rest for the package's other modules: the
records (``records``), opening and reading the store (``store``), waste, cache
and unit economics (``economics``) and the formatting shared by every output
(``format``).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final, TypeVar

import attrs

from .._ids import now_ms as clock_ms
from .._pricing import PriceTable
from .economics import cache_efficiency, economics, waste
from .follow import Follower
from .format import format_count, format_ms, format_share, format_time, format_usd, label
from .records import (
    _ZERO,
    FAILED_STATUSES,
    REFUSAL_STATUSES,
    CacheEfficiency,
    Economics,
    Filters,
    ModelCache,
    Overview,
    Report,
    Spend,
    Stats,
    UserEconomics,
    Waste,
)
from .store import (
    COST_SUMS,
    SQLITE_GROUPS,
    Dialect,
    NoStoreError,
    Reader,
    ReportError,
    _int,
    _text,
    _usd,
    as_reader,
    connect,
    open_reader,
)

__all__ = [
    "FAILED_STATUSES",
    "GROUPS",
    "REFUSAL_STATUSES",
    "SORTS",
    "CacheEfficiency",
    "Economics",
    "Filters",
    "Follower",
    "ModelCache",
    "NoStoreError",
    "Overview",
    "Reader",
    "Report",
    "ReportError",
    "Spend",
    "Stats",
    "UserEconomics",
    "Waste",
    "cache_efficiency",
    "connect",
    "economics",
    "format_count",
    "format_ms",
    "format_share",
    "format_time",
    "format_usd",
    "label",
    "open_reader",
    "overview",
    "report",
    "waste",
]

#: Group-by name -> the SQLite expression it groups on (each store's dialect
#: has its own spelling). Days are UTC days, grouped as day numbers and dated
#: by ``_keyer``.
GROUPS: Final[Mapping[str, str]] = SQLITE_GROUPS

#: What ``report(sort=...)`` accepts; every order but ``name`` is largest first.
SORTS: Final = ("cost", "calls", "tokens", "errors", "p50", "p95", "name")

_T = TypeVar("_T")
_EPOCH: Final = date(1970, 1, 1)
_IN_FAILED: Final = f"status IN ({', '.join(repr(s) for s in FAILED_STATUSES)})"
_IN_REFUSAL: Final = f"status IN ({', '.join(repr(s) for s in REFUSAL_STATUSES)})"


# --- grouped report ---------------------------------------------------------------


def _group_exprs(group_by: Sequence[str], dialect: Dialect) -> list[str]:
    if not group_by:
        msg = "group by at least one of: " + ", ".join(GROUPS) + "."
        raise ReportError(msg)
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown:
        msg = f"unknown group-by {unknown[0]!r}; choose from {', '.join(GROUPS)}."
        raise ReportError(msg)
    return [dialect.groups[g] for g in group_by]


def _keyer(group_by: Sequence[str]) -> Callable[[Sequence[object]], tuple[str | None, ...]]:
    """Turn the group values SQL returns into display keys (day numbers become ``YYYY-MM-DD``)."""
    days = [name == "day" for name in group_by]

    def key(raw: Sequence[object]) -> tuple[str | None, ...]:
        return tuple(
            (_EPOCH + timedelta(days=_int(v))).isoformat() if day and v is not None else _text(v)
            for v, day in zip(raw, days, strict=True)
        )

    return key


def _stats(key: tuple[str | None, ...], row: Sequence[object]) -> Stats:
    """A ``Stats`` from the columns after the keys of ``_AGGREGATES``."""
    return Stats(
        key=key,
        calls=_int(row[0]),
        cost_usd=_usd(_int(row[1]), _int(row[2])),
        unpriced_calls=_int(row[3]),
        input_tokens=_int(row[4]),
        output_tokens=_int(row[5]),
        reasoning_tokens=_int(row[6]),
        cache_read_tokens=_int(row[7]),
        cache_write_tokens=_int(row[8]),
        failed_calls=_int(row[9]),
        aborted_calls=_int(row[10]),
        estimated_calls=_int(row[11]),
        first_ms=None if row[12] is None else _int(row[12]),
        last_ms=None if row[13] is None else _int(row[13]),
    )


def _aggregates(d: Dialect) -> str:
    """The columns ``_stats`` reads, then the count of latencies.

    ``estimated``: priced calls whose cost is not exact (any ``cost_status`` but
    ``priced``, including the ``estimated`` that stores written before the
    statuses were split hold).
    """
    estimated = "cost_pusd IS NOT NULL AND COALESCE(cost_status, '') != 'priced'"
    return (
        f"COUNT(*), {COST_SUMS}, SUM(input_tokens), SUM(output_tokens), SUM(reasoning_tokens), "
        f"SUM(cache_read_input_tokens), SUM(cache_creation_input_tokens), {d.count(_IN_FAILED)}, "
        f"{d.count(d.aborted)}, {d.count(estimated)}, MIN(created_at), MAX(created_at), COUNT(latency_ms)"
    )


def _total(groups: Sequence[Stats]) -> Stats:
    """The sum of every group (no second pass over the store)."""
    firsts = [g.first_ms for g in groups if g.first_ms is not None]
    lasts = [g.last_ms for g in groups if g.last_ms is not None]
    return Stats(
        key=(),
        calls=sum(g.calls for g in groups),
        cost_usd=sum((g.cost_usd for g in groups), _ZERO),
        unpriced_calls=sum(g.unpriced_calls for g in groups),
        input_tokens=sum(g.input_tokens for g in groups),
        output_tokens=sum(g.output_tokens for g in groups),
        reasoning_tokens=sum(g.reasoning_tokens for g in groups),
        cache_read_tokens=sum(g.cache_read_tokens for g in groups),
        cache_write_tokens=sum(g.cache_write_tokens for g in groups),
        failed_calls=sum(g.failed_calls for g in groups),
        aborted_calls=sum(g.aborted_calls for g in groups),
        estimated_calls=sum(g.estimated_calls for g in groups),
        first_ms=min(firsts, default=None),
        last_ms=max(lasts, default=None),
    )


def _sort_key(sort: str, stats: Stats) -> tuple[object, ...]:
    name = tuple((v is None, v or "") for v in stats.key)
    if sort == "name":
        return name
    lat = stats.p50_latency_ms if sort == "p50" else stats.p95_latency_ms
    primary: dict[str, tuple[object, ...]] = {
        "cost": (-stats.cost_usd, -stats.unpriced_calls),
        "calls": (-stats.calls,),
        "tokens": (-stats.tokens,),
        "errors": (-stats.failed_calls, -stats.error_rate),
        "p50": (lat is None, -(lat or 0.0)),
        "p95": (lat is None, -(lat or 0.0)),
    }
    return (*primary[sort], -stats.calls, name)


def report(
    conn: Reader | sqlite3.Connection,
    *,
    group_by: Sequence[str] = ("feature",),
    filters: Filters = Filters(),  # noqa: B008 -- Filters is frozen
    sort: str = "cost",
    top: int | None = None,
    latency: bool = True,
) -> Report:
    """Group the events matching ``filters`` and sum each group.

    Args:
        conn: An open store (:func:`open_reader`).
        group_by: Names from :data:`GROUPS`; several make one row per combination.
        filters: Which events to read.
        sort: One of :data:`SORTS`.
        top: Keep only the first ``top`` rows (the totals still cover all).
        latency: Compute p50/p95 latency (one more sorted pass).

    Raises:
        ReportError: An unknown group-by or sort, or a store that cannot be read.
    """
    reader = as_reader(conn)
    exprs = _group_exprs(group_by, reader.dialect)
    if sort not in SORTS:
        msg = f"unknown sort {sort!r}; choose from {', '.join(SORTS)}."
        raise ReportError(msg)
    if top is not None and top < 1:
        msg = f"'top' must be at least 1 (got {top!r})."
        raise ReportError(msg)
    where, params = filters.sql()
    width = len(exprs)
    keys = ", ".join(f"k{i}" for i in range(width))
    selected = ", ".join(f"{e} AS k{i}" for i, e in enumerate(exprs))
    sql = f"SELECT {selected}, {_aggregates(reader.dialect)} FROM {reader.dialect.table} WHERE {where} GROUP BY {keys}"
    to_key = _keyer(group_by)
    groups: list[Stats] = []
    raw_keys: list[tuple[object, ...]] = []  # as SQL returns them, to match the latency pass
    counts: dict[tuple[object, ...], int] = {}
    for row in reader.rows(sql, params):
        raw = tuple(row[:width])
        groups.append(_stats(to_key(raw), row[width:]))
        raw_keys.append(raw)
        counts[raw] = _int(row[-1])
    totals = _total(groups)
    if latency and any(counts.values()):
        found, overall = reader.percentiles(exprs, where, params, counts)
        groups = [
            attrs.evolve(g, p50_latency_ms=found[raw][0], p95_latency_ms=found[raw][1])
            if len(found.get(raw, ())) == 2
            else g
            for g, raw in zip(groups, raw_keys, strict=True)
        ]
        if len(overall) == 2:
            totals = attrs.evolve(totals, p50_latency_ms=overall[0], p95_latency_ms=overall[1])
    groups.sort(key=lambda s: _sort_key(sort, s))
    rows = groups if top is None else groups[:top]
    return Report(
        group_by=tuple(group_by),
        filters=filters,
        sort=sort,
        rows=tuple(rows),
        total_groups=len(groups),
        totals=totals,
    )


# --- everything at once -----------------------------------------------------------


def _on(reader: Reader, job: Callable[[Reader], _T]) -> _T:
    """Run ``job`` on a session of its own (SQLite connections are not shared between threads)."""
    with reader.session() as session:
        return job(session)


def overview(
    store: str | Path | Reader,
    *,
    group_by: Sequence[str] = ("feature",),
    filters: Filters = Filters(),  # noqa: B008 -- Filters is frozen
    sort: str = "cost",
    top: int | None = None,
    threshold: Decimal | None = None,
    now_ms: int | None = None,
    prices: PriceTable | None = None,
    charts: bool = True,
    workers: int | None = None,
) -> Overview:
    """The grouped report with its waste, cache and unit economics, and (``charts``) the daily and per-model views.

    ``store`` is a path, a ``postgresql://`` URL or an open reader (left open).
    Each part is one query on its own read-only connection, run on up to
    ``workers`` threads (default: the number of CPUs, at most 4): SQLite
    releases the GIL while it scans, and PostgreSQL runs each query in a
    server process of its own, so the parts run side by side.
    Unit economics covers the 30 days before ``filters.until_ms`` (default
    ``now_ms``), whatever ``filters.since_ms`` says, for the users in ``filters``.

    Raises:
        ReportError: No store at ``store``, not a store, or a bad argument.
    """
    reader = store if isinstance(store, Reader) else open_reader(store)  # one clear error before any thread starts
    now = clock_ms() if now_ms is None else now_ms
    until = filters.until_ms if filters.until_ms is not None else now
    count = workers if workers is not None else min(4, os.cpu_count() or 1)
    try:
        with ThreadPoolExecutor(max_workers=max(count, 1), thread_name_prefix="fluxgate-report") as pool:

            def run(job: Callable[[Reader], _T]) -> Future[_T]:
                return pool.submit(_on, reader, job)

            # Longest first: the grouped report makes two passes (sums, then latencies).
            grouped = run(lambda r: report(r, group_by=group_by, filters=filters, sort=sort, top=top))
            daily = by_model = None
            if charts:
                daily = run(
                    lambda r: report(r, group_by=("day", "feature"), filters=filters, sort="name", latency=False)
                )
            cache = run(lambda r: cache_efficiency(r, filters=filters, prices=prices))
            if charts:
                by_model = run(lambda r: report(r, group_by=("model",), filters=filters, latency=False))
            spent = run(lambda r: waste(r, filters=filters))
            econ = run(lambda r: economics(r, until_ms=until, threshold=threshold, users=filters.users))
            return Overview(
                store=reader.name,
                generated_ms=now,
                report=grouped.result(),
                daily=None if daily is None else daily.result(),
                by_model=None if by_model is None else by_model.result(),
                waste=spent.result(),
                cache=cache.result(),
                economics=econ.result(),
            )
    finally:
        if reader is not store:
            reader.close()
