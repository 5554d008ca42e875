"""Integer pricing: the same costs as the Decimal arithmetic it replaced, to the last digit.

``reference.py`` keeps that arithmetic. Every comparison checks the value and
its text (``str``), because events store costs as text: ``0.30`` must not
become ``0.3``.
"""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timezone
from decimal import Context, Decimal
from typing import Any
from unittest import mock

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxgate._models import Cost, Iteration, Usage, UsageFacts
from fluxgate._pricing import ExactCost, figure_float, figure_pico, figure_text, to_decimal
from fluxgate._pricing import table as table_module
from fluxgate._pricing.bill import STATUSES, IntRates, Plan, plain_figures, plain_text
from fluxgate._pricing.table import PriceTable, default_table

from ..conftest import fixtures_dir
from .reference import reference_price
from .test_table import usage_from_expected


def ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp() * 1000)


#: Moments that pick different rows: the 4.6 1M beta, Sonnet 5.5's first cache-read price, and today's table.
MOMENTS = [ms("2026-03-01"), ms("2026-10-01"), ms("2026-11-27")]
PICO = Decimal(10) ** 12


def assert_same(cost: Cost, reference: tuple[Decimal, dict[str, Decimal]] | None) -> None:
    """``cost`` equals the reference in value, text and pico-dollars, total and breakdown."""
    assert reference is not None
    total, breakdown = reference
    assert cost.total_usd is not None
    assert (cost.total_usd, str(cost.total_usd)) == (total, str(total))
    assert (cost.total_usd * PICO) == (total * PICO)
    assert {k: str(v) for k, v in cost.breakdown.items()} == {k: str(v) for k, v in breakdown.items()}


def assert_exact_same(exact: ExactCost, reference: tuple[Decimal, dict[str, Decimal]] | None) -> None:
    """The integer figures (what the SQLite store writes) give the reference's text, pico-dollars and float."""
    assert reference is not None
    total, breakdown = reference
    assert exact.total is not None
    assert figure_text(exact.total) == str(total)
    assert figure_pico(exact.total) == int((total * PICO).to_integral_value())
    assert figure_float(exact.total) == float(total)
    assert {k: figure_text(v) for k, v in exact.breakdown.items()} == {k: str(v) for k, v in breakdown.items()}


def assert_text_same(
    table: PriceTable, model: str, usage: Usage, *, at_ms: int | None = None, batch: bool = False, **kw: Any
) -> bool:
    """``plain_text`` gives what ``price_exact``'s figures give as text (when it prices the call at all).

    Given the flusher's facts (``UsageFacts``, which take ``plain_text``'s short path) it gives the
    same as given the ``Usage``, the call priced or not.
    """
    found = table.plain_text(model, usage, at_ms=at_ms, batch=batch, **kw)
    facts = UsageFacts(**attrs.asdict(usage, recurse=False))
    assert table.plain_text(model, facts, at_ms=at_ms, batch=batch, **kw) == found
    if found is None:
        return False
    exact = table.price_exact(model, usage, at_ms=at_ms, batch=batch, **kw)
    assert exact.total is not None
    total, names, texts, pico, status = found
    assert total == figure_text(exact.total)
    assert dict(zip(names, texts, strict=True)) == {k: figure_text(v) for k, v in exact.breakdown.items()}
    assert names == tuple(exact.breakdown)  # the breakdown's order, component by component
    assert pico == figure_pico(exact.total)
    assert status == exact.status
    return True


def _recordings() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(fixtures_dir().glob("*.json")):
        expected = json.loads(path.read_text())["expected"]
        if expected["model"] is not None and expected["input_tokens"] is not None:
            found.append((path.name, expected))
    return found


RECORDINGS = _recordings()


class TestRecordings:
    def test_recordings_are_found(self) -> None:
        """The fixture set has the recordings this file prices (a rename would silently skip them)."""
        assert len(RECORDINGS) >= 30

    @pytest.mark.parametrize(("name", "expected"), RECORDINGS, ids=[name for name, _ in RECORDINGS])
    @pytest.mark.parametrize("at_ms", MOMENTS)
    def test_integer_and_decimal_agree(self, name: str, expected: dict[str, Any], at_ms: int) -> None:
        """Every recorded usage costs the same both ways, plain and under every modifier."""
        table = default_table()
        model = expected["model"]
        usage = usage_from_expected(expected)
        for batch in (False, True):
            for geo in (None, "us"):
                for regional in (None, True):
                    variant = attrs.evolve(usage, inference_geo=geo)
                    cost = table.price(model, variant, at_ms=at_ms, batch=batch, regional=regional)
                    reference = reference_price(table, model, variant, at_ms=at_ms, batch=batch, regional=regional)
                    assert_same(cost, reference)
                    exact = table.price_exact(model, variant, at_ms=at_ms, batch=batch, regional=regional)
                    assert_exact_same(exact, reference)
                    assert_text_same(table, model, variant, at_ms=at_ms, batch=batch, regional=regional)


