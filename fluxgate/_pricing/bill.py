"""The arithmetic of one call's cost, in integers: compiled rows, token counts and the bill.

A row's rates are compiled once into integers. USD per million tokens times
10**6 is pico-dollars per token, exact for every rate with at most six decimals
(every shipped rate); a row whose override has more decimals gets a finer unit
instead, so nothing is ever rounded. The billing modifiers are exact fractions
over 1000 (batch 500, each +10 % 1100/1000), so a component costs
``tokens x rate x modifier`` in units of 10**-15 USD, and a bill sums those
integers. ``Bill.figures()`` gives them as exact (coefficient, exponent)
pairs, which the SQLite store writes as text without ever making a
``Decimal``; ``to_decimal`` is the one place they become one. The usual call
(no modifier, iteration or fee) skips the bill: ``plain_figures`` reaches the
same pairs in numbers small enough for CPython's fast integer paths.

Each amount also carries the decimal exponent that the all-``Decimal``
arithmetic this replaces gave it (``0.30`` at $0.30 is not ``0.3``), so the
figures events store as text are unchanged: ``tests/pricing/reference.py``
keeps that arithmetic and the tests compare the two on every recording.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from decimal import Context, Decimal
from types import MappingProxyType
from typing import Any, Final, NamedTuple

import attrs

from .._models import Cost, CostStatus
from .rows import _PROVENANCE, COMPONENTS, PriceRow, Rates

# Private to _pricing: table.py prices with these; only tests reach in otherwise.
__all__ = [
    "ESTIMATED",
    "PARTIAL",
    "PRICED",
    "STATUSES",
    "Bill",
    "ExactCost",
    "Figure",
    "IntRates",
    "Modifiers",
    "PlainText",
    "Plan",
    "charge",
    "charge_fee",
    "count",
    "figure_float",
    "figure_pico",
    "figure_text",
    "plain_figures",
    "plain_text",
    "raw_totals",
    "to_decimal",
    "tokens",
]

PRICED, ESTIMATED, PARTIAL = 0, 1, 2
STATUSES: Final[tuple[CostStatus, ...]] = ("priced", "estimated_price", "partial")

# Enough digits for any coefficient a bill can hold; conversions never round.
_EXACT: Final = Context(prec=200)
_POW10: Final = tuple(10**k for k in range(128))
#: The unit of shipped rates: pico-dollars (10**-12 USD) per token.
_PICO: Final = -12
#: Modifier fractions over 1000; each one used moves the old Decimal result's exponent down by one.
_ONE, _HALF, _PLUS_10_PCT = 1000, 500, 1100
_TOKEN_FIELDS: Final = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)
_READ_TOKENS: Final = operator.attrgetter(*_TOKEN_FIELDS)


def _pow10(k: int) -> int:
    return _POW10[k] if k < 128 else int(10**k)


class IntRates(NamedTuple):
    """One set of rates as integers in a plan's ``unit``, with the exponents of their decimal form."""

    values: tuple[int, ...]
    exps: tuple[int, ...]
    #: Each rate's decimal digits as an integer: the rate is ``coefficients[i] * 10**exps[i]`` USD per MTok.
    coefficients: tuple[int, ...]
    #: ``plain_text`` at these rates (``text.run``). None unless ``values`` are whole pico-dollars
    #: per token and no rate has a positive exponent.
    text: PlainTextFunction | None


def _exponent(rate: Decimal) -> int:
    exp = rate.as_tuple().exponent
    assert isinstance(exp, int)  # rows hold finite rates only
    return exp


def _compile_rates(rates: Rates, unit: int, ranks: tuple[int, ...]) -> IntRates:
    values: list[int] = []
    coefficients: list[int] = []
    for rate in rates.as_tuple():
        _, digits, exp = rate.as_tuple()
        assert isinstance(exp, int)
        coefficient = int("".join(map(str, digits)))
        coefficients.append(coefficient)
        values.append(coefficient * _pow10(exp - 6 - unit))  # per MTok -> per token, in 10**unit USD
    exps = tuple(_exponent(r) for r in rates.as_tuple())
    text = None
    if unit == _PICO and max(exps) <= 0:
        text = PlainTextFunction(tuple(zip(coefficients, values, (-exp for exp in exps), strict=True)), ranks)
    return IntRates(values=tuple(values), exps=exps, coefficients=tuple(coefficients), text=text)


