"""Reports over the local store: pure queries that return typed records.

Every figure is aggregated in SQL, so a store of a million events reports in
seconds. Money is summed exactly: ``cost_pusd`` holds each cost as integer
pico-dollars (1e-12 USD), and the sums become ``Decimal`` only at the end.
Calls of a model fluxgate has no price for (``cost_usd IS NULL``) are counted
apart in every record, never folded in as $0.

The functions take an open connection (see :func:`connect`) and never write to
it. ``_report_cli`` prints these records and ``_html`` draws them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final, TypeVar

import attrs

from ._errors import FluxgateError
from ._models import CostEvent
from ._pricing import PriceTable
from .sinks.sqlite import TABLE, event_from_row

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
    "Overview",
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
    "overview",
    "report",
    "waste",
]

#: Group-by name -> the SQL expression it groups on. Days are UTC days.
#: The unary ``+`` keeps SQLite from walking an index in group order, which
#: costs a random row read per event (twice as slow as a scan and a sort on a
#: million events); filters on the same columns still use the indexes.
GROUPS: Final[Mapping[str, str]] = {
    "feature": "+feature",
    "user": "+user_id",
    "step": "+step",
    "model": "+model",
    "session": "+session_id",
    "conversation": "+conversation_id",
    "day": "created_at / 86400000",  # the UTC day number: half the cost of strftime(); dated in _key()
    "status": "+status",
}

#: What ``report(sort=...)`` accepts; every order but ``name`` is largest first.
SORTS: Final = ("cost", "calls", "tokens", "errors", "p50", "p95", "name")

#: Statuses that count as failed calls (the error rate's numerator).
FAILED_STATUSES: Final = ("ERROR", "MALFORMED_REQUEST", "BLOCKED")
#: Statuses where the model declined to answer.
REFUSAL_STATUSES: Final = ("CONTENT_FILTER", "RECITATION")

_T = TypeVar("_T")
_DAY_MS: Final = 86_400_000
_EPOCH: Final = date(1970, 1, 1)
_MTOK: Final = Decimal(1_000_000)
_ZERO: Final = Decimal(0)
_IN_FAILED: Final = f"status IN ({', '.join(repr(s) for s in FAILED_STATUSES)})"
_IN_REFUSAL: Final = f"status IN ({', '.join(repr(s) for s in REFUSAL_STATUSES)})"
#: Where a query sums money: two columns that ``_usd`` adds up exactly, then
#: the count of unpriced calls. Plain ``SUM(cost_pusd)`` raises "integer
#: overflow" past $9.2M in one sum; ``_query`` then runs the query again with
#: ``_SPLIT_SUMS``, which sums the micro-dollar quotient and the remainder apart
#: (exact to $9.2 trillion) at the price of two more operations per row.
_COST_SUMS: Final = "{cost}"
_PLAIN_SUMS: Final = "0, SUM(cost_pusd), SUM(cost_pusd IS NULL)"
_SPLIT_SUMS: Final = "SUM(cost_pusd / 1000000), SUM(cost_pusd % 1000000), SUM(cost_pusd IS NULL)"


class ReportError(FluxgateError, ValueError):
    """A report cannot be made: no store, not a store, or a bad argument; the message says which."""


def _usd(micro: int | None, rest: int | None) -> Decimal:
    """Exact USD from the two halves of ``_COST_SUMS``, without trailing zeros."""
    pico = (micro or 0) * 1_000_000 + (rest or 0)
    value = Decimal(pico).scaleb(-12)
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- records --------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Filters:
    """Which events a report reads. Times are Unix ms; ``until_ms`` is exclusive; empty tuples mean "all"."""

    since_ms: int | None = None
    until_ms: int | None = None
    features: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def sql(self) -> tuple[str, list[object]]:
        """The WHERE clause (never empty) and its parameters."""
        clauses: list[str] = []
        params: list[object] = []
        if self.since_ms is not None:
            clauses.append("created_at >= ?")
            params.append(self.since_ms)
        if self.until_ms is not None:
            clauses.append("created_at < ?")
            params.append(self.until_ms)
        for column, values in (
            ("feature", self.features),
            ("user_id", self.users),
            ("status", self.statuses),
            ("model", self.models),
        ):
            if values:
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        return " AND ".join(clauses) or "1", params


@attrs.frozen(kw_only=True)
class Stats:
    """Calls, cost, tokens and latency of one group (``key``), or of every event (``key == ()``).

    ``cost_usd`` sums priced calls only; ``unpriced_calls`` were made to models
    with no price and are not in it. ``reasoning_tokens`` are already inside
    ``output_tokens``. Latency percentiles are nearest-rank over calls that
    recorded a latency, ``None`` when none did or when not asked for.
    """

    key: tuple[str | None, ...]
    calls: int
    cost_usd: Decimal
    unpriced_calls: int
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    failed_calls: int
    first_ms: int | None = None
    last_ms: int | None = None
    p50_latency_ms: float | None = None
    p95_latency_ms: float | None = None

    @property
    def tokens(self) -> int:
        """Every billed token: input, output, cache reads and cache writes."""
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def error_rate(self) -> float:
        """Failed calls (``FAILED_STATUSES``) over all calls; 0.0 for no calls."""
        return self.failed_calls / self.calls if self.calls else 0.0


@attrs.frozen(kw_only=True)
class Report:
    """Events grouped by ``group_by``: the sorted (and cut) ``rows`` and the ``totals`` of all of them."""

    group_by: tuple[str, ...]
    filters: Filters
    sort: str
    rows: tuple[Stats, ...]
    total_groups: int
    totals: Stats


@attrs.frozen(kw_only=True)
class Spend:
    """How many calls of one kind, and what the priced ones cost."""

    calls: int = 0
    cost_usd: Decimal = _ZERO
    unpriced_calls: int = 0


@attrs.frozen(kw_only=True)
class Waste:
    """Spend that bought no usable answer, against the spend of every call in the slice."""

    max_tokens: Spend
    refusals: Spend
    failed: Spend
    total: Spend

    @property
    def wasted_usd(self) -> Decimal:
        """Cut-off, refused and failed calls together."""
        return self.max_tokens.cost_usd + self.refusals.cost_usd + self.failed.cost_usd

    @property
    def share(self) -> float:
        """``wasted_usd`` over all spend; 0.0 when nothing was spent."""
        return float(self.wasted_usd / self.total.cost_usd) if self.total.cost_usd else 0.0


@attrs.frozen(kw_only=True)
class ModelCache:
    """Prompt caching on one model, priced at its standard rates (``priced`` false: no price known)."""

    model: str | None
    calls: int
    input_tokens: int
    read_tokens: int
    write_tokens: int
    priced: bool
    #: What the cache reads would have cost at the input rate, minus what they cost.
    saved_usd: Decimal = _ZERO
    #: What the cache writes cost.
    write_cost_usd: Decimal = _ZERO
    #: What the cache writes cost beyond the same tokens sent as plain input.
    write_premium_usd: Decimal = _ZERO


@attrs.frozen(kw_only=True)
class CacheEfficiency:
    """What prompt caching saved and cost, per model and in total (priced models only)."""

    models: tuple[ModelCache, ...]
    saved_usd: Decimal
    write_cost_usd: Decimal
    write_premium_usd: Decimal
    input_tokens: int
    read_tokens: int
    write_tokens: int
    unpriced_read_tokens: int
    unpriced_write_tokens: int

    @property
    def net_usd(self) -> Decimal:
        """Savings from reads minus the premium paid for writes: what caching earned."""
        return self.saved_usd - self.write_premium_usd

    @property
    def hit_rate(self) -> float:
        """Cache reads over all prompt tokens (input, reads and writes); 0.0 with none."""
        prompt = self.input_tokens + self.read_tokens + self.write_tokens
        return self.read_tokens / prompt if prompt else 0.0


@attrs.frozen(kw_only=True)
class UserEconomics:
    """One user's AI spend over the window against what they pay per month."""

    user_id: str
    name: str | None
    monthly_revenue: Decimal | None
    calls: int
    spend_usd: Decimal
    unpriced_calls: int
    over_threshold: bool = False

    @property
    def ratio(self) -> Decimal | None:
        """Spend over monthly revenue; ``None`` without revenue or with zero revenue."""
        if not self.monthly_revenue:
            return None
        return self.spend_usd / self.monthly_revenue