# --- any usage --------------------------------------------------------------------------

PRICED = sorted({row.key for row in default_table().rows() if row.priced})
ID_FORMS = [
    *PRICED,
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "eu.anthropic.claude-opus-4-6-v1",
    "claude-3-5-sonnet-v2@20241022",
    "claude-sonnet-4-6[1m]",
]
counts = st.one_of(st.integers(0, 3), st.integers(0, 300_000), st.integers(0, 10**10))
#: Counts whose parts end in zeros: a figure that keeps its rate's decimals (1M tokens at $0.30: "0.30").
round_counts = st.sampled_from([10**5, 10**6, 2 * 10**6, 10**7])


@st.composite
def iterations(draw: st.DrawFn) -> Iteration:
    kind = draw(st.sampled_from(["compaction", "message", "advisor_message", "fallback_message"]))
    split = draw(st.booleans())
    w5, w1 = draw(counts), draw(counts)
    return Iteration(
        type=kind,
        model=draw(st.sampled_from(PRICED)) if kind.endswith("_message") and kind != "message" else None,
        input_tokens=draw(counts),
        output_tokens=draw(counts),
        cache_creation_input_tokens=w5 + w1,
        cache_creation_5m_input_tokens=w5 if split else None,
        cache_creation_1h_input_tokens=w1 if split else None,
        cache_read_input_tokens=draw(counts),
    )


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    split = draw(st.booleans())
    w5, w1 = draw(counts), draw(counts)
    return Usage(
        input_tokens=draw(counts),
        output_tokens=draw(counts),
        cache_creation_input_tokens=w5 + w1 + draw(st.sampled_from([0, 0, 7])),
        cache_creation_5m_input_tokens=w5 if split else None,
        cache_creation_1h_input_tokens=w1 if split else None,
        cache_read_input_tokens=draw(counts),
        web_search_requests=draw(st.integers(0, 50)),
        service_tier=draw(st.sampled_from([None, "standard", "priority", "batch"])),
        speed=draw(st.sampled_from([None, "standard", "fast"])),
        inference_geo=draw(st.sampled_from([None, "global", "not_available", "us", "US"])),
        iterations=tuple(draw(st.lists(iterations(), max_size=3))),
    )