@attrs.frozen
class Plan:
    """A row compiled for the hot path: integer rates and per-component status ranks."""

    row: PriceRow
    #: The decimal exponent of one unit of the integer rates, in USD per token (-12: pico-dollars).
    unit: int
    standard: IntRates | None
    long_threshold: int
    long: IntRates | None
    fast: IntRates | None
    #: Per component, and per modifier (batch, fast, long_context): the status using it implies
    #: (third-party figure: estimated; derived figure: partial).
    ranks: tuple[int, ...]
    modifier_ranks: Mapping[str, int]
    #: ``plain_text`` for this plan (``text.run``), the long-context rule written into it; None
    #: without standard rates. Made from the fields above (again by ``attrs.evolve``).
    text: PlainTextFunction | None = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        standard, long = self.standard, self.long
        text = None
        if standard is not None:
            rates = None if standard.text is None else standard.text.rates
            above = None
            if long is not None:
                above = (self.long_threshold, self.modifier_ranks["long_context"], long.text)
            text = PlainTextFunction(rates, self.ranks, above)
        object.__setattr__(self, "text", text)

    @classmethod
    def compile(cls, row: PriceRow) -> Plan:
        # A non-official row that names no third-party figure is third-party as a whole.
        estimated = row.third_party or (frozenset() if row.official else _PROVENANCE)

        def rank(name: str) -> int:
            return PARTIAL if name in row.derived else ESTIMATED if name in estimated else PRICED

        sets = [row.rates, None if row.long_context is None else row.long_context.rates, row.fast]
        unit = min([-12, *(_exponent(rate) - 6 for rates in sets if rates is not None for rate in rates.as_tuple())])
        ranks = tuple(rank(c) for c in COMPONENTS)
        return cls(
            row=row,
            unit=unit,
            standard=None if row.rates is None else _compile_rates(row.rates, unit, ranks),
            long_threshold=0 if row.long_context is None else row.long_context.threshold,
            long=None if row.long_context is None else _compile_rates(row.long_context.rates, unit, ranks),
            fast=None if row.fast is None else _compile_rates(row.fast, unit, ranks),
            ranks=ranks,
            modifier_ranks={name: rank(name) for name in ("batch", "fast", "long_context")},
        )


# --- token counts -----------------------------------------------------------------


def count(value: object) -> int:
    """A token count; ``None`` is 0, anything not a non-negative int is -1."""
    if value is None:
        return 0
    if type(value) is int and value >= 0:
        return value
    return -1


def tokens(src: object) -> tuple[list[int], bool]:
    """``[input, 5m write, 1h write, read, output]`` of a Usage or Iteration, and whether it was inexact.

    Cache writes without a TTL split are billed at the 5-minute rate (inexact).
    Invalid counts are treated as 0 (inexact).
    """
    try:
        raw = _READ_TOKENS(src)
    except AttributeError:
        raw = tuple(getattr(src, field, None) for field in _TOKEN_FIELDS)
    inp, total, w5, w1, read, out = raw
    inexact = False
    if (
        not (type(inp) is int and type(total) is int and type(read) is int and type(out) is int)
        or min(inp, total, read, out) < 0
    ):  # the slow path: None, negative or non-int counts
        inp, total, read, out = (count(v) for v in (inp, total, read, out))
        inexact = min(inp, total, read, out) < 0
        inp, total, read, out = (max(v, 0) for v in (inp, total, read, out))
    if w5 is None and w1 is None:
        w5, w1 = total, 0
        inexact = inexact or total > 0
    else:
        w5, w1 = count(w5), count(w1)
        if w5 < 0 or w1 < 0:
            w5, w1, inexact = max(w5, 0), max(w1, 0), True
        if total > w5 + w1:
            w5 = total - w1  # writes the split does not account for: 5m rate
            inexact = True
    return [inp, w5, w1, read, out], inexact