@attrs.frozen(kw_only=True)
class Economics:
    """AI spend per user over ``days`` days ending at ``until_ms``, against monthly revenue.

    ``users`` holds every user with calls in the window, largest spend first;
    the totals count only users whose ``monthly_revenue`` is known.
    """

    days: int
    since_ms: int
    until_ms: int
    threshold: Decimal | None
    users: tuple[UserEconomics, ...]
    spend_usd: Decimal
    revenue: Decimal
    users_with_revenue: int

    @property
    def ratio(self) -> Decimal | None:
        """Spend of users with revenue over their revenue."""
        return self.spend_usd / self.revenue if self.revenue else None

    @property
    def alerts(self) -> tuple[UserEconomics, ...]:
        """Users whose spend exceeds ``threshold`` of their revenue."""
        return tuple(u for u in self.users if u.over_threshold)

    @property
    def spend_without_revenue_usd(self) -> Decimal:
        """Spend of users with no known revenue."""
        return sum((u.spend_usd for u in self.users if u.monthly_revenue is None), _ZERO)


@attrs.frozen(kw_only=True)
class Overview:
    """Everything the terminal and HTML reports show, read in one go.

    ``daily`` (by day and feature) and ``by_model`` feed the HTML charts;
    they are ``None`` when not asked for.
    """

    store: str
    generated_ms: int
    report: Report
    daily: Report | None
    by_model: Report | None
    waste: Waste
    cache: CacheEfficiency
    economics: Economics


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
        raise ReportError(msg)
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
        raise ReportError(msg)
    return conn