class TestAnyUsage:
    @settings(max_examples=500, deadline=None)
    @given(
        model=st.sampled_from(ID_FORMS),
        usage=usages(),
        at_ms=st.integers(ms("2026-01-01"), ms("2027-01-01")),
        batch=st.booleans(),
        regional=st.sampled_from([None, False, True]),
    )
    def test_integer_and_decimal_agree(
        self, model: str, usage: Usage, at_ms: int, batch: bool, regional: bool | None
    ) -> None:
        """Any usage on any priced row, with any modifiers and date, costs the same both ways."""
        table = default_table()
        cost = table.price(model, usage, at_ms=at_ms, batch=batch, regional=regional)
        reference = reference_price(table, model, usage, at_ms=at_ms, batch=batch, regional=regional)
        assert_same(cost, reference)
        assert_exact_same(table.price_exact(model, usage, at_ms=at_ms, batch=batch, regional=regional), reference)
        assert_text_same(table, model, usage, at_ms=at_ms, batch=batch, regional=regional)

    @settings(max_examples=500, deadline=None)
    @given(
        model=st.sampled_from(ID_FORMS),
        usage=usages(),
        at_ms=st.integers(ms("2026-01-01"), ms("2027-01-01")),
        regional=st.sampled_from([None, False]),
    )
    def test_the_usual_call_agrees(self, model: str, usage: Usage, at_ms: int, regional: bool | None) -> None:
        """Calls without modifiers, iterations or fees (priced in small integers) cost what the reference says."""
        table = default_table()
        usage = attrs.evolve(usage, web_search_requests=0, iterations=(), speed=None, inference_geo=None)
        if usage.service_tier == "batch":
            usage = attrs.evolve(usage, service_tier="standard")
        reference = reference_price(table, model, usage, at_ms=at_ms, regional=regional)
        assert_same(table.price(model, usage, at_ms=at_ms, regional=regional), reference)
        exact = table.price_exact(model, usage, at_ms=at_ms, regional=regional)
        assert_exact_same(exact, reference)
        with mock.patch.object(table_module, "plain_figures", return_value=None):  # the general path
            assert table.price_exact(model, usage, at_ms=at_ms, regional=regional) == exact
        assert_text_same(table, model, usage, at_ms=at_ms, regional=regional)

    @pytest.mark.parametrize("model", ID_FORMS)
    @pytest.mark.parametrize(
        "negative",
        [{"input_tokens": -5}, {"output_tokens": -5}, {"cache_read_input_tokens": -5},
         {"cache_creation_5m_input_tokens": -5, "cache_creation_1h_input_tokens": 5},
         {"cache_creation_5m_input_tokens": 5, "cache_creation_1h_input_tokens": -5}],
    )  # fmt: skip
    def test_a_negative_count_is_never_the_usual_call(self, model: str, negative: dict[str, int]) -> None:
        """A usage with a negative count (a hostile payload) is priced as partial by either path, never as text.

        The split's parts may sum to the total written (0) with one of them negative.
        """
        table = default_table()
        counts = {
            "input_tokens": 1200,
            "output_tokens": 300,
            "cache_read_input_tokens": 800,
            "cache_creation_input_tokens": 0,
            "cache_creation_5m_input_tokens": 0,
            "cache_creation_1h_input_tokens": 0,
        }
        usage = Usage(**{**counts, **negative}, service_tier="standard")
        assert not assert_text_same(table, model, usage, regional=False)
        assert table.price_exact(model, usage, regional=False).status == "partial"

    @pytest.mark.parametrize("model", ID_FORMS)
    @pytest.mark.parametrize(
        "counts",
        [(0, 0, 0, 0, 0), (1200, 0, 0, 800, 300), (1, 0, 0, 0, 1), (7, 3, 0, 0, 0),
         (10**6, 10**6, 10**6, 10**6, 10**6), (199_999, 1, 0, 0, 1), (250_000, 0, 0, 0, 40_000),
         (123_456_789, 98_765, 4_321, 10**9, 333), (10**12, 0, 0, 0, 0)],
    )  # fmt: skip
    def test_the_usual_call_as_text(self, model: str, counts: tuple[int, int, int, int, int]) -> None:
        """Usual calls of every size, on every row, are written as text from pico-dollars, as their figures say.

        Token counts above and below the long-context threshold, parts under a millionth of a dollar (left to the
        figures: plain_text says None), whole dollars and thousands of them.
        """
        table = default_table()
        inp, w5, w1, read, out = counts
        usage = Usage(
            input_tokens=inp,
            output_tokens=out,
            cache_creation_input_tokens=w5 + w1,
            cache_creation_5m_input_tokens=w5,
            cache_creation_1h_input_tokens=w1,
            cache_read_input_tokens=read,
            service_tier="standard",
        )
        written = assert_text_same(table, model, usage, regional=False)  # a Bedrock "eu." id is regional
        row = table.row(model)
        assert row is not None
        assert row.rates is not None
        # A part under a millionth of a dollar: n tokens at r USD per million tokens, n x r < 1.
        tiny = any(n and n * rate < 1 for n, rate in zip(counts, row.rates.as_tuple(), strict=True))
        assert written is not tiny

    def test_each_period_prices_from_its_first_millisecond(self) -> None:
        """Around each change of a row's prices, the flusher's short path takes the period the general path takes.

        The last millisecond before a change is priced at the old rates, the first of it at the new ones.
        """
        table = default_table()
        usage = Usage(input_tokens=1200, output_tokens=300, cache_read_input_tokens=800, service_tier="standard")
        changes = [(row.key, row.effective_from_ms) for row in table.rows() if row.effective_from_ms is not None]
        assert changes  # the shipped table has rows whose prices changed
        for key, since in changes:
            assert table.row(key, at_ms=since).effective_from_ms == since  # type: ignore[union-attr]
            assert table.row(key, at_ms=since - 1).effective_from_ms != since  # type: ignore[union-attr]
            before = table.plain_text(key, UsageFacts(**attrs.asdict(usage, recurse=False)), at_ms=since - 1)
            after = table.plain_text(key, UsageFacts(**attrs.asdict(usage, recurse=False)), at_ms=since)
            assert assert_text_same(table, key, usage, at_ms=since - 1) == (before is not None)
            assert assert_text_same(table, key, usage, at_ms=since) == (after is not None)

    @pytest.mark.parametrize("facts", [False, True], ids=["Usage", "UsageFacts"])
    def test_only_the_usual_call_is_written_as_text(self, facts: bool) -> None:
        """A modifier, iterations, a fee, an inexact count or an unpriced model leave the call to price_exact.

        The same for the flusher's ``UsageFacts``, which ``plain_text`` reads on a short path of its own.
        """
        table = default_table()

        def given(usage: Usage, **changes: Any) -> Usage | UsageFacts:
            usage = attrs.evolve(usage, **changes)
            return UsageFacts(**attrs.asdict(usage, recurse=False)) if facts else usage

        usual = Usage(input_tokens=1000, output_tokens=500, service_tier="standard")
        assert table.plain_text("claude-sonnet-4-6", given(usual)) is not None
        assert table.plain_text("claude-sonnet-4-6", given(usual), batch=True) is None
        assert table.plain_text("claude-sonnet-4-6", given(usual), regional=True) is None
        assert table.plain_text("us.anthropic.claude-sonnet-4-5-20250929-v1:0", given(usual)) is None  # regional id
        assert table.plain_text("claude-sonnet-4-6", given(usual, speed="fast")) is None
        assert table.plain_text("claude-sonnet-4-6", given(usual, inference_geo="us")) is None
        assert table.plain_text("claude-sonnet-4-6", given(usual, service_tier="batch")) is None
        assert table.plain_text("claude-sonnet-4-6", given(usual, web_search_requests=1)) is None
        assert table.plain_text("claude-sonnet-4-6", given(usual, cache_creation_input_tokens=10)) is None
        split = given(usual, cache_creation_input_tokens=10, cache_creation_5m_input_tokens=4)
        assert table.plain_text("claude-sonnet-4-6", split) is None  # 6 written tokens without a TTL
        iteration = Iteration(type="compaction", model=None, input_tokens=1, output_tokens=1)
        assert table.plain_text("claude-sonnet-4-6", given(usual, iterations=(iteration,))) is None
        assert table.plain_text("no-such-model", given(usual)) is None
        assert table.plain_text(None, given(usual)) is None
        # What the API sends on a usual call today: a region and a speed that change no price.
        plain = table.plain_text("claude-sonnet-4-6", given(usual))
        for geo in ("not_available", "global", None):
            for speed in ("standard", None):
                assert table.plain_text("claude-sonnet-4-6", given(usual, inference_geo=geo, speed=speed)) == plain
        assert table.plain_text("claude-sonnet-4-6", given(usual, inference_geo="US")) is None
        priority = table.plain_text("claude-sonnet-4-6", given(usual, service_tier="priority"))
        assert priority is not None
        assert priority[4] == "estimated_price"

    @settings(max_examples=200, deadline=None)
    @given(usage=usages(), batch=st.booleans(), data=st.data())
    def test_overrides_finer_than_pico_dollars_stay_exact(self, usage: Usage, batch: bool, data: st.DataObject) -> None:
        """Override rates with more than six decimals get a finer unit and still match, beside shipped rows."""
        rate = st.decimals(min_value=0, max_value=100, places=data.draw(st.integers(0, 14)), allow_nan=False)
        row = {
            name: str(data.draw(rate)) for name in ("input", "cache_write_5m", "cache_write_1h", "cache_read", "output")
        }
        table = default_table().with_overrides({"house-model": row})
        usage = attrs.evolve(
            usage,
            iterations=tuple(attrs.evolve(it, model="house-model") if it.model else it for it in usage.iterations),
        )
        for model in ("house-model", "claude-sonnet-4-6"):
            cost = table.price(model, usage, batch=batch)
            reference = reference_price(table, model, usage, batch=batch)
            assert_same(cost, reference)
            assert_exact_same(table.price_exact(model, usage, batch=batch), reference)
            assert_text_same(table, model, usage, batch=batch)