def raw_totals(src: object) -> tuple[int, int, int, int]:
    """Input, cache-write total, cache read and output as reported (invalid counts as 0)."""
    return (
        max(count(getattr(src, "input_tokens", None)), 0),
        max(count(getattr(src, "cache_creation_input_tokens", None)), 0),
        max(count(getattr(src, "cache_read_input_tokens", None)), 0),
        max(count(getattr(src, "output_tokens", None)), 0),
    )


# --- the bill ---------------------------------------------------------------------


class Modifiers(NamedTuple):
    batch: bool
    fast: bool
    geo_us: bool
    regional: bool


class Bill:
    """What one ``price()`` call accumulates: per component, integer amounts and their ideal exponents.

    Amounts are in units of ``10**unit`` USD, the finest unit of any plan charged
    (10**-15 for shipped rows: pico-dollar rates times a modifier over 1000).
    Each amount keeps the exponent its ``Decimal`` form would ideally have,
    so that ``cost()`` gives it the same digits the Decimal arithmetic did.
    """

    __slots__ = ("left_out", "parts", "rank", "unit")

    def __init__(self) -> None:
        #: name -> [amount, ideal exponent, amount, ideal exponent, ...]: one pair per step charged.
        self.parts: dict[str, list[int]] = {}
        self.rank = PRICED
        self.unit: int | None = None
        #: Tokens the bill could not price (an iteration on an unknown model).
        self.left_out = False

    def flag(self, rank: int) -> None:
        self.rank = max(self.rank, rank)

    def align(self, unit: int) -> int:
        """Make amounts in ``10**unit`` addable: returns what to multiply them by."""
        if self.unit is None:
            self.unit = unit
        elif unit < self.unit:  # a finer plan: rescale what is there (overrides with many decimals only)
            scale = _pow10(self.unit - unit)
            for part in self.parts.values():
                part[::2] = [amount * scale for amount in part[::2]]
            self.unit = unit
        return _pow10(unit - self.unit)

    def figures(self) -> tuple[Figure, dict[str, Figure]]:
        """The total and the breakdown as exact :data:`Figure` pairs, each the ``Decimal`` ``cost()`` gives.

        Each amount gets the exponent Decimal division gave it: the ideal one
        (the rate's, one lower per modifier) if the figure is exact there,
        else as few digits as it needs. Sums are exact and keep the smaller
        exponent, as Decimal addition does (the total starts from
        ``Decimal(0)``, exponent 0).
        """
        unit = self.unit
        breakdown: dict[str, Figure] = {}
        if unit is None:
            return (0, 0), breakdown
        # Inlined: this runs once per priced call, on the flusher's thread.
        total, total_exp = 0, 0
        for name, part in self.parts.items():
            if len(part) == 2:  # one step charged this component (all but iterations)
                amount, ideal = part
                k = ideal - unit
                whole, rest = divmod(amount, _POW10[k] if k < 128 else 10**k)
                value = _normalized(amount, unit) if rest else (whole, ideal)
            else:
                value = _figure(part[0], part[1], unit)
                for j in range(2, len(part), 2):
                    value = _add(value, _figure(part[j], part[j + 1], unit))
            breakdown[name] = value
            coefficient, exp = value
            if exp == total_exp:
                total += coefficient
            elif exp < total_exp:
                total, total_exp = total * _pow10(total_exp - exp) + coefficient, exp
            else:
                total += coefficient * _pow10(exp - total_exp)
        return (total, total_exp), breakdown


#: An exact amount of USD as (coefficient, exponent): ``coefficient * 10**exponent``.
#: The pair is the ``Decimal`` the arithmetic gives, digits and exponent both,
#: so its text (:func:`figure_text`) is that Decimal's ``str()``.
Figure = tuple[int, int]


class ExactCost(NamedTuple):
    """What a call cost, in exact integers: :class:`Cost` before its figures become ``Decimal``.

    ``total`` is ``None`` only when ``status == "unpriced_model"``.
    """

    total: Figure | None
    breakdown: Mapping[str, Figure]
    status: CostStatus
    price_version: str
    resolved_model: str | None

    def cost(self) -> Cost:
        """The same cost with ``Decimal`` figures."""
        return Cost(
            total_usd=None if self.total is None else to_decimal(self.total),
            status=self.status,
            breakdown=MappingProxyType({name: to_decimal(value) for name, value in self.breakdown.items()}),
            price_version=self.price_version,
            resolved_model=self.resolved_model,
        )


