"""The price table, the model-id resolver, and the exact cost of one call.

Prices are data (``prices.json``, USD per million tokens, as decimal
strings) that ``rows`` reads and validates. Every cost is exact integer
arithmetic (``bill``: pico-dollar rates, modifiers as fractions over 1000),
never rounded, so the sum of a million events still equals the cost of their
summed usage; it becomes ``Decimal`` only in the returned ``Cost``.

``price()`` may run on the user's thread: resolutions are cached per model id
and rows are compiled to integers when the table is built. It never raises for
any model id or usage; an unknown model is ``unpriced_model`` with
``total_usd=None`` and one warning per model id on the ``fluxgate`` logger.
The shipped table is read on first use, never at import. See
``docs/pricing.md`` for every rule and the choices made where the pricing
reference is silent.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

import attrs

from .._errors import ConfigurationError
from .._models import Cost, Usage, UsageFacts
from .bill import (
    ESTIMATED,
    PARTIAL,
    PRICED,
    STATUSES,
    Bill,
    ExactCost,
    Modifiers,
    PlainText,
    Plan,
    charge,
    charge_fee,
    count,
    plain_figures,
    plain_text,
    raw_totals,
    tokens,
)
from .rows import (
    _CTX,
    COMPONENTS,
    LongContext,
    PriceRow,
    Rates,
    _digest,
    _parse_row,
    _rate,
    _read_default_prices,
    _read_prices_file,
)

__all__ = ["COMPONENTS", "LongContext", "PriceRow", "PriceTable", "Rates", "Resolution", "default_table"]

#: The modifiers of a call that has none (no batch, fast mode, US-only inference or regional endpoint).
_NO_MODIFIERS = Modifiers(batch=False, fast=False, geo_us=False, regional=False)

logger = logging.getLogger("fluxgate")

_MAX_CACHED_IDS: Final = 4096
_UNSEEN: Final[Any] = object()
#: What the API says of a call served anywhere (the short path tests these before lowering the text).
_NOT_US: Final = frozenset(("not_available", "global"))
_NO_PARTS: Final[Mapping[str, tuple[int, int]]] = MappingProxyType({})
_COMPACTION_NAMES: Final = tuple(f"iteration_compaction_{c}" for c in COMPONENTS)

_REGIONAL_PREFIXES: Final = frozenset({"us", "eu", "jp", "apac", "au", "us-gov"})
_BEDROCK_RE: Final = re.compile(r"^(?:(global|us-gov|us|eu|jp|apac|au)\.)?anthropic\.(.+)$")
_BEDROCK_VERSION_RE: Final = re.compile(r"-v\d+(?::\d+)?(?::\d+k)?$")
_BRACKET_RE: Final = re.compile(r"\[[^\]]*\]$")
_DATED_RE: Final = re.compile(r"^(.+)-(\d{8})$")


@attrs.frozen(kw_only=True)
class Resolution:
    """How a model id maps onto a price row.

    ``key`` is the canonical first-party id of the row (``None`` if unknown);
    ``regional`` is true for Bedrock regional inference profiles (``us.``,
    ``eu.``...), which cost 10 % more on 4.5-and-later models.
    """

    model_id: str
    key: str | None
    platform: str = "anthropic"
    regional: bool = False
    reason: str = ""


def _names_with(prefix: str) -> tuple[str, ...]:
    return tuple(prefix + c for c in COMPONENTS)


# --- the table -------------------------------------------------------------------


class PriceTable:
    """Claude prices as data, and the cost of a call.

    Args:
        version: The table's version; every event records it.
        models: Canonical model id -> row fields (the ``models`` object of
            ``prices.json``).
        web_search_per_1000: USD per 1,000 web searches.
        sources: Source key -> description, for ``fluxgate prices``.

    Raises:
        ConfigurationError: A row is invalid; the message names the model and field.

    >>> from fluxgate._models import Usage
    >>> PriceTable.default().price("claude-sonnet-4-6", Usage(input_tokens=1000, output_tokens=100)).total_usd
    Decimal('0.0045')
    """

    def __init__(
        self,
        *,
        version: str,
        models: Mapping[str, Mapping[str, Any]],
        web_search_per_1000: Decimal | str | int = 10,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.version = version
        self.web_search_per_1000 = _rate("prices", "web_search_per_1000", web_search_per_1000)
        self.sources: Mapping[str, str] = dict(sources or {})
        self._web_search_per_request = _CTX.divide(self.web_search_per_1000, Decimal(1000))
        self._raw: dict[str, Mapping[str, Any]] = {}
        self._base_version = version
        self._overrides: dict[str, Mapping[str, Any]] = {}
        self._plans: dict[str, tuple[Plan, ...]] = {}
        #: Row key -> when each of its periods but the first starts (ascending; see ``_in_effect``).
        self._starts: dict[str, tuple[int, ...]] = {}
        self._index: dict[str, tuple[str, bool]] = {}  # id or alias -> (key, is_alias)
        self._vertex: dict[str, str] = {}  # Vertex id, and its model name without '@...' -> key
        for key, raw in models.items():
            self._add(key.strip().lower(), raw)
        self._cache: dict[str, Resolution] = {}
        #: Model id -> its row's plans and the start of each but the first (ascending), for the ids
        #: ``plain_text`` may price on its short path (else None).
        self._usual: dict[str | None, tuple[tuple[Plan, ...], tuple[int, ...]] | None] = {}
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    def _add(self, key: str, raw: Mapping[str, Any], label: str | None = None) -> None:
        rows = _parse_row(key, raw, label)
        self._raw[key] = raw
        plans = self._plans[key] = tuple(Plan.compile(r) for r in rows)
        self._starts[key] = _starts(plans)
        for alias in rows[0].aliases:
            self._index.setdefault(alias, (key, True))
        self._index[key] = (key, False)
        if rows[0].vertex:
            self._vertex[rows[0].vertex] = key
            self._vertex.setdefault(rows[0].vertex.partition("@")[0], key)

    @classmethod
    def default(cls) -> PriceTable:
        """The shipped table (``fluxgate/_pricing/prices.json``), loaded once and cached."""
        return _load_default()

    def with_overrides(self, prices: Mapping[str, Mapping[str, Any]] | str | os.PathLike[str]) -> PriceTable:
        """A copy of this table with rows added or replaced.

        ``prices`` maps a model id to row fields (as in ``prices.json``:
        ``input`` and ``output`` are required; cache rates default to 1.25x,
        2x and 0.1x input), or is a path to a JSON file of that shape. An id
        that resolves to an existing row replaces that row entirely (keeping
        its name, aliases and Vertex id unless given); any other id adds a row.

        Raises:
            ConfigurationError: A row is invalid (negative, non-numeric,
                missing or unknown field); the message names the model and field.

        >>> t = PriceTable.default().with_overrides({"my-model": {"input": "1", "output": "2"}})
        >>> t.resolve("my-model").key, t.version.startswith(PriceTable.default().version + "+overrides.")
        ('my-model', True)
        """
        if isinstance(prices, (str, os.PathLike)):
            prices = _read_prices_file(prices)
        elif not isinstance(prices, Mapping):
            kind = type(prices).__name__
            msg = f"'prices' must be a mapping of model id -> row fields or a JSON file path (got {kind})."
            raise ConfigurationError(msg)
        table = PriceTable(
            version=self._base_version, models={}, web_search_per_1000=self.web_search_per_1000, sources=self.sources
        )
        for key, raw in self._raw.items():
            table._add(key, raw)
        overrides = dict(self._overrides)
        for model_id, raw in prices.items():
            if not isinstance(model_id, str) or not model_id.strip():
                msg = f"'prices' keys must be non-empty model ids (got {model_id!r})."
                raise ConfigurationError(msg)
            key = self.resolve(model_id).key or model_id.strip().lower()
            row = dict(raw) if isinstance(raw, Mapping) else raw
            if isinstance(row, dict) and key in self._raw:
                for inherited in ("name", "aliases", "vertex"):
                    if inherited not in row and inherited in self._raw[key]:
                        row[inherited] = self._raw[key][inherited]
            table._add(key, row, label=model_id)
            overrides[key] = row
        table._overrides = overrides
        table.version = f"{self._base_version}+overrides.{_digest(overrides)}" if overrides else self._base_version
        return table

    def rows(self) -> Sequence[PriceRow]:
        """Every row, effective-dated periods in order."""
        return tuple(plan.row for plans in self._plans.values() for plan in plans)

    def row(self, model: str, *, at_ms: int | None = None) -> PriceRow | None:
        """The row ``model`` resolves to, in effect at ``at_ms`` (default now)."""
        key = self.resolve(model).key
        return None if key is None else self._plan(key, at_ms).row

    def _plan(self, key: str, at_ms: int | None) -> Plan:
        plans = self._plans[key]
        return plans[0] if len(plans) == 1 else _in_effect(plans, self._starts[key], at_ms)

    # --- resolution ---------------------------------------------------------------

    def resolve(self, model: str) -> Resolution:
        """Map any id form (first-party, alias, Bedrock, Vertex, ``[1m]``) to its row; never raises."""
        if not isinstance(model, str):
            return Resolution(model_id=repr(model), key=None, reason="the model id is not a string")
        found = self._cache.get(model)
        if found is None:
            found = self._resolve(model)
            if len(self._cache) >= _MAX_CACHED_IDS:
                self._cache.clear()
            self._cache[model] = found
        return found

    def _resolve(self, model: str) -> Resolution:
        steps: list[str] = []
        name = model.strip().lower()
        platform, regional = "anthropic", False
        if name in self._index:  # a row's own id (also custom override ids such as "org/model")
            return self._found(model, name, steps, platform, regional)
        if "/" in name:  # LiteLLM "bedrock/...", Bedrock ARNs ".../anthropic.claude-..."
            head, _, name = name.rpartition("/")
            steps.append(f"dropped prefix '{head}/'")
        bracket = _BRACKET_RE.search(name)
        if bracket:
            name = name[: bracket.start()]
            steps.append(f"dropped suffix '{bracket.group()}'")
        bedrock = _BEDROCK_RE.match(name)
        if bedrock:
            platform, (region, name) = "bedrock", bedrock.groups()
            regional = region in _REGIONAL_PREFIXES
            stripped = [f"{'region' if regional else 'global'} prefix '{region}.'"] if region else []
            stripped.append("'anthropic.'")
            version = _BEDROCK_VERSION_RE.search(name)
            if version and name not in self._index:
                name = name[: version.start()]
                stripped.append(f"suffix '{version.group()}'")
            steps.append(f"stripped Bedrock {', '.join(stripped)}")
        elif "@" in name:
            platform = "vertex"
            base, _, tag = name.partition("@")
            vertex = self._vertex.get(name) or (self._vertex.get(base) if tag == "default" else None)
            if vertex is not None:  # ids that are not the first-party id with '@' (claude-3-5-sonnet-v2@...)
                steps.append(f"Vertex id '{name}' -> {vertex}")
                return Resolution(model_id=model, key=vertex, platform=platform, reason="; ".join(steps))
            if tag == "default":
                name = base
                steps.append("dropped Vertex '@default'")
            elif re.fullmatch(r"\d{8}", tag):
                name = f"{base}-{tag}"
                steps.append(f"Vertex '@{tag}' -> '-{tag}'")
        if name in self._index:
            return self._found(model, name, steps, platform, regional)
        if platform == "anthropic" and name in self._vertex:  # Vertex's undated model names
            steps.append(f"Vertex model name '{name}' -> {self._vertex[name]}")
            return Resolution(model_id=model, key=self._vertex[name], platform="vertex", reason="; ".join(steps))
        dated = _DATED_RE.match(name)
        base_hit = self._index.get(dated.group(1)) if dated else None
        # Dated 4.6+ forms (LiteLLM keys) map to the dateless canonical id; a
        # pre-4.6 alias with an unknown date is a snapshot we have no row for.
        if dated is None or base_hit is None or _DATED_RE.match(base_hit[0]):
            steps.append(f"no price row for '{name}'")
            reason = "; ".join(steps)
            return Resolution(model_id=model, key=None, platform=platform, regional=regional, reason=reason)
        steps.append(f"dated form of dateless id -> {base_hit[0]}")
        return Resolution(
            model_id=model, key=base_hit[0], platform=platform, regional=regional, reason="; ".join(steps)
        )

    def _found(self, model: str, name: str, steps: list[str], platform: str, regional: bool) -> Resolution:
        key, is_alias = self._index[name]
        kind = "dated id" if _DATED_RE.match(key) else "first-party id"
        steps.append(f"alias '{name}' -> {key}" if is_alias else f"{kind} -> {key}")
        return Resolution(model_id=model, key=key, platform=platform, regional=regional, reason="; ".join(steps))

    # --- pricing ------------------------------------------------------------------

    def _warn_once(self, model_id: str, message: str, *args: object) -> None:
        with self._lock:
            if model_id in self._warned:
                return
            if len(self._warned) >= _MAX_CACHED_IDS:  # bounded, like the resolution cache
                self._warned.clear()
            self._warned.add(model_id)
        logger.warning(message, *args)

    def _unpriced(self, model: object, key: str | None, why: str) -> ExactCost:
        self._warn_once(
            repr(model),
            "fluxgate has no price for model %r (%s); its calls are recorded with cost_usd=None. "
            "Add a row with init(prices={...}) to price them.",
            model,
            why,
        )
        return ExactCost(None, _NO_PARTS, "unpriced_model", self.version, key)

    def price(
        self,
        model: str | None,
        usage: Usage,
        *,
        at_ms: int | None = None,
        batch: bool = False,
        regional: bool | None = None,
    ) -> Cost:
        """The exact cost of one call, in ``Decimal``; never raises.

        Takes the arguments of :meth:`price_exact`, whose figures it turns into
        ``Decimal`` (``Cost.total_usd`` and ``Cost.breakdown``).

        >>> from fluxgate._models import Usage
        >>> default_table().price(None, Usage()).status
        'unpriced_model'
        """
        return self.price_exact(model, usage, at_ms=at_ms, batch=batch, regional=regional).cost()

    def price_exact(
        self,
        model: str | None,
        usage: Usage | UsageFacts,
        *,
        at_ms: int | None = None,
        batch: bool = False,
        regional: bool | None = None,
    ) -> ExactCost:
        """The exact cost of one call, in integers (:class:`ExactCost`); never raises.

        Args:
            model: The model id as sent or returned, in any form ``resolve`` knows.
            usage: The call's usage (a :class:`Usage`, or the flusher's :class:`UsageFacts`).
            at_ms: When the call was made (Unix ms), to pick effective-dated rows; default now.
            batch: The call went through the Message Batches API (also implied by
                ``usage.service_tier == "batch"``): 50 % off every token component.
            regional: The call used a regional endpoint (+10 % on 4.5+ models);
                ``None`` takes it from the id (Bedrock ``us.``, ``eu.``... prefixes).
        """
        call = self._read(model, usage, at_ms, batch, regional)
        if isinstance(call, ExactCost):
            return call
        plan, key, rank, mods, main, inexact, iterations, searches = call
        if mods == _NO_MODIFIERS and not (inexact or iterations or searches):
            plain = plain_figures(plan, main)  # the usual call, in small integers (same figures)
            if plain is not None:
                total, breakdown, plain_rank = plain
                return ExactCost(total, breakdown, STATUSES[max(rank, plain_rank)], self.version, key)
        bill = Bill()
        bill.flag(rank)
        if inexact:
            bill.flag(PARTIAL)
        if not isinstance(iterations, (list, tuple)):
            iterations = ()
            bill.flag(PARTIAL)
        if iterations:
            main = self._charge_iterations(
                plan=plan, iterations=iterations, usage=usage, main=main, mods=mods, at_ms=at_ms, bill=bill
            )
        charge(plan, main, mods, COMPONENTS, bill)
        if searches > 0:
            charge_fee(bill, "web_search", searches, self._web_search_per_request)
        elif searches < 0:
            bill.flag(PARTIAL)
        if bill.left_out and not bill.parts:
            # Every token went to models without a price (warned above): a total of 0 would say they were free.
            return ExactCost(None, _NO_PARTS, "unpriced_model", self.version, key)
        total, breakdown = bill.figures()
        return ExactCost(total, breakdown, STATUSES[bill.rank], self.version, key)

    def plain_text(
        self,
        model: str | None,
        usage: Usage | UsageFacts,
        at_ms: int | None = None,
        batch: bool = False,
        regional: bool | None = None,
    ) -> PlainText | None:
        """The usual call's cost as a store writes it, without its figures; None for any other call.

        Takes the arguments of :meth:`price_exact` and returns (the total as
        text, the components used, their texts, the total in pico-dollars, the
        cost status): what ``figure_text`` and ``figure_pico`` give of
        :meth:`price_exact`'s figures. None when the call is not the usual one
        (a modifier, iterations, a fee, an inexact count, an unpriced model)
        or its figures are not whole pico-dollars: ``price_exact`` prices it.

        The options may be given by position: the flusher does, once per
        event (three keywords cost a call about 300 instructions).

        Given the flusher's ``UsageFacts`` it first tries a short path that
        states ``_read``'s test of the usual call again, on the tuple's
        fields; the tests give every usage both ways and require the same answer.
        """
        if not batch and not regional and type(usage) is UsageFacts:
            # The flusher's usual call, read straight from its facts: a model id
            # with one standard-priced period, no modifier, fee or iteration, and
            # exact counts (every other call takes _read's way, below).
            periods = self._usual.get(model, _UNSEEN)
            if periods is _UNSEEN:
                periods = self._usual_periods(model)
            plan = None
            if periods is not None:
                plans, starts = periods
                if not starts:
                    plan = plans[0]
                elif type(at_ms) is int:  # _in_effect's bisect, without its call (what a call's facts give)
                    plan = plans[bisect_right(starts, at_ms)]
                else:
                    plan = _in_effect(plans, starts, at_ms)
            inp, out, _, written, w5, w1, read, searches, _, tier, speed, geo, iterations = usage
            if w5 is None and w1 is None and not written:
                w5 = w1 = 0  # no cache write, and no split of none
            if (
                plan is not None
                and plan.standard is not None
                and (tier is None or tier == "standard")
                and speed != "fast"
                and (geo is None or geo in _NOT_US or geo.lower() != "us")
                and not searches
                and not iterations
                and w5 is not None
                and w1 is not None
                and 0 <= written <= w5 + w1
                and inp >= 0  # each compared: min() of the five is a call, 400 instructions
                and out >= 0
                and read >= 0
                and w5 >= 0
                and w1 >= 0
            ):
                text = plan.text  # bill.plain_text's one line, without its call
                return None if text is None else text.run(inp, w5, w1, read, out, PRICED)
        call = self._read(model, usage, at_ms, batch, regional)
        if isinstance(call, ExactCost):
            return None
        plan, _, rank, mods, main, inexact, iterations, searches = call
        if mods != _NO_MODIFIERS or inexact or iterations or searches:
            return None
        inp, w5, w1, read, out = main
        return plain_text(plan, inp, w5, w1, read, out, rank)

    def _usual_periods(self, model: str | None) -> tuple[tuple[Plan, ...], tuple[int, ...]] | None:
        """The plans ``plain_text`` may price ``model`` by on its short path and when each but the first
        starts, or None (and remember it)."""
        resolution = None if model is None else self.resolve(model)
        usual = None
        if resolution is not None and resolution.key is not None and not resolution.regional:
            usual = self._plans[resolution.key], self._starts[resolution.key]
        if len(self._usual) >= _MAX_CACHED_IDS:
            self._usual.clear()
        self._usual[model] = usual
        return usual

    def _read(
        self, model: str | None, usage: Usage | UsageFacts, at_ms: int | None, batch: bool, regional: bool | None
    ) -> ExactCost | tuple[Plan, str, int, Modifiers, list[int], bool, Any, int]:
        """The facts ``price_exact`` prices a call by, or the cost of a call it cannot price.

        (plan, row key, status rank, modifiers, token counts, whether a count
        was inexact, iterations, web searches).
        """
        if model is None:
            return self._unpriced(None, None, "the call reported no model")
        resolution = self.resolve(model)
        key = resolution.key
        if key is None:
            return self._unpriced(model, None, resolution.reason)
        plan = self._plan(key, at_ms)
        if plan.standard is None:
            return self._unpriced(model, key, f"known model without an official price: {plan.row.note or key}")
        tier = getattr(usage, "service_tier", None)
        rank = ESTIMATED if tier == "priority" else PRICED  # no per-token Priority Tier price exists (ST)
        geo = getattr(usage, "inference_geo", None)
        speed = getattr(usage, "speed", None)
        regional = resolution.regional if regional is None else bool(regional)
        if not batch and (tier is None or tier == "standard") and speed is None and geo is None and not regional:
            mods = _NO_MODIFIERS  # the usual call (the API says "standard" on every response)
        else:  # in field order (batch, fast, geo_us, regional): a class called with keywords makes a dict of them
            mods = Modifiers(
                bool(batch) or tier == "batch", speed == "fast", isinstance(geo, str) and geo.lower() == "us", regional
            )
        main, inexact = tokens(usage)
        iterations = getattr(usage, "iterations", None) or ()
        searches = count(getattr(usage, "web_search_requests", None))
        return plan, key, rank, mods, main, inexact, iterations, searches

    def _charge_iterations(
        self,
        *,
        plan: Plan,
        iterations: Sequence[object],
        usage: object,
        main: list[int],
        mods: Modifiers,
        at_ms: int | None,
        bill: Bill,
    ) -> list[int]:
        """Price beta ``usage.iterations`` and return the tokens left for the call's own model.

        ``message`` entries are already the top-level figures; ``compaction``
        entries are not in them (SDK docstring) and are added at the call's
        rates. Any other entry (``advisor_message``, ``fallback_message``) is
        priced at its own model's rates; if the top-level figures equal the sum
        of all non-compaction entries, they include those entries, which are
        then taken out of the call-model part so nothing is billed twice.
        """
        messages: list[object] = []
        others: list[object] = []
        for item in iterations:
            kind = getattr(item, "type", None)
            if kind == "message":
                messages.append(item)
            elif kind == "compaction":
                counts, inexact = tokens(item)
                if inexact:
                    bill.flag(PARTIAL)
                charge(plan, counts, mods, _COMPACTION_NAMES, bill)
            else:
                others.append(item)
        if not others:
            return main
        own_mods = mods._replace(fast=False)  # usage.speed describes the call's own model
        for item in others:
            model = getattr(item, "model", None) or plan.row.key
            key = self.resolve(model).key if isinstance(model, str) else None
            other_plan = None if key is None else self._plan(key, at_ms)
            counts, inexact = tokens(item)
            if inexact:
                bill.flag(PARTIAL)
            if other_plan is None or other_plan.standard is None:
                self._unpriced(model, key, "iteration model")
                bill.flag(PARTIAL)
                bill.left_out = bill.left_out or any(counts)
                continue
            names = _names_with(f"iteration_{getattr(item, 'type', None) or 'other'}_")
            charge(other_plan, counts, own_mods, names, bill)
        included = [sum(col) for col in zip(*(raw_totals(i) for i in (*messages, *others)), strict=True)]
        if included != list(raw_totals(usage)):
            return main
        summed = [0] * len(COMPONENTS)
        for item in messages:
            counts, inexact = tokens(item)
            if inexact:
                bill.flag(PARTIAL)
            summed = [a + b for a, b in zip(summed, counts, strict=True)]
        return summed


def _starts(plans: tuple[Plan, ...]) -> tuple[int, ...]:
    """When each of a row's periods but the first starts: ``_parse_row`` dates every change, later than the last."""
    starts = [plan.row.effective_from_ms for plan in plans[1:]]
    dated = tuple(since for since in starts if since is not None)
    assert len(dated) == len(starts)
    return dated


def _in_effect(plans: tuple[Plan, ...], starts: tuple[int, ...], at_ms: int | None) -> Plan:
    """The plan of a row's periods in effect at ``at_ms`` (default now): the last to start by then.

    ``starts`` (``_starts``) is ascending, so one bisect finds it (a loop over the
    periods cost the flusher 3,000 instructions per event for a row with two).
    """
    if type(at_ms) is not int and not isinstance(at_ms, (int, float)):  # the first test: what calls give
        at_ms = time.time_ns() // 1_000_000
    return plans[bisect_right(starts, at_ms)]


@lru_cache(maxsize=1)
def _load_default() -> PriceTable:
    data = _read_default_prices()
    return PriceTable(
        version=data["version"],
        models=data["models"],
        web_search_per_1000=data.get("web_search_per_1000", 10),
        sources=data.get("sources"),
    )


def default_table() -> PriceTable:
    """The shipped price table; the same object as ``PriceTable.default()``."""
    return _load_default()
