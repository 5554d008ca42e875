"""The result of a reconciliation, and its JSON form (what ``--format json`` prints and ``--save`` stores).

Money is a ``Decimal`` throughout and a decimal string in JSON: tracked cost
comes from the store's integer pico-dollars and reported cost from the API's
cent strings, and both convert exactly, so a difference of zero means zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import ROUND_DOWN, Decimal, InvalidOperation, localcontext
from typing import Any

import attrs

__all__ = ["FORMAT", "Reconciliation", "Row", "Tokens", "Uncompared", "decimal_text", "divide"]

#: The version of the JSON form; ``load_saved`` refuses other versions.
FORMAT = 1

_COVERAGE_STEP = Decimal("0.000001")
_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "web_search_requests",
)


def decimal_text(value: Decimal) -> str:
    """``value`` written out in full, without an exponent or trailing zeros.

    >>> decimal_text(Decimal("1.2345000000")), decimal_text(Decimal("1E+2")), decimal_text(Decimal("-0.0"))
    ('1.2345', '100', '0')
    """
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def divide(tracked: Decimal, reported: Decimal) -> Decimal | None:
    """``tracked / reported`` truncated to six places (never rounded up); ``None`` when nothing was reported."""
    if reported == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        return (tracked / reported).quantize(_COVERAGE_STEP, rounding=ROUND_DOWN)


@attrs.frozen(kw_only=True)
class Tokens:
    """Token and request counts by type, in the SDK's words.

    ``input_tokens`` is uncached input (the report's ``uncached_input_tokens``);
    ``cache_creation_input_tokens`` is both cache-write TTLs together.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    web_search_requests: int = 0

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(**{f: getattr(self, f) + getattr(other, f) for f in _TOKEN_FIELDS})


@attrs.frozen(kw_only=True)
class Row:
    """One bucket both sides are compared in (also the shape of the total and the lists kept apart).

    ``kind`` is ``"tokens"`` for a model's token spend, ``"web_search"`` for the
    day's web-search fees (the cost report does not tie them to a model).
    """

    day: date | None = None
    model: str | None = None
    service_tier: str | None = None
    kind: str = "tokens"
    tracked_cost_usd: Decimal = Decimal(0)
    reported_cost_usd: Decimal = Decimal(0)
    tracked: Tokens = Tokens()
    reported: Tokens = Tokens()
    tracked_calls: int = 0
    unpriced_calls: int = 0
    provisional: bool = False

    @property
    def difference_usd(self) -> Decimal:
        """Reported minus tracked: above zero, Anthropic billed spend the store did not see."""
        return self.reported_cost_usd - self.tracked_cost_usd

    @property
    def coverage(self) -> Decimal | None:
        """The share of reported spend the store tracked (see :func:`divide`)."""
        return divide(self.tracked_cost_usd, self.reported_cost_usd)

    def to_json(self) -> dict[str, Any]:
        """The row as JSON-ready data, money as exact decimal strings."""
        coverage = self.coverage
        data: dict[str, Any] = {
            "day": None if self.day is None else self.day.isoformat(),
            "model": self.model,
            "service_tier": self.service_tier,
            "kind": self.kind,
            "tracked_cost_usd": decimal_text(self.tracked_cost_usd),
            "reported_cost_usd": decimal_text(self.reported_cost_usd),
            "difference_usd": decimal_text(self.difference_usd),
            "coverage": None if coverage is None else decimal_text(coverage),
            "tracked_calls": self.tracked_calls,
            "tracked_unpriced_calls": self.unpriced_calls,
        }
        for field in _TOKEN_FIELDS:
            data[f"tracked_{field}"] = getattr(self.tracked, field)
            data[f"reported_{field}"] = getattr(self.reported, field)
        data["provisional"] = self.provisional
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Row:
        """Rebuild a row from :meth:`to_json`'s output.

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not such output.
        """
        day = data.get("day")
        return cls(
            day=None if day is None else date.fromisoformat(str(day)),
            model=_optional_text(data.get("model")),
            service_tier=_optional_text(data.get("service_tier")),
            kind=str(data.get("kind", "tokens")),
            tracked_cost_usd=_decimal(data["tracked_cost_usd"]),
            reported_cost_usd=_decimal(data["reported_cost_usd"]),
            tracked=Tokens(**{f: _count(data.get(f"tracked_{f}", 0)) for f in _TOKEN_FIELDS}),
            reported=Tokens(**{f: _count(data.get(f"reported_{f}", 0)) for f in _TOKEN_FIELDS}),
            tracked_calls=_count(data.get("tracked_calls", 0)),
            unpriced_calls=_count(data.get("tracked_unpriced_calls", 0)),
            provisional=bool(data.get("provisional", False)),
        )


@attrs.frozen(kw_only=True)
class Uncompared:
    """Spend one side holds that the other cannot: another platform's calls, or a cost type fluxgate does not price.

    ``name`` is a platform (``bedrock``, ``vertex``) or a reported ``cost_type``
    (``code_execution``); ``calls`` is ``None`` for reported costs.
    """

    name: str
    cost_usd: Decimal
    calls: int | None = None
    unpriced_calls: int = 0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data."""
        return {
            "name": self.name,
            "cost_usd": decimal_text(self.cost_usd),
            "calls": self.calls,
            "unpriced_calls": self.unpriced_calls,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Uncompared:
        """Rebuild from :meth:`to_json`'s output."""
        calls = data.get("calls")
        return cls(
            name=str(data["name"]),
            cost_usd=_decimal(data["cost_usd"]),
            calls=None if calls is None else _count(calls),
            unpriced_calls=_count(data.get("unpriced_calls", 0)),
        )


@attrs.frozen(kw_only=True)
class Reconciliation:
    """What the store tracked beside what Anthropic reported, per bucket, with totals and caveats.

    Attributes:
        since, until: The UTC days compared, ``until`` exclusive.
        by: The row key (``day``, ``model``, ``service_tier``).
        rows: The compared buckets; ``total`` sums them.
        other_platforms: Bedrock, Vertex and any other platform's tracked spend
            (billed by the cloud provider, so not in Anthropic's report).
        priority: Priority Tier on both sides: in the usage report, never in the cost report.
        not_compared: Reported costs fluxgate does not price (code execution...).
        outside_store: Reported spend on days before the store's first event, per day.
        notes: What the comparison cannot see, in sentences.
        source: Which Admin API endpoints were read.
    """

    since: date
    until: date
    by: tuple[str, ...]
    rows: tuple[Row, ...]
    total: Row
    other_platforms: tuple[Uncompared, ...] = ()
    priority: Row | None = None
    not_compared: tuple[Uncompared, ...] = ()
    outside_store: tuple[Row, ...] = ()
    notes: tuple[str, ...] = ()
    source: str = ""
    store: str = ""
    generated_at_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``rows``, ``total`` (with ``coverage``) and what was kept apart."""
        return {
            "format": FORMAT,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "by": list(self.by),
            "source": self.source,
            "store": self.store,
            "generated_at_ms": self.generated_at_ms,
            "rows": [row.to_json() for row in self.rows],
            "total": self.total.to_json(),
            "other_platforms": [item.to_json() for item in self.other_platforms],
            "priority_tier": None if self.priority is None else self.priority.to_json(),
            "not_compared": [item.to_json() for item in self.not_compared],
            "outside_store": [row.to_json() for row in self.outside_store],
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reconciliation:
        """Rebuild from :meth:`to_json`'s output.

        Raises:
            ValueError: ``data`` is another version of the format, or malformed.
        """
        if not isinstance(data, Mapping):
            msg = f"expected a reconcile result object (got a {type(data).__name__})"
            raise ValueError(msg)
        if data.get("format") != FORMAT:
            msg = f"expected a reconcile result of format {FORMAT} (got format {data.get('format')!r})"
            raise ValueError(msg)
        try:
            priority = data.get("priority_tier")
            return cls(
                since=date.fromisoformat(str(data["since"])),
                until=date.fromisoformat(str(data["until"])),
                by=tuple(str(name) for name in data["by"]),
                rows=tuple(Row.from_json(row) for row in data["rows"]),
                total=Row.from_json(data["total"]),
                other_platforms=tuple(Uncompared.from_json(item) for item in data.get("other_platforms", ())),
                priority=None if priority is None else Row.from_json(priority),
                not_compared=tuple(Uncompared.from_json(item) for item in data.get("not_compared", ())),
                outside_store=tuple(Row.from_json(row) for row in data.get("outside_store", ())),
                notes=tuple(str(note) for note in data.get("notes", ())),
                source=str(data.get("source", "")),
                store=str(data.get("store", "")),
                generated_at_ms=_count(data.get("generated_at_ms", 0)),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            msg = f"malformed reconcile result ({exc!r})"
            raise ValueError(msg) from None


def _decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        msg = f"expected a decimal string (got {value!r})"
        raise TypeError(msg)
    try:
        result = Decimal(value)
    except InvalidOperation:
        msg = f"expected a decimal string (got {value!r})"
        raise ValueError(msg) from None
    if not result.is_finite():
        msg = f"expected a finite amount (got {value!r})"
        raise ValueError(msg)
    return result


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"expected a whole number (got {value!r})"
        raise TypeError(msg)
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)
