"""The price table beside another one: every figure on which the two disagree.

``compare()`` takes the other table as plain data (model id -> component ->
USD per million tokens), so any source fits and the logic is tested without
one installed. ``genai_prices_table()`` turns the snapshot that the
genai-prices package ships into that shape, offline (it never starts the
package's updater, so nothing is fetched). ``fluxgate prices --check`` prints
the result, so a price change is noticed before the invoice.

Component names are ours: ``input``, ``cache_write_5m``, ``cache_write_1h``,
``cache_read``, ``output``; ``long_context.threshold`` and
``long_context.<component>`` for a prompt-length tier; ``batch.<component>``
(and ``batch.long_context.<component>``) for Message Batches prices;
``fast.<component>`` for fast mode; ``web_search_per_1000``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

from .rows import COMPONENTS, PriceRow, Rates
from .table import PriceTable

__all__ = ["Disagreement", "OtherTable", "compare", "genai_prices_table"]

#: One model's figures: component name -> USD per million tokens (``None``: they give none).
Figures = Mapping[str, Decimal | int | str | None]

_HALF: Final = Decimal("0.5")
#: genai-prices price keys -> our component names.
_GENAI_KEYS: Final = {
    "input_mtok": "input",
    "cache_write_mtok": "cache_write_5m",
    "cache_write_1h_mtok": "cache_write_1h",
    "cache_read_mtok": "cache_read",
    "output_mtok": "output",
}
_GENAI_VARIANTS: Final = {(("processing", "batch"),): "batch.", (("speed", "fast"),): "fast."}


@attrs.frozen(kw_only=True)
class Disagreement:
    """One figure the two tables give differently; ``None`` is "no price"."""

    model: str
    component: str
    ours: Decimal | None
    ours_source: str
    theirs: Decimal | None
    theirs_source: str

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready, figures as decimal strings."""
        return {
            "model": self.model,
            "component": self.component,
            "ours": None if self.ours is None else str(self.ours),
            "ours_source": self.ours_source,
            "theirs": None if self.theirs is None else str(self.theirs),
            "theirs_source": self.theirs_source,
        }


@attrs.frozen(kw_only=True)
class OtherTable:
    """Another price table as plain data: who it is, its figures, and where each model's came from."""

    name: str
    prices: Mapping[str, Figures]
    sources: Mapping[str, str] = attrs.field(factory=dict)


def _rates(prefix: str, rates: Rates, source: str, out: dict[str, tuple[Decimal, str]], factor: Decimal) -> None:
    for name, rate in zip(COMPONENTS, rates.as_tuple(), strict=True):
        out[prefix + name] = (rate * factor if factor != 1 else rate, source)


def _our_figures(table: PriceTable, row: PriceRow) -> dict[str, tuple[Decimal, str]]:
    """Every figure our row prices with, and the source of each."""
    out: dict[str, tuple[Decimal, str]] = {}
    if row.rates is None:
        return out
    one = Decimal(1)
    _rates("", row.rates, row.source, out, one)
    batch_source = f"{row.source}; batch: 50 % of every token price"
    _rates("batch.", row.rates, batch_source, out, _HALF)
    if row.long_context is not None:
        tier = row.long_context
        source = tier.source or row.source
        out["long_context.threshold"] = out["batch.long_context.threshold"] = (Decimal(tier.threshold), source)
        _rates("long_context.", tier.rates, source, out, one)
        _rates("batch.long_context.", tier.rates, f"{source}; batch: 50 %", out, _HALF)
    if row.fast is not None:
        _rates("fast.", row.fast, row.fast_source or row.source, out, one)
    out["web_search_per_1000"] = (table.web_search_per_1000, "P1, P3")
    return out