def _figure(amount: int, ideal: int, unit: int) -> Figure:
    """``amount`` (in ``10**unit`` USD) at its ideal exponent if exact there, else with as few digits as it needs."""
    k = ideal - unit
    whole, rest = divmod(amount, _POW10[k] if k < 128 else 10**k)
    return _normalized(amount, unit) if rest else (whole, ideal)


def _normalized(amount: int, unit: int) -> Figure:
    """``amount`` (not 0) in ``10**unit`` USD without trailing zeros, as ``Decimal.normalize()`` gives it."""
    # By eight digits, then four, two and one: amounts in 10**-15 USD end in many zeros.
    while not amount % 100_000_000:
        amount //= 100_000_000
        unit += 8
    if not amount % 10_000:
        amount //= 10_000
        unit += 4
    if not amount % 100:
        amount //= 100
        unit += 2
    if not amount % 10:
        amount //= 10
        unit += 1
    return amount, unit


def _add(a: Figure, b: Figure) -> Figure:
    """``a + b`` as Decimal adds exact values: the smaller exponent."""
    (ca, ea), (cb, eb) = a, b
    if ea == eb:
        return ca + cb, ea
    if ea < eb:
        return ca + cb * _pow10(eb - ea), ea
    return ca * _pow10(ea - eb) + cb, eb


def to_decimal(value: Figure) -> Decimal:
    """The ``Decimal`` of a figure, digits and exponent as they are."""
    return Decimal(value[0]).scaleb(value[1], _EXACT)


def figure_text(value: Figure) -> str:
    """``str()`` of the figure's ``Decimal``, made without it (the General Decimal Arithmetic to-sci-string)."""
    coefficient, exp = value
    digits = str(coefficient) if coefficient >= 0 else str(-coefficient)
    left = exp + len(digits)
    dot = left if exp <= 0 and left > -6 else 1
    if dot <= 0:
        text = "0." + "0" * -dot + digits
    elif dot >= len(digits):
        text = digits + "0" * (dot - len(digits))
    else:
        text = digits[:dot] + "." + digits[dot:]
    if left != dot:
        text = f"{text}E{left - dot:+d}"
    return text if coefficient >= 0 else "-" + text


def figure_float(value: Figure) -> float:
    """The figure as the nearest float (as ``float(Decimal)`` rounds it)."""
    coefficient, exp = value
    if exp >= 0:
        return float(coefficient * _pow10(exp))
    return coefficient / _pow10(-exp)  # int / int is correctly rounded


def figure_pico(value: Figure) -> int:
    """The figure in pico-dollars (10**-12 USD), rounded half to even where it has finer digits."""
    coefficient, exp = value
    shift = exp + 12
    if shift >= 0:
        return coefficient * _pow10(shift)
    quotient, rest = divmod(coefficient, _pow10(-shift))
    twice, half = 2 * rest, _pow10(-shift)
    if twice > half or (twice == half and quotient % 2):
        quotient += 1
    return quotient