class TestFigures:
    @settings(max_examples=2000, deadline=None)
    @given(
        coefficient=st.one_of(st.integers(-(10**30), 10**30), st.integers(0, 10**3)),
        exp=st.integers(-40, 12),
    )
    def test_text_pico_and_float_are_the_decimals(self, coefficient: int, exp: int) -> None:
        """A figure's text, pico-dollars and float are its Decimal's str(), rounded scaleb(12) and float()."""
        value = Decimal(coefficient).scaleb(exp, Context(prec=100))
        assert to_decimal((coefficient, exp)).as_tuple() == value.as_tuple()
        assert figure_text((coefficient, exp)) == str(value)
        assert figure_pico((coefficient, exp)) == int(value.scaleb(12, Context(prec=100)).to_integral_value())
        assert figure_float((coefficient, exp)) == float(value)

    @pytest.mark.parametrize(
        ("figure", "text"),
        [((0, 0), "0"), ((0, -8), "0E-8"), ((8, -8), "8E-8"), ((3702, -6), "0.003702"), ((30, -2), "0.30"),
         ((1, 3), "1E+3"), ((12345, -2), "123.45"), ((-5, -7), "-5E-7")],
    )  # fmt: skip
    def test_text_keeps_the_exponent(self, figure: tuple[int, int], text: str) -> None:
        """Trailing zeros stay (0.30 is not 0.3), and small figures are in exponent form, as Decimal writes them."""
        assert figure_text(figure) == text


