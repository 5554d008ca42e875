"""Price rows: their schema, and the reading, parsing and validation of row data.

A row is one model's prices over one period, as ``prices.json`` (or an
override mapping or file) gives them in USD per million tokens. Parsing turns
each row's fields into exact ``Decimal`` rates, validates every field with an
attrs-style ``ConfigurationError`` that names the model and the field, and
expands a row's ``changes`` into effective-dated rows. Factored out of
``_pricing``, which resolves model ids to these rows and prices calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any, Final

import attrs

from .._errors import ConfigurationError

__all__ = ["COMPONENTS", "LongContext", "PriceRow", "Rates"]

# 50 significant digits keep every product and every sum of a million events
# exact: rates have a handful of digits and token counts at most ~12.
# ``_pricing`` imports this context: one context for every rate and cost.
_CTX: Final = Context(prec=50, rounding=ROUND_HALF_EVEN)

#: The token components of a breakdown, in the order of a ``Rates``.
COMPONENTS: Final = ("input", "cache_write_5m", "cache_write_1h", "cache_read", "output")
_PROVENANCE: Final = frozenset({*COMPONENTS, "batch", "fast", "long_context"})
_ROW_FIELDS: Final = frozenset(
    {*COMPONENTS, "name", "aliases", "vertex", "priced", "fast", "long_context", "data_residency", "regional_premium"}
    | {"source", "date", "official", "third_party", "derived", "note", "changes"}
)
_CHANGE_FIELDS: Final = frozenset(
    {*COMPONENTS, "from", "long_context", "source", "date", "official", "third_party", "derived", "note"}
)
_VERTEX_RE: Final = re.compile(r"^[a-z0-9.-]+@\d{8}$")
_FAST_FIELDS: Final = frozenset({"input", "output", "source"})
_TIER_FIELDS: Final = frozenset({*COMPONENTS, "threshold", "source"})
# Default cache multipliers of base input, used only when a row omits a cache
# rate (overrides); shipped rows state every rate explicitly (P2, P3).
_DEFAULT_MULTIPLIERS: Final = {
    "cache_write_5m": Decimal("1.25"),
    "cache_write_1h": Decimal(2),
    "cache_read": Decimal("0.1"),
}


@attrs.frozen(kw_only=True)
class Rates:
    """One set of prices, USD per million tokens."""

    input: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    output: Decimal

    def as_tuple(self) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal]:
        """The rates in ``COMPONENTS`` order."""
        return (self.input, self.cache_write_5m, self.cache_write_1h, self.cache_read, self.output)


@attrs.frozen(kw_only=True)
class LongContext:
    """A prompt-length tier: a prompt over ``threshold`` tokens prices the whole request at ``rates``."""

    threshold: int
    rates: Rates
    source: str = ""


@attrs.frozen(kw_only=True)
class PriceRow:
    """One model's prices over one period, as ``fluxgate prices`` lists them.

    ``rates`` is ``None`` for a known model with no official price.
    ``third_party`` names the figures (components, ``batch``, ``fast``,
    ``long_context``) read only outside Anthropic: using them makes a cost
    ``estimated``. ``derived`` names figures fluxgate inferred because none was
    published: using them makes a cost ``partial``. ``vertex`` is the model's
    Google Vertex AI id (``claude-3-5-sonnet-v2@20241022``): the resolver maps
    it, and its model name without the ``@`` version, onto this row.
    """

    key: str
    name: str
    aliases: tuple[str, ...] = ()
    vertex: str = ""
    rates: Rates | None = None
    fast: Rates | None = None
    fast_source: str = ""
    long_context: LongContext | None = None
    data_residency: bool = False
    regional_premium: bool = False
    effective_from: str | None = None
    effective_from_ms: int | None = None
    source: str = ""
    date: str = ""
    official: bool = True
    third_party: frozenset[str] = frozenset()
    derived: frozenset[str] = frozenset()
    note: str = ""

    @property
    def priced(self) -> bool:
        """Whether the row has prices at all."""
        return self.rates is not None

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data (prices as decimal strings)."""

        def rates(r: Rates | None) -> dict[str, str] | None:
            return None if r is None else dict(zip(COMPONENTS, map(str, r.as_tuple()), strict=True))

        return {
            "key": self.key,
            "name": self.name,
            "aliases": list(self.aliases),
            "vertex": self.vertex or None,
            "priced": self.priced,
            "rates": rates(self.rates),
            "fast": rates(self.fast),
            "fast_source": self.fast_source,
            "long_context": None
            if self.long_context is None
            else {
                "threshold": self.long_context.threshold,
                "rates": rates(self.long_context.rates),
                "source": self.long_context.source,
            },
            "data_residency": self.data_residency,
            "regional_premium": self.regional_premium,
            "effective_from": self.effective_from,
            "source": self.source,
            "date": self.date,
            "official": self.official,
            "third_party": sorted(self.third_party),
            "derived": sorted(self.derived),
            "note": self.note,
        }