def charge(plan: Plan, counts: Sequence[int], mods: Modifiers, names: Sequence[str], bill: Bill) -> None:
    """Add the token components of one request priced at ``plan`` to ``bill``, as ``names``."""
    rates = plan.standard
    assert rates is not None  # callers only charge priced plans
    if plan.long is not None and counts[0] + counts[1] + counts[2] + counts[3] > plan.long_threshold:
        rates = plan.long  # the whole request moves to the tier (P1, M-H55)
        bill.flag(plan.modifier_ranks["long_context"])
    if mods.fast:
        if plan.fast is None:
            bill.flag(PARTIAL)  # no fast price known: standard rates undercount
        else:
            rates = plan.fast
            bill.flag(plan.modifier_ranks["fast"])
    factor, shift = _ONE, 0
    if mods.batch:
        factor, shift = _HALF, 1
        bill.flag(plan.modifier_ranks["batch"])
    if mods.geo_us and plan.row.data_residency:
        factor, shift = factor * _PLUS_10_PCT // _ONE, shift + 1  # exact: 1100, 550, 1210, 605
    if mods.regional and plan.row.regional_premium:
        factor, shift = factor * _PLUS_10_PCT // _ONE, shift + 1
    unit = plan.unit - 3  # amounts carry the modifier's denominator, 1000
    scale = factor if bill.unit == unit else bill.align(unit) * factor
    parts = bill.parts
    values, exps = rates.values, rates.exps
    ranks = plan.ranks
    for i, n in enumerate(counts):
        if not n:
            continue
        # The ideal exponent of the figure is the rate's, one lower per modifier.
        amount, ideal = n * values[i] * scale, exps[i] - shift
        part = parts.get(names[i])
        if part is None:
            parts[names[i]] = [amount, ideal]
        else:  # a second step on the same component (iterations)
            part += (amount, ideal)
        if ranks[i]:
            bill.flag(ranks[i])


def _plain_rates(plan: Plan, counts: Sequence[int]) -> tuple[IntRates, int] | None:
    """The rates a call without modifiers pays, and the status rank they imply; None if the plan has none.

    Past the row's long-context threshold, the whole call pays the long-context rates.
    """
    rates = plan.standard
    if rates is None:
        return None
    if plan.long is not None and counts[0] + counts[1] + counts[2] + counts[3] > plan.long_threshold:
        return plan.long, plan.modifier_ranks["long_context"]
    return rates, PRICED


def plain_figures(plan: Plan, counts: Sequence[int]) -> tuple[Figure, dict[str, Figure], int] | None:
    """The figures of a call with no modifier, no iterations and no fee: the usual call, in small integers.

    ``charge`` and ``Bill.figures`` reach the same figures through amounts in
    10**-15 USD, numbers past 2**30 whose arithmetic in CPython is several
    times slower. Without a modifier, component ``i`` costs ``n x c x
    10**(e - 6)`` for a rate ``c x 10**e`` per MTok: its ideal exponent is
    ``e`` (exact there when ``n x c`` is a multiple of 10**6), else it is
    ``n x c`` at ``e - 6`` without trailing zeros. Returns (total, breakdown,
    status rank), or None for a plan with no standard rates.
    """
    chosen = _plain_rates(plan, counts)
    if chosen is None:
        return None
    rates, rank = chosen
    breakdown: dict[str, Figure] = {}
    total = total_exp = 0
    rows = zip(counts, rates.coefficients, rates.exps, plan.ranks, COMPONENTS, strict=True)
    for n, c, exp, component_rank, name in rows:
        if not n:
            continue
        amount = n * c
        if amount % 1_000_000:
            coefficient, exp = _normalized(amount, exp - 6)  # noqa: PLW2901 - the figure's own exponent
        else:
            coefficient = amount // 1_000_000
        breakdown[name] = (coefficient, exp)
        if exp == total_exp:
            total += coefficient
        elif exp < total_exp:
            total, total_exp = total * _pow10(total_exp - exp) + coefficient, exp
        else:
            total += coefficient * _pow10(exp - total_exp)
        if component_rank > rank:  # noqa: PLR1730 - a compare, not a builtin call per component
            rank = component_rank
    return (total, total_exp), breakdown, rank


#: What a store writes of the usual call's cost (``plain_text``): the total as text, the components
#: used and their texts (in ``COMPONENTS`` order), the total in pico-dollars, and the cost status.
PlainText = tuple[str, tuple[str, ...], tuple[str, ...], int, CostStatus]