def _figure(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        figure = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return figure if figure.is_finite() else None


def compare(
    table: PriceTable,
    theirs: OtherTable | Mapping[str, Figures],
    *,
    at_ms: int | None = None,
) -> list[Disagreement]:
    """The figures ``theirs`` gives differently from ``table`` for the rows in effect at ``at_ms``.

    ``theirs`` maps a model id (any form the resolver knows) to component
    names and figures in USD per million tokens. A figure only they give (a
    model or a fast price we have none for) is a disagreement; a figure they
    leave out is not. Models come out in their order, components in theirs.

    >>> from fluxgate._pricing import default_table
    >>> [d.component for d in compare(default_table(), {"claude-sonnet-4-6": {"input": "3", "output": "16"}})]
    ['output']
    """
    other = theirs if isinstance(theirs, OtherTable) else OtherTable(name="other table", prices=theirs)
    found: list[Disagreement] = []
    for model, figures in other.prices.items():
        their_source = other.sources.get(model, other.name)
        row = table.row(model, at_ms=at_ms)
        key = table.resolve(model).key or model
        if row is None:
            ours: dict[str, tuple[Decimal, str]] = {}
            missing = f"no row in {table.version}"
        else:
            ours = _our_figures(table, row)
            missing = "no official price" if row.rates is None else "not in the row"
            missing = missing if row.source in ("", "-") else f"{row.source}; {missing}"
        for component, raw in figures.items():
            figure = _figure(raw)
            mine, source = ours.get(component, (None, missing))
            if figure is None or figure == mine:
                continue
            found.append(
                Disagreement(
                    model=key,
                    component=component,
                    ours=mine,
                    ours_source=source,
                    theirs=figure,
                    theirs_source=their_source,
                )
            )
    return found


# --- genai-prices -------------------------------------------------------------------


def _flatten_genai(price: Any, prefix: str, out: dict[str, Decimal]) -> None:
    """One genai-prices ``ModelPrice`` as our components (a tier becomes ``long_context.*``)."""
    for key, name in _GENAI_KEYS.items():
        value = getattr(price, key, None)
        if isinstance(value, Decimal):
            out.setdefault(prefix + name, value)
        elif value is not None and hasattr(value, "tiers"):  # TieredPrices: base, then the first tier
            out.setdefault(prefix + name, value.base)
            if value.tiers:
                tier = value.tiers[0]
                out.setdefault(f"{prefix}long_context.{name}", tier.price)
                out.setdefault(f"{prefix}long_context.threshold", Decimal(tier.start))
    searches = getattr(price, "web_searches_kcount", None)
    if not prefix and isinstance(searches, Decimal):
        out["web_search_per_1000"] = searches


def genai_prices_table(models: Iterable[str], *, at: datetime) -> OtherTable:
    """The genai-prices package's bundled Anthropic prices for ``models``, as in effect at ``at``.

    A model genai-prices does not know is left out. Batch and fast-mode
    figures come from its price variants active at ``at``.

    Raises:
        ImportError: genai-prices is not installed.
    """
    package = importlib.import_module("genai_prices")
    snapshot = importlib.import_module("genai_prices.data_snapshot").get_snapshot()
    name = f"genai-prices {getattr(package, '__version__', '?')}"
    prices: dict[str, dict[str, Decimal]] = {}
    sources: dict[str, str] = {}
    for model_id in models:
        try:
            provider, model = snapshot.find_provider_model(model_id, None, "anthropic", None)
        except LookupError:
            continue
        figures: dict[str, Decimal] = {}
        _flatten_genai(model.get_prices(at), "", figures)
        for variant in getattr(model, "price_variants", None) or ():
            prefix = _GENAI_VARIANTS.get(tuple(sorted(variant.when.items())))
            constraint = variant.constraint
            if prefix is not None and (constraint is None or constraint.active(at)):
                _flatten_genai(variant.prices, prefix, figures)
        prices[model_id] = figures
        sources[model_id] = f"{name}, {provider.id}/{model.id}"
    return OtherTable(name=name, prices=prices, sources=sources)