# --- loading and validation ---------------------------------------------------


def _fail(where: str, field: str, expected: str, value: object) -> ConfigurationError:
    got = f"{value!r} that is a {type(value).__name__}"
    return ConfigurationError(f"{where}[{field!r}] must be {expected} (got {got}).")


def _check_fields(where: str, raw: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for field in raw:
        if field not in allowed:
            msg = f"{where} has an unknown field {field!r}; known fields: {', '.join(sorted(allowed))}."
            raise ConfigurationError(msg)


def _rate(where: str, field: str, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise _fail(where, field, "a number of USD per million tokens", value)
    try:
        rate = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise _fail(where, field, "a number of USD per million tokens", value) from None
    if not rate.is_finite() or rate < 0:
        raise _fail(where, field, "a finite number >= 0", value)
    return rate


def _text(where: str, field: str, value: object) -> str:
    if not isinstance(value, str):
        raise _fail(where, field, "a string", value)
    return value


def _flag(where: str, field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, field, "true or false", value)
    return value


def _names(where: str, field: str, value: object, allowed: frozenset[str] | None) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise _fail(where, field, "a list of strings", value)
    out = tuple(_text(where, field, v).strip().lower() for v in value)
    if allowed is not None and not set(out) <= allowed:
        raise _fail(where, field, f"a list drawn from {sorted(allowed)}", value)
    return out


def _mapping(where: str, field: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, field, "an object", value)
    return value


def _rates(where: str, raw: Mapping[str, Any], base: Rates | None = None) -> Rates:
    """Rates from ``raw``; missing ones come from ``base`` or the cache multipliers."""
    values: dict[str, Decimal] = {}
    for field in ("input", "output"):
        if field in raw:
            values[field] = _rate(where, field, raw[field])
        elif base is not None:
            values[field] = getattr(base, field)
        else:
            msg = f"{where} is missing the required field {field!r} (USD per million tokens)."
            raise ConfigurationError(msg)
    for field, multiplier in _DEFAULT_MULTIPLIERS.items():
        if field in raw:
            values[field] = _rate(where, field, raw[field])
        elif base is not None:
            values[field] = getattr(base, field)
        else:
            values[field] = _CTX.multiply(values["input"], multiplier)
    return Rates(**values)


def _fast_rates(standard: Rates, fast_input: Decimal, fast_output: Decimal) -> Rates:
    """Fast-mode rates: cache rates scale with the fast/standard input ratio (P2, P3: multipliers stack)."""

    def scaled(rate: Decimal) -> Decimal:
        if not standard.input:
            return rate
        return _CTX.divide(_CTX.multiply(rate, fast_input), standard.input)

    return Rates(
        input=fast_input,
        cache_write_5m=scaled(standard.cache_write_5m),
        cache_write_1h=scaled(standard.cache_write_1h),
        cache_read=scaled(standard.cache_read),
        output=fast_output,
    )


def _long_context(where: str, value: object) -> LongContext | None:
    """A prompt-length tier from its row fields; ``None`` (JSON null) means no tier."""
    if value is None:
        return None
    at = f"{where}['long_context']"
    tier = _mapping(where, "long_context", value)
    _check_fields(at, tier, _TIER_FIELDS)
    threshold = tier.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0:
        raise _fail(at, "threshold", "a positive number of prompt tokens", threshold)
    return LongContext(threshold=threshold, rates=_rates(at, tier), source=_text(at, "source", tier.get("source", "")))


def _vertex_id(where: str, value: object) -> str:
    text = _text(where, "vertex", value).strip().lower()
    if text and not _VERTEX_RE.match(text):
        raise _fail(where, "vertex", "a Vertex AI id 'model@YYYYMMDD'", value)
    return text


def _date_ms(where: str, value: object) -> int:
    text = _text(where, "from", value)
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise _fail(where, "from", "a date 'YYYY-MM-DD' (UTC midnight)", value) from None
    return int(day.timestamp()) * 1000


def _parse_row(key: str, raw: object, label: str | None = None) -> list[PriceRow]:
    """Validate one row of the table and expand its ``changes`` into effective-dated rows."""
    where = f"prices[{label or key!r}]"
    if not isinstance(raw, Mapping):
        msg = f"{where} must be an object of row fields (got {raw!r} that is a {type(raw).__name__})."
        raise ConfigurationError(msg)
    _check_fields(where, raw, _ROW_FIELDS)
    priced = _flag(where, "priced", raw.get("priced", True))
    rates = fast = None
    long_context = None
    fast_spec: tuple[Decimal, Decimal] | None = None
    fast_source = ""
    if priced:
        rates = _rates(where, raw)
        if raw.get("fast") is not None:
            spec = _mapping(where, "fast", raw["fast"])
            at = f"{where}['fast']"
            _check_fields(at, spec, _FAST_FIELDS)
            for field in ("input", "output"):
                if field not in spec:
                    msg = f"{at} is missing the required field {field!r} (USD per million tokens)."
                    raise ConfigurationError(msg)
            fast_spec = (_rate(at, "input", spec["input"]), _rate(at, "output", spec["output"]))
            fast = _fast_rates(rates, *fast_spec)
            fast_source = _text(at, "source", spec.get("source", ""))
        long_context = _long_context(where, raw.get("long_context"))
    else:
        for field in (*COMPONENTS, "fast", "long_context"):
            if field in raw:
                msg = f"{where}[{field!r}] cannot be set on a row with 'priced': false."
                raise ConfigurationError(msg)
    official = _flag(where, "official", raw.get("official", True))
    row = PriceRow(
        key=key,
        name=_text(where, "name", raw.get("name", key)),
        aliases=_names(where, "aliases", raw.get("aliases", ()), None),
        vertex=_vertex_id(where, raw.get("vertex", "")),
        rates=rates,
        fast=fast,
        fast_source=fast_source,
        long_context=long_context,
        data_residency=_flag(where, "data_residency", raw.get("data_residency", False)),
        regional_premium=_flag(where, "regional_premium", raw.get("regional_premium", False)),
        source=_text(where, "source", raw.get("source", "override")),
        date=_text(where, "date", raw.get("date", "")),
        official=official,
        third_party=frozenset(_names(where, "third_party", raw.get("third_party", ()), _PROVENANCE)),
        derived=frozenset(_names(where, "derived", raw.get("derived", ()), _PROVENANCE)),
        note=_text(where, "note", raw.get("note", "")),
    )
    rows = [row]
    changes = raw.get("changes", ())
    if isinstance(changes, str) or not isinstance(changes, Sequence):
        raise _fail(where, "changes", "a list of objects", changes)
    for i, item in enumerate(changes):
        at = f"{where}['changes'][{i}]"
        change = _mapping(where, "changes", item)
        _check_fields(at, change, _CHANGE_FIELDS)
        since = _date_ms(at, change.get("from"))
        prev = rows[-1]
        if prev.effective_from_ms is not None and since <= prev.effective_from_ms:
            raise _fail(at, "from", "later than the previous change", change.get("from"))
        if prev.rates is None:
            raise _fail(at, "from", "on a priced row", change.get("from"))
        new_rates = _rates(at, change, prev.rates)
        # A change may add, replace or (with null) end a prompt-length tier.
        tier = _long_context(at, change["long_context"]) if "long_context" in change else prev.long_context
        rows.append(
            attrs.evolve(
                prev,
                rates=new_rates,
                long_context=tier,
                fast=None if fast_spec is None else _fast_rates(new_rates, *fast_spec),
                effective_from=change["from"],
                effective_from_ms=since,
                source=_text(at, "source", change.get("source", prev.source)),
                date=_text(at, "date", change.get("date", prev.date)),
                official=_flag(at, "official", change.get("official", prev.official)),
                third_party=frozenset(
                    _names(at, "third_party", change.get("third_party", prev.third_party), _PROVENANCE)
                ),
                derived=frozenset(_names(at, "derived", change.get("derived", prev.derived), _PROVENANCE)),
                note=_text(at, "note", change.get("note", prev.note)),
            )
        )
    return rows


def _digest(overrides: Mapping[str, Any]) -> str:
    blob = json.dumps(overrides, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def _read_prices_file(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    name = os.fspath(path)
    try:
        data = json.loads(Path(name).read_text(encoding="utf-8"), parse_float=Decimal)
    except OSError as exc:
        msg = f"'prices' file {name!r} cannot be read ({exc}); pass a JSON file of model id -> row fields."
        raise ConfigurationError(msg) from None
    except ValueError as exc:
        msg = f"'prices' file {name!r} is not valid JSON ({exc})."
        raise ConfigurationError(msg) from None
    if not isinstance(data, dict):
        msg = f"'prices' file {name!r} must hold a JSON object of model id -> row fields (got {type(data).__name__})."
        raise ConfigurationError(msg)
    models = data.get("models")
    return models if isinstance(models, dict) else data


def _read_default_prices() -> Mapping[str, Any]:
    """The shipped ``prices.json`` (beside this module), every number as ``Decimal``."""
    try:
        text = (resources.files(__package__ or "fluxgate._pricing") / "prices.json").read_text(encoding="utf-8")
    except (OSError, TypeError, AttributeError, ImportError):  # unusual loaders: read the file next to us
        text = (Path(__file__).parent / "prices.json").read_text(encoding="utf-8")
    data: Mapping[str, Any] = json.loads(text, parse_float=Decimal)
    return data