def _query(conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
    """Run ``sql``, with ``{cost}`` standing for the money sums (see ``_COST_SUMS``)."""
    try:
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


# --- grouped report ---------------------------------------------------------------


def _group_exprs(group_by: Sequence[str]) -> list[str]:
    if not group_by:
        msg = "group by at least one of: " + ", ".join(GROUPS) + "."
        raise ReportError(msg)
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown:
        msg = f"unknown group-by {unknown[0]!r}; choose from {', '.join(GROUPS)}."
        raise ReportError(msg)
    return [GROUPS[g] for g in group_by]


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
        first_ms=None if row[10] is None else _int(row[10]),
        last_ms=None if row[11] is None else _int(row[11]),
    )


_AGGREGATES: Final = (
    f"COUNT(*), {_COST_SUMS}, SUM(input_tokens), SUM(output_tokens), SUM(reasoning_tokens), "
    f"SUM(cache_read_input_tokens), SUM(cache_creation_input_tokens), SUM({_IN_FAILED}), "
    "MIN(created_at), MAX(created_at), COUNT(latency_ms)"
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
        first_ms=min(firsts, default=None),
        last_ms=max(lasts, default=None),
    )


def _ranks(n: int) -> tuple[int, int]:
    """The 1-based nearest ranks of p50 and p95 among ``n`` values: ceil(p * n)."""
    return (n * 50 + 99) // 100, (n * 95 + 99) // 100


