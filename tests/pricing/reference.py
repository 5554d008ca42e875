"""The all-``Decimal`` pricing arithmetic that ``_pricing.bill`` replaced, kept as the tests' reference.

It is the engine's ``price()`` as it was before integer pricing, reduced to
the money (total and breakdown): each component is ``tokens x rate x
modifier / 10**6`` in a 50-digit decimal context, summed as it goes. It reads
the same rows (``PriceTable.row``) and the same token counts, so a difference
can only come from the arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal

from fluxgate._models import Usage
from fluxgate._pricing.bill import count, raw_totals, tokens
from fluxgate._pricing.rows import COMPONENTS, PriceRow
from fluxgate._pricing.table import PriceTable

CTX = Context(prec=50, rounding=ROUND_HALF_EVEN)
MTOK = Decimal(1_000_000)
HALF = Decimal("0.5")
PLUS_10_PCT = Decimal("1.1")


def _names(prefix: str) -> tuple[str, ...]:
    return tuple(prefix + c for c in COMPONENTS)


def _charge(
    row: PriceRow,
    counts: Sequence[int],
    names: Sequence[str],
    parts: dict[str, Decimal],
    *,
    batch: bool,
    fast: bool,
    geo_us: bool,
    regional: bool,
) -> None:
    assert row.rates is not None
    rates = row.rates.as_tuple()
    if row.long_context is not None and sum(counts[:4]) > row.long_context.threshold:
        rates = row.long_context.rates.as_tuple()
    if fast and row.fast is not None:
        rates = row.fast.as_tuple()
    factor = None
    if batch:
        factor = HALF
    if geo_us and row.data_residency:
        factor = PLUS_10_PCT if factor is None else CTX.multiply(factor, PLUS_10_PCT)
    if regional and row.regional_premium:
        factor = PLUS_10_PCT if factor is None else CTX.multiply(factor, PLUS_10_PCT)
    for i, n in enumerate(counts):
        if not n:
            continue
        value = CTX.multiply(n, rates[i])
        if factor is not None:
            value = CTX.multiply(value, factor)
        value = CTX.divide(value, MTOK)
        name = names[i]
        parts[name] = CTX.add(parts[name], value) if name in parts else value


def reference_price(
    table: PriceTable,
    model: str,
    usage: Usage,
    *,
    at_ms: int | None = None,
    batch: bool = False,
    regional: bool | None = None,
) -> tuple[Decimal, dict[str, Decimal]] | None:
    """``(total_usd, breakdown)`` as the Decimal engine computed them; ``None`` when unpriced."""
    resolution = table.resolve(model)
    if resolution.key is None:
        return None
    row = table.row(model, at_ms=at_ms)
    if row is None or row.rates is None:
        return None
    mods = {
        "batch": batch or usage.service_tier == "batch",
        "fast": usage.speed == "fast",
        "geo_us": isinstance(usage.inference_geo, str) and usage.inference_geo.lower() == "us",
        "regional": resolution.regional if regional is None else regional,
    }
    parts: dict[str, Decimal] = {}
    main, _ = tokens(usage)
    messages = [it for it in usage.iterations if it.type == "message"]
    others = [it for it in usage.iterations if it.type not in ("message", "compaction")]
    for item in usage.iterations:
        if item.type == "compaction":
            _charge(row, tokens(item)[0], _names("iteration_compaction_"), parts, **mods)
    for item in others:
        other = table.row(item.model or row.key, at_ms=at_ms)
        if other is not None and other.rates is not None:
            _charge(other, tokens(item)[0], _names(f"iteration_{item.type}_"), parts, **{**mods, "fast": False})
    if others:
        included = [sum(col) for col in zip(*(raw_totals(i) for i in (*messages, *others)), strict=True)]
        if included == list(raw_totals(usage)):
            main = [sum(col) for col in zip(*(tokens(i)[0] for i in messages), strict=True)] if messages else [0] * 5
    _charge(row, main, COMPONENTS, parts, **mods)
    searches = count(usage.web_search_requests)
    if searches > 0:
        parts["web_search"] = CTX.multiply(searches, CTX.divide(table.web_search_per_1000, Decimal(1000)))
    total = Decimal(0)
    for value in parts.values():
        total = CTX.add(total, value)
    return total, parts
