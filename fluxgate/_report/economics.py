"""Waste, cache efficiency and unit economics: what the spend bought, saved and earned.

Each is one aggregate query over the store (see ``store``), SQLite or
PostgreSQL; the sums are priced and compared in ``Decimal`` afterwards.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

import attrs

from .._ids import now_ms
from .._pricing import PriceTable
from .records import (
    _ZERO,
    FAILED_STATUSES,
    REFUSAL_STATUSES,
    CacheEfficiency,
    Economics,
    Filters,
    ModelCache,
    Spend,
    UserEconomics,
    Waste,
)
from .store import COST_SUMS, Reader, ReportError, _int, _text, _usd, as_reader

__all__ = ["cache_efficiency", "economics", "waste"]

_DAY_MS: Final = 86_400_000
_MTOK: Final = Decimal(1_000_000)


# --- waste ------------------------------------------------------------------------


def waste(conn: Reader | sqlite3.Connection, *, filters: Filters = Filters()) -> Waste:  # noqa: B008 -- frozen
    """Spend on answers cut off at ``max_tokens``, on refusals, on aborted streams and on failed calls.

    A refusal is a ``CONTENT_FILTER`` or ``RECITATION`` status (``stop_reason
    == "refusal"``); a failed call has one of :data:`FAILED_STATUSES`; an
    aborted stream ended before the API finished it, and did not fail.
    """
    reader = as_reader(conn)
    d = reader.dialect
    where, params = filters.sql()
    kinds: dict[str, list[Spend]] = {}
    sql = f"SELECT {d.groups['status']} AS s, {d.aborted} AS a, COUNT(*), {COST_SUMS} FROM {d.table} WHERE {where}"
    for status, aborted, calls, micro, rest, unpriced in reader.rows(f"{sql} GROUP BY s, a", params):
        spend = Spend(calls=_int(calls), cost_usd=_usd(_int(micro), _int(rest)), unpriced_calls=_int(unpriced))
        kinds.setdefault("total", []).append(spend)
        if status in FAILED_STATUSES:
            kinds.setdefault("failed", []).append(spend)
        elif aborted:
            kinds.setdefault("aborted", []).append(spend)
        elif status == "MAX_TOKENS":
            kinds.setdefault("max_tokens", []).append(spend)
        elif status in REFUSAL_STATUSES:
            kinds.setdefault("refusals", []).append(spend)
    spends = {
        kind: Spend(
            calls=sum(s.calls for s in kinds.get(kind, ())),
            cost_usd=sum((s.cost_usd for s in kinds.get(kind, ())), _ZERO),
            unpriced_calls=sum(s.unpriced_calls for s in kinds.get(kind, ())),
        )
        for kind in ("max_tokens", "refusals", "aborted", "failed", "total")
    }
    return Waste(**spends)


# --- cache efficiency -------------------------------------------------------------


def cache_efficiency(
    conn: Reader | sqlite3.Connection,
    *,
    filters: Filters = Filters(),  # noqa: B008 -- Filters is frozen
    prices: PriceTable | None = None,
) -> CacheEfficiency:
    """What cache reads saved against the full input price, and what cache writes cost.

    Token sums are grouped per model in SQL and priced at the model's standard
    rates in effect at its latest call (half price for batch calls). Long-context,
    fast-mode and regional surcharges are left out, so the figures are those
    of the base rates. Models with no price are counted apart.
    """
    table = prices or PriceTable.default()
    reader = as_reader(conn)
    where, params = filters.sql()
    batch = "(COALESCE(usage_service_tier, '') = 'batch' OR batch_id IS NOT NULL)"
    sql = f"""
        SELECT model, {batch} AS batch, COUNT(*), SUM(input_tokens), SUM(cache_read_input_tokens),
               SUM(cache_creation_input_tokens), SUM(COALESCE(cache_creation_5m_input_tokens, 0)),
               SUM(COALESCE(cache_creation_1h_input_tokens, 0)), MAX(created_at)
        FROM {reader.dialect.table} WHERE {where} GROUP BY model, batch
    """
    merged: dict[str | None, ModelCache] = {}
    for model, is_batch, calls, inp, read, write, w5m, w1h, last in reader.rows(sql, params):
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
    conn: Reader | sqlite3.Connection,
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
    until = now_ms() if until_ms is None else until_ms
    since = until - days * _DAY_MS
    where, params = Filters(since_ms=since, until_ms=until, users=tuple(users)).sql()
    reader = as_reader(conn)
    if reader.dialect.name == "sqlite":
        # One pass over the window. SQLite returns the bare column ``user`` from the
        # row holding the MAX(): the latest call that carried a revenue.
        sql = f"""
            SELECT +user_id AS u, COUNT(*), {COST_SUMS}, user,
                   MAX(CASE WHEN json_extract(user, '$.monthly_revenue') IS NOT NULL THEN created_at END)
            FROM {reader.dialect.table} WHERE {where} AND user_id IS NOT NULL
            GROUP BY u
        """
    else:
        # PostgreSQL has no bare columns: the latest call that carried a revenue
        # (else the latest call) is picked with DISTINCT ON, and joined to the sums.
        table = reader.dialect.table
        sql = f"""
            SELECT s.*, p.profile, NULL FROM
                (SELECT user_id AS u, COUNT(*), {COST_SUMS} FROM {table}
                 WHERE {where} AND user_id IS NOT NULL GROUP BY user_id) AS s
            JOIN
                (SELECT DISTINCT ON (user_id) user_id AS u, "user"::text AS profile FROM {table}
                 WHERE {where} AND user_id IS NOT NULL
                 ORDER BY user_id, ("user" ->> 'monthly_revenue' IS NOT NULL) DESC, created_at DESC) AS p
            USING (u)
        """
        params = [*params, *params]
    out: list[UserEconomics] = []
    for user_id, calls, micro, rest, unpriced, blob, _ in reader.rows(sql, params):
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