def plain_text(  # noqa: PLR0917 - the five counts, positional: the flusher calls this per event
    plan: Plan, inp: int, w5: int, w1: int, read: int, out: int, rank: int = PRICED
) -> PlainText | None:
    """The usual call's figures as the text ``figure_text`` gives them, made straight from integers.

    What ``plain_figures`` then ``figure_text`` give of the token counts
    (input, 5-minute and 1-hour cache writes, cache read, output), for the
    flusher, which writes the text and keeps no figure. A rate of ``c x
    10**-k`` USD per MTok (``k``: its decimals) makes ``n`` tokens cost ``n x
    c`` units of ``10**-(6 + k)`` USD: the digits of that small integer are
    the figure's, which keeps at least the rate's ``k`` decimals (``0.30`` at
    $0.30) and otherwise no trailing zero. The total, in pico-dollars, keeps
    the most decimals of its parts. None where that does not hold: a row with
    finer rates, or a part under a millionth of a dollar (``figure_text``
    writes ``3E-7``). The status is the highest of ``rank`` (what the caller
    knows of the call), the rates' and the parts'. The work is done by a
    function written for the plan (``Plan.text``, a ``PlainTextFunction``),
    whose first line states ``_plain_rates``' long-context rule again (a call
    and a tuple per event cost the flusher 2,000 instructions); the tests
    compare it with ``plain_figures``.
    """
    text = plan.text
    return None if text is None else text.run(inp, w5, w1, read, out, rank)


#: A dollar in pico-dollars.
_DOLLAR: Final = 10**12


def charge_fee(bill: Bill, name: str, n: int, price: Decimal) -> None:
    """Set ``name`` to ``n`` requests at ``price`` USD each (web search).

    Its figure is exact at the price's own exponent, as Decimal multiplication keeps it.
    """
    _, digits, exp = price.as_tuple()
    assert isinstance(exp, int)
    scale = bill.align(exp)
    bill.parts[name] = [n * int("".join(map(str, digits))) * scale, exp]


#: The component names a call used, by the mask of their indices (bit i: ``COMPONENTS[i]``).
_NAMES_BY_MASK: Final = tuple(tuple(name for i, name in enumerate(COMPONENTS) if mask >> i & 1) for mask in range(32))
#: Functions ``_compile_text`` made, by what they were made from: rows share their rates.
_TEXT_FUNCTIONS: dict[tuple[object, ...], Callable[..., PlainText | None]] = {}


class PlainTextFunction:
    """``plain_text``'s work for one plan, written out for its rates as Python and compiled on first use.

    As ``attrs`` writes an ``__init__`` per class, each component's arithmetic
    is written with its rate's numbers in it: no loop over the five
    components with a tuple of seven facts each, and the checks a rate makes
    needless (a part under a millionth of a dollar, decimals to keep, a
    status rank) left out. The usual call's cost text, the flusher's largest
    piece of Python, takes 14 % fewer instructions (34,300 to 29,400 per call).
    The table has some twenty sets of rates, a few milliseconds of
    ``compile``: each is made when a call first needs it, and plans with the
    same rates share it.

    Args:
        rates: Each component's (coefficient, pico-dollars per token, decimals
            kept), or None where these rates cannot be written so (the
            function then says None).
        ranks: Each component's status rank.
        above: For a plan with long-context rates: the threshold, the
            modifier's rank, and the function of those rates (None if they
            cannot be written so), which a call over the threshold is handed to.
    """

    __slots__ = ("_key", "run")

    def __init__(
        self,
        rates: tuple[tuple[int, int, int], ...] | None,
        ranks: tuple[int, ...],
        above: tuple[int, int, PlainTextFunction | None] | None = None,
    ) -> None:
        self._key = (rates, ranks, above)
        #: ``run(input, write_5m, write_1h, read, output, rank)``: the compiled function once made.
        self.run: Callable[..., PlainText | None] = self._first

    @property
    def rates(self) -> tuple[tuple[int, int, int], ...] | None:
        """What the function was written for (see the class's arguments)."""
        return self._key[0]

    def _first(self, *counts: int) -> PlainText | None:
        found = _TEXT_FUNCTIONS.get(self._key)
        if found is None:
            found = _TEXT_FUNCTIONS[self._key] = _compile_text(*self._key)
        self.run = found
        return found(*counts)

    def __reduce__(self) -> tuple[type[PlainTextFunction], tuple[object, ...]]:
        return PlainTextFunction, self._key  # made again where it is unpickled: a compiled function is not picklable

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlainTextFunction) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        rates, ranks, above = self._key
        return f"PlainTextFunction(rates={rates!r}, ranks={ranks!r}, above={above!r})"


