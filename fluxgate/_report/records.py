"""The records a report returns: frozen attrs classes, and the statuses they count.

Money is an exact ``Decimal`` in every record. Calls of a model fluxgate has no
price for are counted apart (``unpriced_calls``), never folded in as $0.
``summary``, ``economics`` and ``query`` fill these records; ``output`` and
``html`` show them.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Final

import attrs

__all__ = [
    "FAILED_STATUSES",
    "REFUSAL_STATUSES",
    "CacheEfficiency",
    "Economics",
    "Filters",
    "ModelCache",
    "Overview",
    "Report",
    "Row",
    "Spend",
    "Stats",
    "UserEconomics",
    "Waste",
]

#: Statuses that count as failed calls (the error rate's numerator).
FAILED_STATUSES: Final = ("ERROR", "MALFORMED_REQUEST", "BLOCKED")
#: Statuses where the model declined to answer.
REFUSAL_STATUSES: Final = ("CONTENT_FILTER", "RECITATION")

_ZERO: Final = Decimal(0)


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
        return " AND ".join(clauses) or "1 = 1", params


@attrs.frozen(kw_only=True)
class Stats:
    """Calls, cost, tokens and latency of one group (``key``), or of every event (``key == ()``).

    ``cost_usd`` sums priced calls only; ``unpriced_calls`` were made to models
    with no price and are not in it. ``aborted_calls`` are streams that ended
    before the API finished them (closed, cancelled, abandoned); their usage,
    and so their cost, is an estimate. ``estimated_calls`` counts every priced
    call whose cost is not exact (``cost_status`` other than ``priced``).
    ``reasoning_tokens`` are already inside ``output_tokens``. Latency
    percentiles are nearest-rank over calls that recorded a latency, ``None``
    when none did or when not asked for.
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
    aborted_calls: int = 0
    estimated_calls: int = 0
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

    @property
    def exact_error_rate(self) -> Decimal:
        """:attr:`error_rate` as an exact ``Decimal`` (to 28 digits), for JSON and CSV."""
        return Decimal(self.failed_calls) / Decimal(self.calls) if self.calls else _ZERO


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
    """Spend that bought no usable answer, against the spend of every call in the slice.

    The kinds do not overlap: a failed call is ``failed`` even if it was a
    stream that broke off; ``aborted`` holds the other streams that ended
    before the API finished them (closed or abandoned by the application).
    """

    max_tokens: Spend
    refusals: Spend
    failed: Spend
    total: Spend
    aborted: Spend = attrs.field(factory=Spend)

    @property
    def wasted_usd(self) -> Decimal:
        """Cut-off, refused, aborted and failed calls together."""
        return self.max_tokens.cost_usd + self.refusals.cost_usd + self.aborted.cost_usd + self.failed.cost_usd

    @property
    def exact_share(self) -> Decimal:
        """``wasted_usd`` over all spend, exactly (to 28 digits); 0 when nothing was spent."""
        return self.wasted_usd / self.total.cost_usd if self.total.cost_usd else _ZERO

    @property
    def share(self) -> float:
        """``wasted_usd`` over all spend; 0.0 when nothing was spent."""
        return float(self.exact_share)


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
        return float(self.exact_hit_rate)

    @property
    def exact_hit_rate(self) -> Decimal:
        """:attr:`hit_rate` as an exact ``Decimal`` (to 28 digits), for JSON."""
        prompt = self.input_tokens + self.read_tokens + self.write_tokens
        return Decimal(self.read_tokens) / Decimal(prompt) if prompt else _ZERO


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


def _utc(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


@attrs.frozen(kw_only=True)
class Row:
    """One group of :func:`fluxgate.report.query`, with the report's columns, or the totals of all groups.

    Only the group fields named in ``by`` are set; the others stay ``None``
    (as they do for events with no value for that group). ``day`` is a UTC
    date; ``first`` and ``last`` are UTC datetimes. Money is an exact ``Decimal``.
    """

    feature: str | None = None
    user: str | None = None
    step: str | None = None
    model: str | None = None
    session: str | None = None
    conversation: str | None = None
    day: date | None = None
    status: str | None = None
    calls: int
    cost_usd: Decimal
    unpriced_calls: int
    aborted_calls: int
    estimated_calls: int
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    failed_calls: int
    error_rate: float
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    first: datetime | None
    last: datetime | None

    @classmethod
    def from_stats(cls, stats: Stats, group_by: tuple[str, ...]) -> Row:
        """The row of one ``Stats`` whose key is grouped by ``group_by`` (``()`` for the totals)."""
        groups: dict[str, object] = {}
        for name, value in zip(group_by, stats.key, strict=False):
            groups[name] = date.fromisoformat(value) if name == "day" and value is not None else value
        return cls(
            **groups,  # type: ignore[arg-type]
            calls=stats.calls,
            cost_usd=stats.cost_usd,
            unpriced_calls=stats.unpriced_calls,
            aborted_calls=stats.aborted_calls,
            estimated_calls=stats.estimated_calls,
            input_tokens=stats.input_tokens,
            output_tokens=stats.output_tokens,
            reasoning_tokens=stats.reasoning_tokens,
            cache_read_tokens=stats.cache_read_tokens,
            cache_write_tokens=stats.cache_write_tokens,
            failed_calls=stats.failed_calls,
            error_rate=stats.error_rate,
            p50_latency_ms=stats.p50_latency_ms,
            p95_latency_ms=stats.p95_latency_ms,
            first=_utc(stats.first_ms),
            last=_utc(stats.last_ms),
        )