class TestCompiledRates:
    def test_shipped_rates_are_integer_pico_dollars(self) -> None:
        """Every shipped rate compiles to pico-dollars per token: USD per million tokens x 10**6, exactly."""
        for row in default_table().rows():
            plan = Plan.compile(row)
            assert plan.unit == -12
            if row.rates is not None:
                assert plan.standard is not None
                assert [Decimal(v) for v in plan.standard.values] == [r * 10**6 for r in row.rates.as_tuple()]

    def test_finer_rates_get_a_finer_unit(self) -> None:
        """A rate with nine decimals per million tokens compiles to 10**-15 USD per token."""
        rates = dict.fromkeys(("input", "cache_write_5m", "cache_write_1h", "cache_read"), "0.000000001")
        table = PriceTable.default().with_overrides({"fine": {**rates, "output": "1"}})
        row = table.row("fine")
        assert row is not None
        plan = Plan.compile(row)
        assert plan.unit == -15
        assert plan.standard is not None
        assert plan.standard.values[0] == 1

    @settings(max_examples=300, deadline=None)
    @given(data=st.data())
    def test_every_rate_set_writes_its_text_as_its_figures_say(self, data: st.DataObject) -> None:
        """The function ``plain_text`` writes for each set of rates gives what the figures give as text.

        Every set of every row, standard and long-context (each its own function): the text of the
        figures ``plain_figures`` makes, or None where a part is under a millionth of a dollar.
        """
        for row in default_table().rows():
            plan = Plan.compile(row)
            for rates in (plan.standard, plan.long):
                if rates is None:
                    continue
                only = attrs.evolve(plan, standard=rates, long=None)
                given = data.draw(st.tuples(*[counts | round_counts] * 5), label=row.key)
                found = plain_text(only, *given)
                figures = plain_figures(only, given)
                assert figures is not None
                total, breakdown, rank = figures
                tiny = any(n and n * c < 10**k for n, c, k in self._parts(rates, given))
                if tiny:
                    assert found is None
                    continue
                assert found == (
                    figure_text(total),
                    tuple(breakdown),
                    tuple(map(figure_text, breakdown.values())),
                    figure_pico(total),
                    STATUSES[rank],
                )

    @staticmethod
    def _parts(rates: IntRates, given: tuple[int, ...]) -> list[tuple[int, int, int]]:
        """(tokens, coefficient, decimals) per component: ``n x c`` units of ``10**-(6 + k)`` USD."""
        return [(n, c, -e) for n, c, e in zip(given, rates.coefficients, rates.exps, strict=True)]

    @pytest.mark.parametrize("mark", ["derived", "third_party"])
    def test_over_the_threshold_the_long_context_rank_counts(self, mark: str) -> None:
        """A row whose long-context prices are derived (or third-party) writes that status above the
        threshold only, as its figures do."""
        row = next(r for r in default_table().rows() if r.long_context is not None and r.rates is not None)
        plan = Plan.compile(attrs.evolve(row, **{mark: frozenset({"long_context"})}))
        assert plan.long is not None
        threshold = plan.long_threshold
        for case in [(threshold, 0, 0, 0, 100), (threshold + 1, 0, 0, 0, 100), (threshold // 2, 0, 0, threshold, 7)]:
            found = plain_text(plan, *case)
            figures = plain_figures(plan, case)
            assert found is not None
            assert figures is not None
            assert found[4] == STATUSES[figures[2]]
            assert (found[4] == "priced") is (sum(case[:4]) <= threshold)

    def test_a_compiled_plan_pickles(self) -> None:
        """A plan whose text function was compiled pickles, and prices the same where it is unpickled."""
        plan = Plan.compile(default_table().row("claude-sonnet-4-6"))  # type: ignore[arg-type]
        found = plain_text(plan, 1200, 0, 0, 800, 300)
        assert found is not None
        assert plain_text(pickle.loads(pickle.dumps(plan)), 1200, 0, 0, 800, 300) == found
