"""The table beside another one: the comparison logic on small fake tables, and genai-prices' snapshot."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from fluxgate._pricing import Disagreement, OtherTable, compare, default_table, genai_prices_table


def ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp() * 1000)


NOW = ms("2026-11-27")


class TestCompare:
    def test_agreeing_figures_are_not_reported(self) -> None:
        """Figures equal in value (0.3 and "0.30", 15 and "15") are no disagreement."""
        theirs = {"claude-sonnet-4-6": {"input": "3", "cache_read": Decimal("0.3"), "output": 15}}
        assert compare(default_table(), theirs, at_ms=NOW) == []

    def test_a_differing_figure_is_one_disagreement_with_both_sources(self) -> None:
        """Each differing figure is reported with both values, our row's source and theirs."""
        theirs = OtherTable(
            name="acme-prices 1.0",
            prices={"claude-sonnet-4-6": {"input": "3", "output": "16"}},
            sources={"claude-sonnet-4-6": "acme-prices 1.0, sonnet-4.6"},
        )
        assert compare(default_table(), theirs, at_ms=NOW) == [
            Disagreement(
                model="claude-sonnet-4-6",
                component="output",
                ours=Decimal(15),
                ours_source="P2, P3, P4; RN",
                theirs=Decimal(16),
                theirs_source="acme-prices 1.0, sonnet-4.6",
            )
        ]

    def test_any_id_form_is_compared_with_its_row(self) -> None:
        """Their model ids go through our resolver: a Bedrock id is compared with the first-party row."""
        [found] = compare(default_table(), {"us.anthropic.claude-sonnet-4-5-20250929-v1:0": {"input": "4"}})
        assert (found.model, found.ours, found.theirs, found.theirs_source) == (
            "claude-sonnet-4-5-20250929",
            Decimal(3),
            Decimal(4),
            "other table",
        )

    def test_figures_only_they_give_are_disagreements(self) -> None:
        """A price for a model we leave unpriced, or a fast-mode price we lack, is 'no price' on our side."""
        theirs = {"claude-mythos-5-2": {"input": "8"}, "claude-fable-5-2": {"fast.input": "16"}}
        mythos, fable = compare(default_table(), theirs, at_ms=NOW)
        assert (mythos.model, mythos.ours, mythos.theirs) == ("claude-mythos-5-2", None, Decimal(8))
        assert mythos.ours_source == "no official price"
        assert (fable.component, fable.ours, fable.theirs) == ("fast.input", None, Decimal(16))
        assert fable.ours_source.endswith("not in the row")

    def test_a_model_we_do_not_know_is_reported(self) -> None:
        """A model with no row is one disagreement per figure, saying so."""
        [found] = compare(default_table(), {"gpt-4o": {"input": "2.50"}})
        assert (found.model, found.ours, found.theirs) == ("gpt-4o", None, Decimal("2.50"))
        assert found.ours_source.startswith("no row in ")

    def test_figures_they_leave_out_are_ignored(self) -> None:
        """A figure they don't give (None, or not a number) is not compared."""
        theirs = {"claude-sonnet-4-6": {"input": None, "output": "n/a", "fast.input": None}}
        assert compare(default_table(), theirs) == []

    @pytest.mark.parametrize(("day", "reported"), [("2026-03-12", False), ("2026-03-13", True)])
    def test_effective_dates_pick_the_row(self, day: str, reported: bool) -> None:
        """The 4.6 long-context tier agrees with a table that has it until 2026-03-12, and not from GA on."""
        theirs = {"claude-opus-4-6": {"long_context.threshold": 200_000, "long_context.input": "10"}}
        found = compare(default_table(), theirs, at_ms=ms(day))
        assert [d.component for d in found] == (["long_context.threshold", "long_context.input"] if reported else [])

    def test_batch_tier_and_web_search_figures(self) -> None:
        """Batch prices (50 %, tiers too), a tier's threshold and the web-search fee are compared."""
        theirs = {
            "claude-sonnet-4-5": {
                "batch.input": "1.5",
                "batch.long_context.output": "11.25",
                "long_context.threshold": 200_000,
                "web_search_per_1000": "10",
                "batch.cache_read": "0.30",
            }
        }
        [found] = compare(default_table(), theirs, at_ms=NOW)
        assert (found.component, found.ours, found.theirs) == ("batch.cache_read", Decimal("0.15"), Decimal("0.30"))

    def test_to_dict(self) -> None:
        """A disagreement is JSON-ready, figures as decimal strings."""
        [found] = compare(default_table(), {"claude-mythos-5-2": {"output": "40"}})
        assert found.to_dict() == {
            "model": "claude-mythos-5-2",
            "component": "output",
            "ours": None,
            "ours_source": "no official price",
            "theirs": "40",
            "theirs_source": "other table",
        }


needs_genai = pytest.mark.skipif(
    importlib.util.find_spec("genai_prices") is None, reason="genai-prices is not installed (it needs Python 3.11+)"
)
AT = datetime(2026, 11, 27, tzinfo=timezone.utc)


@needs_genai
class TestGenaiPrices:
    def test_reads_the_bundled_snapshot(self) -> None:
        """Known models come with their figures and source; models genai-prices lacks are left out."""
        other = genai_prices_table(["claude-sonnet-4-6", "claude-instant-1.1"], at=AT)
        assert other.name.startswith("genai-prices ")
        assert list(other.prices) == ["claude-sonnet-4-6"]
        figures = other.prices["claude-sonnet-4-6"]
        assert {"input", "cache_write_5m", "cache_write_1h", "cache_read", "output"} <= set(figures)
        assert other.sources["claude-sonnet-4-6"].startswith(f"{other.name}, anthropic/")

    def test_figures_are_comparable(self) -> None:
        """Every figure read is a finite Decimal under one of our component names."""
        keys = [row.key for row in default_table().rows()]
        other = genai_prices_table(keys, at=AT)
        allowed = {"input", "cache_write_5m", "cache_write_1h", "cache_read", "output"}
        for figures in other.prices.values():
            for component, figure in figures.items():
                assert isinstance(figure, Decimal)
                assert figure.is_finite()
                name = component.removeprefix("batch.").removeprefix("fast.").removeprefix("long_context.")
                assert name in {*allowed, "threshold", "web_search_per_1000"}, component

    def test_comparison_with_genai_prices_runs(self) -> None:
        """The shipped table compares with genai-prices; every disagreement names both sides' sources."""
        table = default_table()
        other = genai_prices_table(dict.fromkeys(row.key for row in table.rows()), at=AT)
        for found in compare(table, other, at_ms=NOW):
            assert found.theirs_source.startswith(other.name)
            assert found.ours_source
            assert found.ours != found.theirs