_COUNT_NAMES: Final = ("inp", "w5", "w1", "read", "out")
#: One component of the function ``_compile_text`` writes: ``n`` tokens cost ``units`` (``n x c``)
#: of ``10**-(6 + keep)`` USD. The optional lines (``{tiny}``, ``{pad_*}``, ``{rank}``) are left
#: out where the rate makes them needless.
_PART: Final = """\
    if {n}:
        units = {n} * {coefficient}
{tiny}\
        total += {n} * {value}
        if units < {dollar}:
            digits = str(units + {dollar})
            kept = digits.rstrip("0")
            size = len(kept) - 1
{pad_small}\
            texts.append("0." + kept[1:])
        else:
            whole, rest = divmod(units, {dollar})
            decimals = str(rest + {dollar})[1:]
            kept = decimals.rstrip("0")
            size = len(kept)
{pad_large}\
            texts.append(f"{{whole}}.{{kept}}" if size else str(whole))
        if size > most:
            most = size
        used |= {bit}
{rank}\
"""
_TOTAL: Final = """\
    if not most:
        text = str(total // {dollar})
    elif total < {dollar}:
        text = "0." + str(total + {dollar})[1 : most + 1]
    else:
        whole, rest = divmod(total, {dollar})
        text = f"{{whole}}.{{str(rest + {dollar})[1 : most + 1]}}"
    return text, NAMES[used], tuple(texts), total, STATUSES[rank]
"""


def _compile_text(
    rates: tuple[tuple[int, int, int], ...] | None,
    ranks: tuple[int, ...],
    above: tuple[int, int, PlainTextFunction | None] | None,
) -> Callable[..., PlainText | None]:
    """The source of ``plain_text`` for one plan (see ``PlainTextFunction``), compiled."""
    counts = ", ".join(_COUNT_NAMES)
    source = [f"def plain_text({counts}, rank):\n"]
    namespace: dict[str, Any] = {"NAMES": _NAMES_BY_MASK, "STATUSES": STATUSES}
    if above is not None:  # _plain_rates' rule: over the threshold, the long-context rates and their rank
        threshold, long_rank, namespace["LONG"] = above
        handed = "None" if above[2] is None else f"LONG.run({counts}, rank if rank > {long_rank} else {long_rank})"
        source.append(f"    if inp + w5 + w1 + read > {threshold}:\n        return {handed}\n")
    source.extend(["    return None\n"] if rates is None else _body(rates, ranks))
    exec(compile("".join(source), "<fluxgate plain_text>", "exec"), namespace)
    return namespace["plain_text"]  # type: ignore[no-any-return]


def _body(rates: tuple[tuple[int, int, int], ...], ranks: tuple[int, ...]) -> list[str]:
    """The lines of ``_compile_text``'s function that write the text at ``rates``."""
    source = ["    texts = []\n    total = most = used = 0\n"]
    for i, (n, (coefficient, value, keep), component_rank) in enumerate(zip(_COUNT_NAMES, rates, ranks, strict=True)):
        least = _pow10(keep)  # a millionth of a dollar, in units
        source.append(
            _PART.format(
                n=n,
                coefficient=coefficient,
                value=value,
                dollar=_pow10(6 + keep),
                bit=1 << i,
                # Where one token costs a millionth of a dollar or more, no part can cost less.
                tiny=f"        if units < {least}:\n            return None\n" if coefficient < least else "",
                # The figure keeps at least the rate's decimals (0.30 at $0.30).
                pad_small=f"            if size < {keep}:\n                size = {keep}\n"
                f"                kept = digits[: {keep + 1}]\n"
                if keep
                else "",
                pad_large=f"            if size < {keep}:\n                size = {keep}\n"
                f"                kept = decimals[:{keep}]\n"
                if keep
                else "",
                rank=f"        if rank < {component_rank}:\n            rank = {component_rank}\n"
                if component_rank
                else "",
            )
        )
    source.append(_TOTAL.format(dollar=_DOLLAR))
    return source