def _percentiles(
    conn: sqlite3.Connection,
    exprs: Sequence[str],
    where: str,
    params: Sequence[object],
    counts: Mapping[tuple[object, ...], int],
) -> tuple[dict[tuple[object, ...], list[float]], list[float]]:
    """Nearest-rank p50 and p95 of ``latency_ms`` per group and over all, from one sorted pass.

    SQLite sorts the latencies once; each group's count is known from the
    aggregate query, so walking the sorted rows and counting per group finds
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
    sql = f"SELECT {selected}, latency_ms FROM {TABLE} WHERE ({where}) AND latency_ms IS NOT NULL ORDER BY latency_ms"
    # This loop is the only per-event Python in a report; keep it lean.
    low, high = overall_targets
    try:
        rank = 0
        for row in conn.execute(sql, params):
            rank += 1
            if rank in (low, high):
                overall.append(float(row[width]))
            key = row[:width]
            count = seen.get(key)
            if count is None:  # a row written after the aggregate query ran
                continue
            count += 1
            seen[key] = count
            if count in targets[key]:
                found[key].append(float(row[width]))
    except sqlite3.DatabaseError as exc:
        msg = f"the store could not be read ({exc})."
        raise ReportError(msg) from None
    if overall_targets[0] == overall_targets[1] and len(overall) == 1:
        overall.append(overall[0])
    for key, (p50, p95) in targets.items():
        if p50 == p95 and len(found[key]) == 1:
            found[key].append(found[key][0])
    return found, overall


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
    conn: sqlite3.Connection,
    *,
    group_by: Sequence[str] = ("feature",),
    filters: Filters = Filters(),
    sort: str = "cost",
    top: int | None = None,
    latency: bool = True,
) -> Report:
    """Group the events matching ``filters`` and sum each group.

    Args:
        conn: An open store (:func:`connect`).
        group_by: Names from :data:`GROUPS`; several make one row per combination.
        filters: Which events to read.
        sort: One of :data:`SORTS`.
        top: Keep only the first ``top`` rows (the totals still cover all).
        latency: Compute p50/p95 latency (one more sorted pass).

    Raises:
        ReportError: An unknown group-by or sort, or a store that cannot be read.
    """
    exprs = _group_exprs(group_by)
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
    sql = f"SELECT {selected}, {_AGGREGATES} FROM {TABLE} WHERE {where} GROUP BY {keys}"
    to_key = _keyer(group_by)
    groups: list[Stats] = []
    raw_keys: list[tuple[object, ...]] = []  # as SQL returns them, to match the latency pass
    counts: dict[tuple[object, ...], int] = {}
    for row in _query(conn, sql, params):
        raw = tuple(row[:width])
        groups.append(_stats(to_key(raw), row[width:]))
        raw_keys.append(raw)
        counts[raw] = _int(row[-1])
    totals = _total(groups)
    if latency and any(counts.values()):
        found, overall = _percentiles(conn, exprs, where, params, counts)
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


# --- waste ------------------------------------------------------------------------


def waste(conn: sqlite3.Connection, *, filters: Filters = Filters()) -> Waste:
    """Spend on answers cut off at ``max_tokens``, on refusals and on failed calls.

    A refusal is a ``CONTENT_FILTER`` or ``RECITATION`` status (``stop_reason
    == "refusal"``); a failed call has one of :data:`FAILED_STATUSES`.
    """
    where, params = filters.sql()
    kinds: dict[str, list[Spend]] = {}
    for status, calls, micro, rest, unpriced in _query(
        conn, f"SELECT +status AS s, COUNT(*), {_COST_SUMS} FROM {TABLE} WHERE {where} GROUP BY s", params
    ):
        spend = Spend(calls=_int(calls), cost_usd=_usd(_int(micro), _int(rest)), unpriced_calls=_int(unpriced))
        kinds.setdefault("total", []).append(spend)
        if status == "MAX_TOKENS":
            kinds.setdefault("max_tokens", []).append(spend)
        elif status in REFUSAL_STATUSES:
            kinds.setdefault("refusals", []).append(spend)
        elif status in FAILED_STATUSES:
            kinds.setdefault("failed", []).append(spend)
    spends = {
        kind: Spend(
            calls=sum(s.calls for s in kinds.get(kind, ())),
            cost_usd=sum((s.cost_usd for s in kinds.get(kind, ())), _ZERO),
            unpriced_calls=sum(s.unpriced_calls for s in kinds.get(kind, ())),
        )
        for kind in ("max_tokens", "refusals", "failed", "total")
    }
    return Waste(**spends)


# --- cache efficiency -------------------------------------------------------------


def cache_efficiency(
    conn: sqlite3.Connection,
    *,
    filters: Filters = Filters(),
    prices: PriceTable | None = None,
) -> CacheEfficiency:
    """What cache reads saved against the full input price, and what cache writes cost.

    Token sums are grouped per model in SQL and priced at the model's standard
    rates in effect at its latest call (half price for batch calls). Long-context,
    fast-mode and regional surcharges are left out, so the figures are those
    of the base rates. Models with no price are counted apart.
    """
    table = prices or PriceTable.default()
    where, params = filters.sql()
    batch = "(COALESCE(usage_service_tier, '') = 'batch' OR batch_id IS NOT NULL)"
    sql = f"""
        SELECT model, {batch} AS batch, COUNT(*), SUM(input_tokens), SUM(cache_read_input_tokens),
               SUM(cache_creation_input_tokens), SUM(COALESCE(cache_creation_5m_input_tokens, 0)),
               SUM(COALESCE(cache_creation_1h_input_tokens, 0)), MAX(created_at)
        FROM {TABLE} WHERE {where} GROUP BY model, batch
    """
    merged: dict[str | None, ModelCache] = {}
    for model, is_batch, calls, inp, read, write, w5m, w1h, last in _query(conn, sql, params):
        name = _text(model)
        read_n, write_n, w1h_n = _int(read), _int(write), _int(w1h)
        w5m_n = max(write_n - w1h_n, _int(w5m))  # writes without a TTL split bill at the 5-minute rate
        row = None if name is None else table.row(name, at_ms=_int(last))
        rates = None if row is None else row.rates
        part = ModelCache(
            model=name,
            calls=_int(calls),
            input_tokens=_int(inp),
            read_tokens=read_n,
            write_tokens=write_n,
            priced=False,
        )
        if rates is not None:
            factor = Decimal("0.5") if is_batch else Decimal(1)
            part = attrs.evolve(
                part,
                priced=True,
                saved_usd=read_n * (rates.input - rates.cache_read) * factor / _MTOK,
                write_cost_usd=(w5m_n * rates.cache_write_5m + w1h_n * rates.cache_write_1h) * factor / _MTOK,
                write_premium_usd=(
                    (w5m_n * (rates.cache_write_5m - rates.input) + w1h_n * (rates.cache_write_1h - rates.input))
                    * factor
                    / _MTOK
                ),
            )
        merged[name] = part if name not in merged else _merge_cache(merged[name], part)
    models = sorted(merged.values(), key=lambda m: (-m.saved_usd, -m.read_tokens, m.model or ""))
    priced = [m for m in models if m.priced]
    unpriced = [m for m in models if not m.priced]
    return CacheEfficiency(
        models=tuple(models),
        saved_usd=sum((m.saved_usd for m in priced), _ZERO),
        write_cost_usd=sum((m.write_cost_usd for m in priced), _ZERO),
        write_premium_usd=sum((m.write_premium_usd for m in priced), _ZERO),
        input_tokens=sum(m.input_tokens for m in priced),
        read_tokens=sum(m.read_tokens for m in priced),
        write_tokens=sum(m.write_tokens for m in priced),
        unpriced_read_tokens=sum(m.read_tokens for m in unpriced),
        unpriced_write_tokens=sum(m.write_tokens for m in unpriced),
    )


def _merge_cache(a: ModelCache, b: ModelCache) -> ModelCache:
    """The batch and non-batch parts of one model, added up."""
    return ModelCache(
        model=a.model,
        calls=a.calls + b.calls,
        input_tokens=a.input_tokens + b.input_tokens,
        read_tokens=a.read_tokens + b.read_tokens,
        write_tokens=a.write_tokens + b.write_tokens,
        priced=a.priced and b.priced,
        saved_usd=a.saved_usd + b.saved_usd,
        write_cost_usd=a.write_cost_usd + b.write_cost_usd,
        write_premium_usd=a.write_premium_usd + b.write_premium_usd,
    )


# --- unit economics ---------------------------------------------------------------


def economics(
    conn: sqlite3.Connection,
    *,
    until_ms: int | None = None,
    days: int = 30,
    threshold: Decimal | None = None,
    users: Sequence[str] = (),
) -> Economics:
    """Each user's AI spend over the last ``days`` days against their ``monthly_revenue``.

    A user's revenue is the one on their latest call in the window that
    carried one. ``threshold`` (a share, ``Decimal("0.2")`` for 20 %) flags
    users whose spend exceeds that share of their revenue, and users with spend
    but zero revenue.

    Raises:
        ReportError: ``days`` is not positive or ``threshold`` is negative.
    """
    if days < 1:
        msg = f"'days' must be at least 1 (got {days!r})."
        raise ReportError(msg)
    if threshold is not None and threshold < 0:
        msg = f"'threshold' must be a share >= 0, such as 0.2 (got {threshold!r})."
        raise ReportError(msg)
    until = _now_ms() if until_ms is None else until_ms
    since = until - days * _DAY_MS
    where, params = Filters(since_ms=since, until_ms=until, users=tuple(users)).sql()
    # One pass over the window. SQLite returns the bare column ``user`` from the
    # row holding the MAX(): the latest call that carried a revenue.
    sql = f"""
        SELECT +user_id AS u, COUNT(*), {_COST_SUMS}, user,
               MAX(CASE WHEN json_extract(user, '$.monthly_revenue') IS NOT NULL THEN created_at END)
        FROM {TABLE} WHERE {where} AND user_id IS NOT NULL
        GROUP BY u
    """
    out: list[UserEconomics] = []
    for user_id, calls, micro, rest, unpriced, blob, _ in _query(conn, sql, params):
        name, revenue = _profile(blob)
        entry = UserEconomics(
            user_id=str(user_id),
            name=name,
            monthly_revenue=revenue,
            calls=_int(calls),
            spend_usd=_usd(_int(micro), _int(rest)),
            unpriced_calls=_int(unpriced),
        )
        if threshold is not None and revenue is not None:
            over = entry.spend_usd > threshold * revenue if revenue else entry.spend_usd > 0
            entry = attrs.evolve(entry, over_threshold=over)
        out.append(entry)
    out.sort(key=lambda u: (-u.spend_usd, -u.calls, u.user_id))
    with_revenue = [u for u in out if u.monthly_revenue is not None]
    return Economics(
        days=days,
        since_ms=since,
        until_ms=until,
        threshold=threshold,
        users=tuple(out),
        spend_usd=sum((u.spend_usd for u in with_revenue), _ZERO),
        revenue=sum((u.monthly_revenue or _ZERO for u in with_revenue), _ZERO),
        users_with_revenue=len(with_revenue),
    )


def _profile(blob: object) -> tuple[str | None, Decimal | None]:
    """``(name, monthly_revenue)`` from a stored user JSON, the revenue exact."""
    if not isinstance(blob, str):
        return None, None
    try:
        data = json.loads(blob, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    name, revenue = data.get("name"), data.get("monthly_revenue")
    if not isinstance(revenue, Decimal) or not revenue.is_finite() or revenue < 0:
        revenue = None
    return (name if isinstance(name, str) else None), revenue


# --- everything at once -----------------------------------------------------------


def _on(path: Path, job: Callable[[sqlite3.Connection], _T]) -> _T:
    """Run ``job`` on a connection of its own (SQLite connections are not shared between threads)."""
    conn = connect(path)
    try:
        return job(conn)
    finally:
        conn.close()


def overview(
    store: str | Path,
    *,
    group_by: Sequence[str] = ("feature",),
    filters: Filters = Filters(),
    sort: str = "cost",
    top: int | None = None,
    threshold: Decimal | None = None,
    now_ms: int | None = None,
    prices: PriceTable | None = None,
    charts: bool = True,
    workers: int | None = None,
) -> Overview:
    """The grouped report with its waste, cache and unit economics, and (``charts``) the daily and per-model views.

    Each part is one query on its own read-only connection, run on up to
    ``workers`` threads (default: the number of CPUs, at most 4): SQLite
    releases the GIL while it scans, so the parts run side by side.
    Unit economics covers the 30 days before ``filters.until_ms`` (default
    ``now_ms``), whatever ``filters.since_ms`` says, for the users in ``filters``.

    Raises:
        ReportError: No store at ``store``, not a store, or a bad argument.
    """
    path = Path(store)
    connect(path).close()  # one clear error before any thread starts
    now = _now_ms() if now_ms is None else now_ms
    until = filters.until_ms if filters.until_ms is not None else now
    count = workers if workers is not None else min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(count, 1), thread_name_prefix="fluxgate-report") as pool:

        def run(job: Callable[[sqlite3.Connection], _T]) -> Future[_T]:
            return pool.submit(_on, path, job)

        # Longest first: the grouped report makes two passes (sums, then latencies).
        grouped = run(lambda c: report(c, group_by=group_by, filters=filters, sort=sort, top=top))
        daily = by_model = None
        if charts:
            daily = run(lambda c: report(c, group_by=("day", "feature"), filters=filters, sort="name", latency=False))
        cache = run(lambda c: cache_efficiency(c, filters=filters, prices=prices))
        if charts:
            by_model = run(lambda c: report(c, group_by=("model",), filters=filters, latency=False))
        spent = run(lambda c: waste(c, filters=filters))
        econ = run(lambda c: economics(c, until_ms=until, threshold=threshold, users=filters.users))
        return Overview(
            store=str(store),
            generated_ms=now,
            report=grouped.result(),
            daily=None if daily is None else daily.result(),
            by_model=None if by_model is None else by_model.result(),
            waste=spent.result(),
            cache=cache.result(),
            economics=econ.result(),
        )


# --- tail ---------------------------------------------------------------------------


class Follower:
    """Read the events written since the last poll, in the order they were written.

    Args:
        conn: An open store (:func:`connect`).
        since_ms: Also return events already stored from this time on;
            by default only events written after the follower starts.
    """

    def __init__(self, conn: sqlite3.Connection, *, since_ms: int | None = None) -> None:
        self._conn = conn
        self._since_ms = since_ms
        if since_ms is None:
            last = _query(conn, f"SELECT MAX(rowid) FROM {TABLE}", ())[0][0]
            self._last_rowid = _int(last)
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


# --- formatting shared by the terminal and HTML reports -----------------------------


def format_usd(value: Decimal) -> str:
    """Dollars for people: cents from $1 up, four significant digits below (``$0.0045``)."""
    if value == 0:
        return "$0.00"
    sign, size = ("-" if value < 0 else ""), abs(value)
    if size >= 1:
        return f"{sign}${size:,.2f}"
    places = min(max(2, 3 - size.adjusted()), 10)
    text = f"{size:.{places}f}".rstrip("0")
    if len(text.partition(".")[2]) < 2:
        text = f"{size:.2f}"
    return f"{sign}${text}"


def format_share(value: float | Decimal | None) -> str:
    """A share as a percentage (``12.5%``); an em dash for ``None``."""
    if value is None:
        return "\N{EM DASH}"
    pct = float(value) * 100
    if pct == 0:
        return "0%"
    if pct < 0.01:
        return "<0.01%"
    if pct < 1:
        return f"{pct:.2g}%"
    return f"{pct:.1f}%" if pct < 10 else f"{pct:,.0f}%"


def format_ms(value: float | None) -> str:
    """A latency in whole milliseconds; an em dash for ``None``."""
    return "\N{EM DASH}" if value is None else f"{value:,.0f}"


def format_time(ms: int | None) -> str:
    """Unix ms as ``2026-11-03 14:05 UTC``."""
    if ms is None:
        return "\N{EM DASH}"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))


def format_count(n: int, noun: str) -> str:
    """``1 call``, ``2,000 calls``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def label(value: str | None) -> str:
    """A group value for display; events with no value show as ``(none)``."""
    return "(none)" if value is None else value
