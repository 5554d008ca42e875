"""The price table, the resolver and the cost of a call.

Every expected figure is written here as arithmetic from the per-million
prices published in ``shared/reference/anthropic-pricing.md``, never copied
from the engine's output.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxgate._errors import ConfigurationError
from fluxgate._models import Iteration, Usage
from fluxgate._pricing.table import PriceTable, default_table

from ..conftest import fixtures_dir

M = 1_000_000


def usd(tokens: int, per_million: str) -> Decimal:
    """``tokens`` at a published USD-per-million-tokens price."""
    return Decimal(tokens) * Decimal(per_million) / M


def ms(day: str, time: str = "00:00:00") -> int:
    """Unix milliseconds of a UTC date and time."""
    moment = datetime.fromisoformat(f"{day}T{time}").replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


NOW = ms("2026-11-27")


@pytest.fixture
def table() -> PriceTable:
    """A fresh copy of the shipped table (its own once-per-model warnings)."""
    return PriceTable.default().with_overrides({})


def split_usage(**kwargs: Any) -> Usage:
    """A Usage whose cache writes are split by TTL (zero unless given)."""
    kwargs.setdefault("cache_creation_5m_input_tokens", 0)
    kwargs.setdefault("cache_creation_1h_input_tokens", 0)
    kwargs.setdefault(
        "cache_creation_input_tokens",
        kwargs["cache_creation_5m_input_tokens"] + kwargs["cache_creation_1h_input_tokens"],
    )
    return Usage(**kwargs)


class TestPlainCalls:
    @pytest.mark.parametrize(
        ("model", "inp", "out"),
        [
            ("claude-opus-5-5", "4", "20"),
            ("claude-sonnet-5-5", "2", "10"),
            ("claude-haiku-5-5", "0.10", "0.50"),
            ("claude-fable-5-2", "8", "40"),
            ("claude-fable-5-1", "10", "50"),
            ("claude-mythos-5-1", "10", "50"),
            ("claude-opus-5", "5", "25"),
            ("claude-sonnet-5", "2", "10"),
            ("claude-opus-4-8", "5", "25"),
            ("claude-opus-4-6", "5", "25"),
            ("claude-sonnet-4-6", "3", "15"),
            ("claude-haiku-4-5", "1", "5"),
            ("claude-opus-4-5-20251101", "5", "25"),
            ("claude-sonnet-4-5-20250929", "3", "15"),
            ("claude-3-5-haiku-20241022", "0.80", "4"),
            ("claude-3-haiku-20240307", "0.25", "1.25"),
            ("claude-3-opus-20240229", "15", "75"),
        ],
    )
    def test_input_and_output(self, table: PriceTable, model: str, inp: str, out: str) -> None:
        """A call with only input and output tokens costs tokens times the published rates."""
        cost = table.price(model, Usage(input_tokens=1234, output_tokens=567), at_ms=NOW)
        assert cost.total_usd == usd(1234, inp) + usd(567, out)
        assert dict(cost.breakdown) == {"input": usd(1234, inp), "output": usd(567, out)}
        assert cost.status == "priced"
        assert cost.price_version == table.version

    def test_zero_usage_costs_zero(self, table: PriceTable) -> None:
        """A call that reports no tokens costs exactly zero, priced, with an empty breakdown."""
        cost = table.price("claude-opus-4-5-20251101", Usage())
        assert cost.total_usd == Decimal(0)
        assert (cost.status, dict(cost.breakdown)) == ("priced", {})

    def test_thinking_is_not_billed_twice(self, table: PriceTable) -> None:
        """reasoning_tokens are already inside output_tokens and add nothing."""
        with_thinking = table.price(
            "claude-sonnet-4-6", Usage(input_tokens=46, output_tokens=417, reasoning_tokens=300)
        )
        assert with_thinking.total_usd == usd(46, "3") + usd(417, "15")

    def test_breakdown_sums_to_total(self, table: PriceTable) -> None:
        """The breakdown adds up to the total exactly."""
        usage = split_usage(
            input_tokens=7,
            output_tokens=11,
            cache_creation_5m_input_tokens=13,
            cache_creation_1h_input_tokens=17,
            cache_read_input_tokens=19,
            web_search_requests=2,
        )
        cost = table.price("claude-opus-4-6", usage)
        assert sum(cost.breakdown.values(), Decimal(0)) == cost.total_usd


class TestCache:
    def test_5m_and_1h_writes_with_reads(self, table: PriceTable) -> None:
        """5-minute and 1-hour writes and reads each use their own published rate."""
        usage = split_usage(
            input_tokens=100,
            output_tokens=500,
            cache_creation_5m_input_tokens=2000,
            cache_creation_1h_input_tokens=3000,
            cache_read_input_tokens=10_000,
        )
        cost = table.price("claude-sonnet-4-6", usage)
        assert dict(cost.breakdown) == {
            "input": usd(100, "3"),
            "cache_write_5m": usd(2000, "3.75"),
            "cache_write_1h": usd(3000, "6"),
            "cache_read": usd(10_000, "0.30"),
            "output": usd(500, "15"),
        }
        assert cost.status == "priced"

    def test_total_without_split_is_partial_at_5m(self, table: PriceTable) -> None:
        """Cache writes reported only as a total are billed at the 5m rate and marked partial."""
        usage = Usage(input_tokens=18, output_tokens=100, cache_creation_input_tokens=1031)
        cost = table.price("claude-sonnet-4-20250514", usage)
        assert cost.total_usd == usd(18, "3") + usd(1031, "3.75") + usd(100, "15")
        assert cost.status == "partial"

    def test_haiku_3_uses_printed_cache_rates(self, table: PriceTable) -> None:
        """Claude Haiku 3 cache rates are the printed 0.30 and 0.03, not 1.25x and 0.1x."""
        usage = split_usage(cache_creation_5m_input_tokens=10_000, cache_read_input_tokens=10_000)
        cost = table.price("claude-3-haiku-20240307", usage)
        assert cost.total_usd == usd(10_000, "0.30") + usd(10_000, "0.03")

    def test_per_model_read_rates(self, table: PriceTable) -> None:
        """Opus 5.5 and Fable 5.1 read the cache at their own published rates."""
        usage = Usage(cache_read_input_tokens=1_000_000)
        assert table.price("claude-opus-5-5", usage).total_usd == usd(1_000_000, "0.20")
        assert table.price("claude-fable-5-1", usage).total_usd == usd(1_000_000, "0.25")

    @pytest.mark.parametrize("model", ["claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20241022"])
    def test_sonnet_3_5_cache_is_priced(self, table: PriceTable, model: str) -> None:
        """Claude 3.5 Sonnet cache uses the 2025 pricing page's 3.75 / 6 / 0.30 and is priced (issue 16)."""
        usage = split_usage(
            input_tokens=10,
            cache_creation_5m_input_tokens=2000,
            cache_creation_1h_input_tokens=3000,
            cache_read_input_tokens=1000,
            output_tokens=10,
        )
        cost = table.price(model, usage)
        expected = usd(10, "3") + usd(2000, "3.75") + usd(3000, "6") + usd(1000, "0.30") + usd(10, "15")
        assert (cost.total_usd, cost.status) == (expected, "priced")
        row = table.row(model)
        assert row is not None
        assert (row.derived, "P-2025" in row.source) == (frozenset(), True)

    def test_fable_5_2_cache_is_estimated(self, table: PriceTable) -> None:
        """Fable 5.2 cache figures are third-party only, so a call using them is estimated."""
        plain = table.price("claude-fable-5-2", Usage(input_tokens=100, output_tokens=100))
        assert plain.status == "priced"
        cached = table.price("claude-fable-5-2", split_usage(input_tokens=100, cache_read_input_tokens=100))
        assert cached.total_usd == usd(100, "8") + usd(100, "0.20")
        assert cached.status == "estimated_price"


class TestBatch:
    def test_halves_every_token_component(self, table: PriceTable) -> None:
        """The batch discount halves input, output, cache writes and reads alike."""
        usage = split_usage(
            input_tokens=1000,
            output_tokens=2000,
            cache_creation_5m_input_tokens=3000,
            cache_creation_1h_input_tokens=4000,
            cache_read_input_tokens=5000,
        )
        expected = (
            usd(1000, "1.50") + usd(2000, "7.50") + usd(3000, "3.75") / 2 + usd(4000, "6") / 2 + usd(5000, "0.30") / 2
        )
        assert table.price("claude-sonnet-4-5", usage, batch=True).total_usd == expected

    def test_service_tier_batch_implies_batch(self, table: PriceTable) -> None:
        """usage.service_tier == 'batch' applies the discount without the flag."""
        usage = Usage(input_tokens=1000, output_tokens=1000, service_tier="batch")
        assert table.price("claude-opus-4-6", usage).total_usd == usd(1000, "2.50") + usd(1000, "12.50")

    def test_fable_5_2_batch_is_estimated(self, table: PriceTable) -> None:
        """Fable 5.2 batch figures are third-party only, so a batch call is estimated."""
        cost = table.price("claude-fable-5-2", Usage(input_tokens=1000, output_tokens=1000), batch=True)
        assert cost.total_usd == usd(1000, "4") + usd(1000, "20")
        assert cost.status == "estimated_price"

    def test_priority_tier_is_estimated(self, table: PriceTable) -> None:
        """Priority Tier has no per-token price, so it is priced at standard rates and estimated."""
        cost = table.price("claude-sonnet-4-6", Usage(input_tokens=1000, service_tier="priority"))
        assert (cost.total_usd, cost.status) == (usd(1000, "3"), "estimated_price")


#: Published rates before the 1M context went GA: standard, then > 200K (input, 5m, 1h, read, output).
BETA_TIERS = {
    "claude-opus-4-6": (("5", "6.25", "10", "0.50", "25"), ("10", "12.50", "20", "1", "37.50")),
    "claude-sonnet-4-6": (("3", "3.75", "6", "0.30", "15"), ("6", "7.50", "12", "0.60", "22.50")),
}


class TestLongContext:
    def test_sonnet_4_5_at_200k_is_standard(self, table: PriceTable) -> None:
        """A Sonnet 4.5 prompt of exactly 200,000 tokens (input + writes + reads) stays at standard rates."""
        usage = split_usage(
            input_tokens=100_000,
            cache_creation_5m_input_tokens=50_000,
            cache_read_input_tokens=50_000,
            output_tokens=10_000,
        )
        cost = table.price("claude-sonnet-4-5-20250929", usage)
        assert cost.total_usd == usd(100_000, "3") + usd(50_000, "3.75") + usd(50_000, "0.30") + usd(10_000, "15")

    def test_sonnet_4_5_above_200k_moves_every_token(self, table: PriceTable) -> None:
        """One token over 200,000 prices all tokens, output and cache too, at the long-context rates."""
        usage = split_usage(
            input_tokens=100_001,
            cache_creation_5m_input_tokens=40_000,
            cache_creation_1h_input_tokens=10_000,
            cache_read_input_tokens=50_000,
            output_tokens=10_000,
        )
        cost = table.price("claude-sonnet-4-5", usage)
        assert dict(cost.breakdown) == {
            "input": usd(100_001, "6"),
            "cache_write_5m": usd(40_000, "7.50"),
            "cache_write_1h": usd(10_000, "12"),
            "cache_read": usd(50_000, "0.60"),
            "output": usd(10_000, "22.50"),
        }

    def test_output_does_not_count_toward_the_tier(self, table: PriceTable) -> None:
        """Output tokens never move a request into the long-context tier."""
        cost = table.price("claude-sonnet-4-20250514", Usage(input_tokens=200_000, output_tokens=64_000))
        assert cost.total_usd == usd(200_000, "3") + usd(64_000, "15")

    def test_sonnet_4_6_has_no_premium(self, table: PriceTable) -> None:
        """Claude 4.6 and later price the full 1M context at standard rates."""
        cost = table.price("claude-sonnet-4-6", Usage(input_tokens=900_000))
        assert cost.total_usd == usd(900_000, "3")

    def long_usage(self, prompt: int) -> Usage:
        """A prompt of ``prompt`` tokens split over input, both cache writes and reads, plus output."""
        return split_usage(
            input_tokens=prompt - 61_000,
            cache_creation_5m_input_tokens=1000,
            cache_creation_1h_input_tokens=10_000,
            cache_read_input_tokens=50_000,
            output_tokens=2000,
        )

    def rated(self, usage: Usage, rates: tuple[str, ...]) -> Decimal:
        counts = (
            usage.input_tokens,
            usage.cache_creation_5m_input_tokens or 0,
            usage.cache_creation_1h_input_tokens or 0,
            usage.cache_read_input_tokens,
            usage.output_tokens,
        )
        return sum((usd(n, rate) for n, rate in zip(counts, rates, strict=True)), Decimal(0))

    @pytest.mark.parametrize("model", ["claude-opus-4-6", "claude-sonnet-4-6"])
    def test_4_6_over_200k_before_ga_moves_every_token(self, table: PriceTable, model: str) -> None:
        """Before 2026-03-13 (1M beta) a 4.6 prompt over 200,000 tokens prices all tokens at the tier (issue 16)."""
        standard, tier = BETA_TIERS[model]
        usage = self.long_usage(200_001)
        cost = table.price(model, usage, at_ms=ms("2026-03-12", "23:59:59"))
        assert (cost.total_usd, cost.status) == (self.rated(usage, tier), "priced")
        at_limit = table.price(model, self.long_usage(200_000), at_ms=ms("2026-03-12"))
        assert at_limit.total_usd == self.rated(self.long_usage(200_000), standard)

    @pytest.mark.parametrize("model", ["claude-opus-4-6", "claude-sonnet-4-6"])
    def test_4_6_from_ga_is_standard(self, table: PriceTable, model: str) -> None:
        """From 2026-03-13 (1M context GA) the same 4.6 prompt is priced at standard rates."""
        standard, _ = BETA_TIERS[model]
        usage = self.long_usage(900_000)
        assert table.price(model, usage, at_ms=ms("2026-03-13")).total_usd == self.rated(usage, standard)

    def test_opus_4_6_fast_has_no_long_context_charge(self, table: PriceTable) -> None:
        """Fast mode covers the full context window: a long fast prompt before GA pays fast rates only."""
        usage = Usage(input_tokens=250_000, output_tokens=1000, speed="fast")
        cost = table.price("claude-opus-4-6", usage, at_ms=ms("2026-03-01"))
        assert cost.total_usd == usd(250_000, "30") + usd(1000, "150")

    def test_4_6_tier_stacks_with_batch_and_data_residency(self, table: PriceTable) -> None:
        """Batch and the US data-residency 1.1x apply on top of the 4.6 long-context rates."""
        usage = Usage(input_tokens=300_000, output_tokens=1000, inference_geo="us")
        cost = table.price("claude-sonnet-4-6", usage, at_ms=ms("2026-03-01"), batch=True)
        assert cost.total_usd == (usd(300_000, "6") + usd(1000, "22.50")) / 2 * Decimal("1.1")

    def test_4_6_rows_are_effective_dated(self, table: PriceTable) -> None:
        """The table lists the 4.6 beta period with its tier and the GA period without one, with sources."""
        for model in BETA_TIERS:
            beta, ga = (row for row in table.rows() if row.key == model)
            assert beta.long_context is not None
            assert (beta.long_context.threshold, beta.effective_from) == (200_000, None)
            assert "P-2602" in beta.long_context.source
            assert (ga.long_context, ga.effective_from, ga.fast) == (None, "2026-03-13", beta.fast)


class TestHaikuTiers:
    def test_tier_1_up_to_100k(self, table: PriceTable) -> None:
        """A Haiku 5.5 prompt of 100,000 tokens is priced at tier-1 rates."""
        usage = split_usage(input_tokens=60_000, cache_read_input_tokens=40_000, output_tokens=1000)
        cost = table.price("claude-haiku-5-5", usage)
        assert cost.total_usd == usd(60_000, "0.10") + usd(40_000, "0.01") + usd(1000, "0.50")

    def test_tier_2_above_100k(self, table: PriceTable) -> None:
        """A Haiku 5.5 prompt over 100,000 tokens prices the whole request at tier-2 rates."""
        usage = split_usage(
            input_tokens=60_000,
            cache_creation_1h_input_tokens=1,
            cache_read_input_tokens=40_000,
            output_tokens=1000,
        )
        cost = table.price("claude-haiku-5-5", usage)
        assert cost.total_usd == usd(60_000, "0.50") + usd(1, "1") + usd(40_000, "0.05") + usd(1000, "2.50")


class TestFastMode:
    def test_opus_4_6_fast(self, table: PriceTable) -> None:
        """Opus 4.6 fast mode is 30/150, and cache rates scale by the same 6x."""
        usage = split_usage(
            input_tokens=1000,
            output_tokens=1000,
            cache_creation_5m_input_tokens=1000,
            cache_read_input_tokens=1000,
            speed="fast",
        )
        cost = table.price("claude-opus-4-6", usage)
        assert cost.total_usd == usd(1000, "30") + usd(1000, "150") + usd(1000, "6.25") * 6 + usd(1000, "0.50") * 6
        assert cost.status == "priced"

    @pytest.mark.parametrize("model", ["claude-opus-4-8", "claude-opus-5"])
    def test_opus_4_8_and_5_fast(self, table: PriceTable, model: str) -> None:
        """Opus 4.8 and Opus 5 fast mode is 10/50."""
        cost = table.price(model, Usage(input_tokens=1000, output_tokens=1000, speed="fast"))
        assert (cost.total_usd, cost.status) == (usd(1000, "10") + usd(1000, "50"), "priced")

    def test_opus_5_5_fast_is_estimated(self, table: PriceTable) -> None:
        """Opus 5.5 fast-mode prices (8/40) are third-party only, so the call is estimated."""
        cost = table.price("claude-opus-5-5", Usage(input_tokens=1000, output_tokens=1000, speed="fast"))
        assert (cost.total_usd, cost.status) == (usd(1000, "8") + usd(1000, "40"), "estimated_price")

    def test_fast_without_a_fast_price_is_partial(self, table: PriceTable) -> None:
        """A fast call on a model with no fast price is priced at standard rates and marked partial."""
        cost = table.price("claude-sonnet-4-6", Usage(input_tokens=1000, speed="fast"))
        assert (cost.total_usd, cost.status) == (usd(1000, "3"), "partial")


class TestInferenceGeo:
    def test_us_adds_10_percent_on_4_6_and_later(self, table: PriceTable) -> None:
        """inference_geo 'us' multiplies every token component by 1.1 on Sonnet 4.6."""
        usage = split_usage(
            input_tokens=1000,
            output_tokens=1000,
            cache_creation_1h_input_tokens=1000,
            cache_read_input_tokens=1000,
            inference_geo="us",
        )
        cost = table.price("claude-sonnet-4-6", usage)
        base = usd(1000, "3") + usd(1000, "15") + usd(1000, "6") + usd(1000, "0.30")
        assert cost.total_usd == base * Decimal("1.1")

    def test_global_and_earlier_models_are_standard(self, table: PriceTable) -> None:
        """inference_geo 'global', or any value on a pre-4.6 model, changes nothing."""
        assert table.price("claude-sonnet-4-6", Usage(input_tokens=1000, inference_geo="global")).total_usd == usd(
            1000, "3"
        )
        assert table.price("claude-sonnet-4-5", Usage(input_tokens=1000, inference_geo="us")).total_usd == usd(
            1000, "3"
        )

    def test_stacks_with_batch(self, table: PriceTable) -> None:
        """Data residency stacks with the batch discount."""
        cost = table.price("claude-opus-4-6", Usage(input_tokens=1000, inference_geo="us"), batch=True)
        assert cost.total_usd == usd(1000, "5") / 2 * Decimal("1.1")


class TestPlatforms:
    def test_bedrock_regional_id_costs_10_percent_more(self, table: PriceTable) -> None:
        """A Bedrock regional profile (us.) adds 10 % on Sonnet 4.5."""
        usage = Usage(input_tokens=1000, output_tokens=100)
        cost = table.price("us.anthropic.claude-sonnet-4-5-20250929-v1:0", usage)
        assert cost.total_usd == (usd(1000, "3") + usd(100, "15")) * Decimal("1.1")
        assert cost.resolved_model == "claude-sonnet-4-5-20250929"

    def test_bedrock_global_id_is_standard(self, table: PriceTable) -> None:
        """A Bedrock global profile costs the first-party price."""
        usage = Usage(input_tokens=1000, output_tokens=100)
        cost = table.price("global.anthropic.claude-haiku-4-5-20251001-v1:0", usage)
        assert cost.total_usd == usd(1000, "1") + usd(100, "5")

    def test_regional_premium_only_on_4_5_and_later(self, table: PriceTable) -> None:
        """Models before the 4.5 generation keep their price on regional endpoints."""
        cost = table.price("eu.anthropic.claude-sonnet-4-20250514-v1:0", Usage(input_tokens=1000))
        assert cost.total_usd == usd(1000, "3")

    @pytest.mark.parametrize(
        "model",
        ["claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet", "claude-3-5-sonnet-v2", "claude-3-5-sonnet@20240620"],
    )
    def test_vertex_3_5_sonnet_ids_are_priced(self, table: PriceTable, model: str) -> None:
        """Vertex's ids for 3.5 Sonnet v1 and v2, dated or not, price at 3.5 Sonnet's rates (issue 16)."""
        cost = table.price(model, split_usage(input_tokens=1000, cache_read_input_tokens=1000, output_tokens=100))
        assert (cost.total_usd, cost.status) == (usd(1000, "3") + usd(1000, "0.30") + usd(100, "15"), "priced")

    @pytest.mark.parametrize(
        ("model", "inp", "out"), [("claude-3-5-haiku", "0.80", "4"), ("claude-3-haiku", "0.25", "1.25")]
    )
    def test_vertex_undated_haiku_names_are_priced(self, table: PriceTable, model: str, inp: str, out: str) -> None:
        """Vertex's undated claude-3-5-haiku and claude-3-haiku price at their rows (issue 16)."""
        cost = table.price(model, Usage(input_tokens=1000, output_tokens=100))
        assert (cost.total_usd, cost.status) == (usd(1000, inp) + usd(100, out), "priced")

    def test_vertex_id_and_regional_flag(self, table: PriceTable) -> None:
        """A Vertex id prices at the first-party row; regional=True adds the 10 % premium."""
        usage = Usage(input_tokens=1000)
        assert table.price("claude-sonnet-4-5@20250929", usage).total_usd == usd(1000, "3")
        assert table.price("claude-opus-4-6@default", usage, regional=True).total_usd == usd(1000, "5") * Decimal("1.1")

    def test_regional_false_overrides_the_prefix(self, table: PriceTable) -> None:
        """regional=False wins over a regional Bedrock prefix."""
        cost = table.price("us.anthropic.claude-sonnet-4-6", Usage(input_tokens=1000), regional=False)
        assert cost.total_usd == usd(1000, "3")


class TestServerTools:
    def test_web_search_is_10_dollars_per_1000(self, table: PriceTable) -> None:
        """Each web search costs $10 / 1,000 on top of tokens; web fetch is free."""
        usage = Usage(input_tokens=11306, output_tokens=163, web_search_requests=3, web_fetch_requests=5)
        cost = table.price("claude-haiku-4-5-20251001", usage)
        assert cost.breakdown["web_search"] == Decimal(3) * Decimal(10) / 1000
        assert cost.total_usd == usd(11306, "1") + usd(163, "5") + Decimal(3) * Decimal(10) / 1000

    def test_web_search_is_not_discounted(self, table: PriceTable) -> None:
        """Batch and regional multipliers apply to tokens only, not to search fees."""
        usage = Usage(web_search_requests=1, service_tier="batch", inference_geo="us")
        assert table.price("claude-sonnet-4-6", usage).total_usd == Decimal(10) / 1000


class TestIterations:
    def compaction_usage(self) -> Usage:
        """beta-compaction-iterations-claude-sonnet-4-6.json, typed in by hand."""
        return Usage(
            input_tokens=229,
            output_tokens=5,
            cache_creation_input_tokens=0,
            cache_creation_5m_input_tokens=0,
            cache_creation_1h_input_tokens=0,
            cache_read_input_tokens=0,
            service_tier="standard",
            inference_geo="global",
            iterations=(
                Iteration(
                    type="compaction",
                    input_tokens=100,
                    output_tokens=131,
                    cache_creation_input_tokens=55096,
                    cache_creation_5m_input_tokens=55096,
                    cache_creation_1h_input_tokens=0,
                    cache_read_input_tokens=0,
                ),
                Iteration(
                    type="message",
                    input_tokens=229,
                    output_tokens=5,
                    cache_creation_input_tokens=0,
                    cache_creation_5m_input_tokens=0,
                    cache_creation_1h_input_tokens=0,
                    cache_read_input_tokens=0,
                ),
            ),
        )

    def test_compaction_is_added_and_message_is_not_doubled(self, table: PriceTable) -> None:
        """The compaction step is added at the call's rates; the message step is the top level, counted once."""
        cost = table.price("claude-sonnet-4-6", self.compaction_usage())
        top = usd(229, "3") + usd(5, "15")
        compaction = usd(100, "3") + usd(55096, "3.75") + usd(131, "15")
        assert cost.total_usd == top + compaction
        assert cost.breakdown["iteration_compaction_cache_write_5m"] == usd(55096, "3.75")
        assert cost.status == "priced"

    def test_hand_typed_usage_matches_the_recording(self) -> None:
        """The hand-typed compaction usage is the one recorded in the fixture."""
        path = fixtures_dir()
        recorded = json.loads((path / "beta-compaction-iterations-claude-sonnet-4-6.json").read_text())["expected"]
        typed = attrs.evolve(self.compaction_usage(), service_tier=None, inference_geo=None)
        assert usage_from_expected(recorded) == typed

    def test_advisor_priced_at_its_own_model(self, table: PriceTable) -> None:
        """An advisor iteration the top level does not include is added at the advisor model's rates."""
        usage = Usage(
            input_tokens=1000,
            output_tokens=100,
            iterations=(
                Iteration(type="message", input_tokens=1000, output_tokens=100),
                Iteration(type="advisor_message", model="claude-opus-4-6", input_tokens=2000, output_tokens=300),
            ),
        )
        cost = table.price("claude-sonnet-4-6", usage)
        assert cost.total_usd == usd(1000, "3") + usd(100, "15") + usd(2000, "5") + usd(300, "25")
        assert cost.breakdown["iteration_advisor_message_output"] == usd(300, "25")

    def test_fallback_included_in_top_level_is_not_doubled(self, table: PriceTable) -> None:
        """When the top level sums every non-compaction iteration, the fallback part is moved to its own model."""
        usage = Usage(
            input_tokens=1500,
            output_tokens=150,
            iterations=(
                Iteration(type="message", input_tokens=1000, output_tokens=100),
                Iteration(type="fallback_message", model="claude-haiku-4-5", input_tokens=500, output_tokens=50),
            ),
        )
        cost = table.price("claude-sonnet-4-6", usage)
        assert cost.total_usd == usd(1000, "3") + usd(100, "15") + usd(500, "1") + usd(50, "5")

    def test_unknown_iteration_model_is_partial(self, table: PriceTable) -> None:
        """An iteration on an unknown model is left out and the cost is partial, not unpriced."""
        usage = Usage(
            input_tokens=1000,
            iterations=(
                Iteration(type="message", input_tokens=1000),
                Iteration(type="advisor_message", model=f"no-such-{uuid.uuid4()}", input_tokens=5),
            ),
        )
        cost = table.price("claude-sonnet-4-6", usage)
        assert (cost.total_usd, cost.status) == (usd(1000, "3"), "partial")

    @pytest.mark.parametrize("top_level", [0, 500])
    def test_only_iteration_tokens_on_an_unknown_model_are_unpriced(self, table: PriceTable, top_level: int) -> None:
        """When every token is in iterations on an unknown model, the cost is None, not 0 (issue 16)."""
        usage = Usage(
            input_tokens=top_level,
            output_tokens=top_level // 10,
            iterations=(
                Iteration(type="advisor_message", model=f"no-such-{uuid.uuid4()}", input_tokens=500, output_tokens=50),
            ),
        )
        cost = table.price("claude-sonnet-4-6", usage)
        assert (cost.total_usd, cost.status, cost.resolved_model) == (None, "unpriced_model", "claude-sonnet-4-6")

    def test_zero_tokens_on_an_unknown_iteration_model_cost_zero(self, table: PriceTable) -> None:
        """An empty iteration on an unknown model leaves nothing unpriced: the call costs zero."""
        usage = Usage(iterations=(Iteration(type="advisor_message", model=f"no-such-{uuid.uuid4()}"),))
        assert table.price("claude-sonnet-4-6", usage).total_usd == Decimal(0)


class TestEffectiveDates:
    def test_sonnet_5_5_read_before_the_cut(self, table: PriceTable) -> None:
        """Sonnet 5.5 cache reads cost 0.20 until the end of 2026-10-06 (UTC)."""
        cost = table.price("claude-sonnet-5-5", Usage(cache_read_input_tokens=1000), at_ms=ms("2026-10-06", "23:59:59"))
        assert cost.total_usd == usd(1000, "0.20")

    def test_sonnet_5_5_read_from_the_cut(self, table: PriceTable) -> None:
        """Sonnet 5.5 cache reads cost 0.10 from 2026-10-07 on; other rates are unchanged."""
        usage = Usage(cache_read_input_tokens=1000, input_tokens=1000)
        cost = table.price("claude-sonnet-5-5", usage, at_ms=ms("2026-10-07"))
        assert cost.total_usd == usd(1000, "0.10") + usd(1000, "2")

    def test_default_time_is_now(self, table: PriceTable) -> None:
        """Without at_ms the row in effect now applies (after the cut)."""
        assert table.price("claude-sonnet-5-5", Usage(cache_read_input_tokens=1000)).total_usd == usd(1000, "0.10")


class TestUnpriced:
    def test_none_model_warns_once(self, table: PriceTable, caplog: pytest.LogCaptureFixture) -> None:
        """A call without a model is unpriced (None, never 0), with one warning across two calls."""
        with caplog.at_level(logging.WARNING, logger="fluxgate"):
            first = table.price(None, Usage(input_tokens=10))
            second = table.price(None, Usage(input_tokens=10))
        assert first.total_usd is None
        assert first.status == second.status == "unpriced_model"
        assert dict(first.breakdown) == {}
        assert len([r for r in caplog.records if r.name == "fluxgate"]) == 1

    def test_unknown_model_warns_once_per_id(self, table: PriceTable, caplog: pytest.LogCaptureFixture) -> None:
        """Each distinct unknown id warns once; its cost is None."""
        one, two = f"claude-nope-{uuid.uuid4()}", f"gpt-{uuid.uuid4()}"
        with caplog.at_level(logging.WARNING, logger="fluxgate"):
            for model in (one, one, two, two):
                cost = table.price(model, Usage(input_tokens=10))
                assert (cost.total_usd, cost.status, cost.resolved_model) == (None, "unpriced_model", None)
        messages = [r.getMessage() for r in caplog.records if r.name == "fluxgate"]
        assert len(messages) == 2
        assert one in messages[0]

    @pytest.mark.parametrize(
        "model",
        [
            "claude-mythos-5-2",
            "claude-mythos-preview",
            "claude-2.1",
            "claude-2.0",
            "claude-instant-1.2",
            "claude-3-sonnet-20240229",
            "anthropic.claude-v2:1",
        ],
    )
    def test_not_found_models_stay_unpriced(self, table: PriceTable, model: str) -> None:
        """Models whose price is NOT FOUND are known but unpriced, never guessed."""
        cost = table.price(model, Usage(input_tokens=10, output_tokens=10))
        assert (cost.total_usd, cost.status) == (None, "unpriced_model")
        assert cost.resolved_model is not None

    @pytest.mark.parametrize("model", ["", "   ", "claude", "claude-sonnet-4-5-20990101", "🦜" * 500, "a/b/c@d[e]"])
    def test_odd_model_strings_never_raise(self, table: PriceTable, model: str) -> None:
        """Any model string prices without raising."""
        assert table.price(model, Usage(input_tokens=1)).status == "unpriced_model"

    def test_odd_usage_never_raises(self, table: PriceTable) -> None:
        """Negative or non-integer counts are treated as zero and mark the cost partial."""
        usage = Usage(input_tokens=-5, output_tokens="7", cache_read_input_tokens=None, web_search_requests=-1)  # type: ignore[arg-type]
        cost = table.price("claude-sonnet-4-6", usage)
        assert (cost.total_usd, cost.status) == (Decimal(0), "partial")


@st.composite
def small_usage(draw: st.DrawFn) -> Usage:
    """A usage whose prompt stays at or under 100,000 tokens (below every tier threshold)."""
    cap = 25_000
    return Usage(
        input_tokens=draw(st.integers(0, cap)),
        output_tokens=draw(st.integers(0, 1_000_000)),
        cache_creation_5m_input_tokens=(w5 := draw(st.integers(0, cap))),
        cache_creation_1h_input_tokens=(w1 := draw(st.integers(0, cap))),
        cache_creation_input_tokens=w5 + w1,
        cache_read_input_tokens=draw(st.integers(0, cap)),
        web_search_requests=draw(st.integers(0, 20)),
    )


PRICED_MODELS = [
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-fable-5-1",
    "claude-opus-4-6",
    "claude-sonnet-4-5",
    "claude-sonnet-4-0",
    "claude-3-haiku-20240307",
]
UNTIERED_MODELS = ["claude-opus-5-5", "claude-sonnet-5-5", "claude-fable-5-1", "claude-opus-4-6", "claude-haiku-4-5"]
FIELDS = ["input_tokens", "output_tokens", "cache_creation_5m_input_tokens", "cache_read_input_tokens"]


def _with(usage: Usage, field: str, value: int) -> Usage:
    """``usage`` with one count replaced (the cache-write total follows its split)."""
    changes: dict[str, Any] = {field: value}
    changed = attrs.evolve(usage, **changes)
    total = (changed.cache_creation_5m_input_tokens or 0) + (changed.cache_creation_1h_input_tokens or 0)
    return attrs.evolve(changed, cache_creation_input_tokens=total)


class TestProperties:
    @settings(max_examples=200, deadline=None)
    @given(
        model=st.sampled_from(PRICED_MODELS),
        usage=small_usage(),
        field=st.sampled_from(FIELDS),
        a=st.integers(0, 12_000),
        b=st.integers(0, 12_000),
        batch=st.booleans(),
    )
    def test_linear_and_non_negative(
        self, *, model: str, usage: Usage, field: str, a: int, b: int, batch: bool
    ) -> None:
        """Below the tier thresholds, cost is additive and non-negative in every token count."""
        table = default_table()

        def cost(n: int) -> Decimal:
            total = table.price(model, _with(usage, field, n), batch=batch, at_ms=NOW).total_usd
            assert total is not None
            assert total >= 0
            return total

        assert cost(a + b) - cost(a) == cost(b) - cost(0)
        assert cost(a) <= cost(a + b)

    @settings(max_examples=100, deadline=None)
    @given(
        model=st.sampled_from(UNTIERED_MODELS),
        usages=st.lists(small_usage(), min_size=1, max_size=40),
        geo=st.sampled_from([None, "us"]),
        batch=st.booleans(),
    )
    def test_sum_of_events_equals_cost_of_summed_usage(
        self, model: str, usages: list[Usage], geo: str | None, batch: bool
    ) -> None:
        """The costs of many events add up exactly to the cost of their summed usage."""
        table = default_table()
        usages = [attrs.evolve(u, inference_geo=geo) for u in usages]
        total = Decimal(0)
        for usage in usages:
            cost = table.price(model, usage, batch=batch, at_ms=NOW).total_usd
            assert cost is not None
            total += cost
        names = (*FIELDS, "cache_creation_1h_input_tokens", "cache_creation_input_tokens", "web_search_requests")
        sums: dict[str, Any] = {name: sum(getattr(u, name) for u in usages) for name in names}
        summed = attrs.evolve(usages[0], **sums)
        assert table.price(model, summed, batch=batch, at_ms=NOW).total_usd == total


# --- the recorded responses -----------------------------------------------------------


def usage_from_expected(exp: dict[str, Any]) -> Usage:
    """A Usage from a fixture's ``expected`` block (TTL split, server tools, iterations)."""
    split = exp.get("cache_creation") or {}
    tools = exp.get("server_tool_use") or {}
    iterations = tuple(
        Iteration(
            type=it["type"],
            model=it.get("model"),
            input_tokens=it.get("input_tokens") or 0,
            output_tokens=it.get("output_tokens") or 0,
            cache_creation_input_tokens=it.get("cache_creation_input_tokens") or 0,
            cache_creation_5m_input_tokens=(it.get("cache_creation") or {}).get("ephemeral_5m_input_tokens"),
            cache_creation_1h_input_tokens=(it.get("cache_creation") or {}).get("ephemeral_1h_input_tokens"),
            cache_read_input_tokens=it.get("cache_read_input_tokens") or 0,
        )
        for it in exp.get("iterations") or ()
    )
    return Usage(
        input_tokens=exp["input_tokens"] or 0,
        output_tokens=exp["output_tokens"] or 0,
        cache_creation_input_tokens=exp["cache_creation_input_tokens"] or 0,
        cache_creation_5m_input_tokens=split.get("ephemeral_5m_input_tokens"),
        cache_creation_1h_input_tokens=split.get("ephemeral_1h_input_tokens"),
        cache_read_input_tokens=exp["cache_read_input_tokens"] or 0,
        web_search_requests=tools.get("web_search_requests") or 0,
        web_fetch_requests=tools.get("web_fetch_requests") or 0,
        iterations=iterations,
    )


#: Published USD per million tokens: input, 5m write, 1h write, cache read, output.
HAND_RATES = {
    "claude-sonnet-4-6": ("3", "3.75", "6", "0.30", "15"),
    "claude-sonnet-4-5-20250929": ("3", "3.75", "6", "0.30", "15"),
    "claude-sonnet-4-20250514": ("3", "3.75", "6", "0.30", "15"),
    "claude-3-7-sonnet-20250219": ("3", "3.75", "6", "0.30", "15"),
    "claude-3-5-sonnet-20240620": ("3", "3.75", "6", "0.30", "15"),
    "claude-opus-4-5-20251101": ("5", "6.25", "10", "0.50", "25"),
    "claude-haiku-4-5-20251001": ("1", "1.25", "2", "0.10", "5"),
    "claude-3-5-haiku-20241022": ("0.80", "1", "1.60", "0.08", "4"),
    "claude-3-opus-20240229": ("15", "18.75", "30", "1.50", "75"),
    "claude-3-haiku-20240307": ("0.25", "0.30", "0.50", "0.03", "1.25"),
}


def hand_cost(model: str, exp: dict[str, Any]) -> tuple[Decimal, str]:
    """The cost of a fixture's expected usage, from HAND_RATES, and the status it should get."""
    inp, w5, w1, read, out = HAND_RATES[model]
    split = exp.get("cache_creation")
    status = "priced"
    steps = [exp, *[it for it in exp.get("iterations") or () if it["type"] == "compaction"]]
    total = Decimal(0)
    for step in steps:
        writes = step.get("cache_creation_input_tokens") or 0
        split = step.get("cache_creation")
        if split is None:
            five, hour = writes, 0
            status = "partial" if writes else status
        else:
            five, hour = split["ephemeral_5m_input_tokens"], split["ephemeral_1h_input_tokens"]
        total += usd(step.get("input_tokens") or 0, inp) + usd(step.get("output_tokens") or 0, out)
        total += usd(five, w5) + usd(hour, w1) + usd(step.get("cache_read_input_tokens") or 0, read)
    searches = (exp.get("server_tool_use") or {}).get("web_search_requests") or 0
    return total + Decimal(searches) * 10 / 1000, status


def _recordings() -> list[str]:
    return sorted(p.name for p in fixtures_dir().glob("*.json"))


class TestRecordings:
    @pytest.mark.parametrize("name", _recordings())
    def test_cost_matches_hand_computation(self, table: PriceTable, name: str) -> None:
        """Each recorded response with a model and usage costs what the published rates say."""
        base = fixtures_dir()
        exp = json.loads((base / name).read_text())["expected"]
        model = exp["model"]
        if model is None or exp["input_tokens"] is None:
            if model is not None:  # /v1/complete: no usage, and Claude Instant has no price anyway
                assert table.price(model, Usage()).status == "unpriced_model"
            return
        cost = table.price(model, usage_from_expected(exp), at_ms=NOW)
        total, status = hand_cost(model, exp)
        assert (cost.total_usd, cost.status, cost.resolved_model) == (total, status, model)


class TestOverrides:
    def test_adds_a_row(self) -> None:
        """An override adds a model; cache rates default to 1.25x, 2x and 0.1x input."""
        table = PriceTable.default().with_overrides({"my-fine-tune": {"input": 2, "output": "8"}})
        usage = split_usage(
            input_tokens=1000,
            cache_creation_5m_input_tokens=1000,
            cache_creation_1h_input_tokens=1000,
            cache_read_input_tokens=1000,
            output_tokens=1000,
        )
        expected = usd(1000, "2") + usd(1000, "2.5") + usd(1000, "4") + usd(1000, "0.2") + usd(1000, "8")
        assert table.price("my-fine-tune", usage).total_usd == expected

    def test_replaces_the_canonical_row_via_an_alias(self) -> None:
        """Overriding an alias replaces the row its dated id and Bedrock forms resolve to."""
        table = PriceTable.default().with_overrides({"claude-sonnet-4-5": {"input": "1", "output": "1"}})
        for model in ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5", "anthropic.claude-sonnet-4-5-20250929-v1:0"):
            assert table.price(model, Usage(input_tokens=1000)).total_usd == usd(1000, "1")
        assert PriceTable.default().price("claude-sonnet-4-5", Usage(input_tokens=1000)).total_usd == usd(1000, "3")

    @pytest.mark.parametrize("model", ["acme/claude-tuned", "us.anthropic.acme-model-v1:0", "Acme-Model@2026"])
    def test_custom_ids_resolve_to_themselves(self, model: str) -> None:
        """An override keyed by an id that looks like a path, Bedrock or Vertex id is found as given."""
        table = PriceTable.default().with_overrides({model: {"input": "1", "output": "1"}})
        assert table.resolve(model).key == model.lower()
        assert table.price(model, Usage(input_tokens=1000)).total_usd == usd(1000, "1")

    def test_version_names_the_overrides(self) -> None:
        """The version becomes base+overrides.<hash>, the same hash for the same overrides."""
        base = PriceTable.default()
        one = base.with_overrides({"x-model": {"input": "1", "output": "2"}})
        two = base.with_overrides({"x-model": {"input": "1", "output": "2"}})
        three = base.with_overrides({"x-model": {"input": "1", "output": "3"}})
        assert one.version.startswith(f"{base.version}+overrides.")
        assert one.version == two.version != three.version
        assert base.with_overrides({}).version == base.version

    def test_reads_a_json_file(self, tmp_path: Path) -> None:
        """A path to a JSON file of model id -> row works like the mapping."""
        path = tmp_path / "prices.json"
        path.write_text(json.dumps({"house-model": {"input": "0.5", "output": "1.5", "source": "contract"}}))
        table = PriceTable.default().with_overrides(str(path))
        assert table.price("house-model", Usage(output_tokens=1000)).total_usd == usd(1000, "1.5")
        assert table.with_overrides(path).row("house-model") is not None

    @pytest.mark.parametrize(
        ("row", "field"),
        [
            ({"input": "-1", "output": "2"}, "input"),
            ({"input": "1", "output": -0.5}, "output"),
            ({"input": "1"}, "output"),
            ({"output": "1"}, "input"),
            ({"input": "1", "output": "2", "cache_reed": "0.1"}, "cache_reed"),
            ({"input": "one", "output": "2"}, "input"),
            ({"input": "1", "output": "2", "cache_read": True}, "cache_read"),
            ({"input": "1", "output": "2", "cache_read": None}, "cache_read"),
            ({"input": "NaN", "output": "2"}, "input"),
            ({"input": "1", "output": "2", "official": "yes"}, "official"),
            ({"input": "1", "output": "2", "changes": [{"from": "2026-13-01"}]}, "from"),
        ],
    )
    def test_invalid_rows_raise_naming_key_and_field(self, row: dict[str, Any], field: str) -> None:
        """Invalid overrides raise ConfigurationError naming the model and the field."""
        with pytest.raises(ConfigurationError) as info:
            PriceTable.default().with_overrides({"bad-model": row})
        assert "bad-model" in str(info.value)
        assert field in str(info.value)

    def test_non_mapping_row_raises(self) -> None:
        """A row that is not an object raises ConfigurationError naming the model."""
        with pytest.raises(ConfigurationError, match="bad-model"):
            PriceTable.default().with_overrides({"bad-model": 3})  # type: ignore[dict-item]

    def test_missing_or_broken_file_raises(self, tmp_path: Path) -> None:
        """A file that is missing or not JSON raises ConfigurationError naming it."""
        with pytest.raises(ConfigurationError, match=r"nope\.json"):
            PriceTable.default().with_overrides(tmp_path / "nope.json")
        broken = tmp_path / "broken.json"
        broken.write_text("{")
        with pytest.raises(ConfigurationError, match=r"broken\.json"):
            PriceTable.default().with_overrides(broken)


class TestResolver:
    @pytest.mark.parametrize(
        ("model", "expected"),
        [
            ("claude-sonnet-4-5-20250929", ("claude-sonnet-4-5-20250929", "anthropic", False)),
            ("claude-sonnet-4-5", ("claude-sonnet-4-5-20250929", "anthropic", False)),
            ("  Claude-Sonnet-4-5  ", ("claude-sonnet-4-5-20250929", "anthropic", False)),
            ("claude-opus-4-0", ("claude-opus-4-20250514", "anthropic", False)),
            ("claude-sonnet-4-0", ("claude-sonnet-4-20250514", "anthropic", False)),
            ("claude-3-7-sonnet-latest", ("claude-3-7-sonnet-20250219", "anthropic", False)),
            ("claude-3-5-haiku-latest", ("claude-3-5-haiku-20241022", "anthropic", False)),
            ("claude-haiku-4-5", ("claude-haiku-4-5-20251001", "anthropic", False)),
            ("claude-opus-4-5", ("claude-opus-4-5-20251101", "anthropic", False)),
            ("claude-opus-4-6", ("claude-opus-4-6", "anthropic", False)),
            ("claude-opus-4-6-20260205", ("claude-opus-4-6", "anthropic", False)),
            ("claude-opus-4-7-20260416", ("claude-opus-4-7", "anthropic", False)),
            ("claude-opus-4-8[1m]", ("claude-opus-4-8", "anthropic", False)),
            ("claude-sonnet-4-5[1m]", ("claude-sonnet-4-5-20250929", "anthropic", False)),
            ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", ("claude-sonnet-4-5-20250929", "bedrock", True)),
            ("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", ("claude-sonnet-4-5-20250929", "bedrock", True)),
            ("jp.anthropic.claude-sonnet-4-5-20250929-v1:0", ("claude-sonnet-4-5-20250929", "bedrock", True)),
            ("apac.anthropic.claude-3-haiku-20240307-v1:0", ("claude-3-haiku-20240307", "bedrock", True)),
            ("au.anthropic.claude-haiku-4-5-20251001-v1:0", ("claude-haiku-4-5-20251001", "bedrock", True)),
            ("us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0", ("claude-sonnet-4-5-20250929", "bedrock", True)),
            ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", ("claude-sonnet-4-5-20250929", "bedrock", False)),
            ("global.anthropic.claude-opus-4-6-v1", ("claude-opus-4-6", "bedrock", False)),
            ("anthropic.claude-opus-4-6-v1", ("claude-opus-4-6", "bedrock", False)),
            ("anthropic.claude-sonnet-4-6", ("claude-sonnet-4-6", "bedrock", False)),
            ("us.anthropic.claude-opus-5-5", ("claude-opus-5-5", "bedrock", True)),
            ("anthropic.claude-3-5-sonnet-20241022-v2:0", ("claude-3-5-sonnet-20241022", "bedrock", False)),
            ("anthropic.claude-opus-4-1-20250805-v1:0", ("claude-opus-4-1-20250805", "bedrock", False)),
            ("anthropic.claude-3-haiku-20240307-v1:0:200k", ("claude-3-haiku-20240307", "bedrock", False)),
            ("anthropic.claude-v2", ("claude-2.0", "bedrock", False)),
            ("anthropic.claude-v2:1", ("claude-2.1", "bedrock", False)),
            ("anthropic.claude-instant-v1", ("claude-instant-1.2", "bedrock", False)),
            ("bedrock/us.anthropic.claude-sonnet-4-6", ("claude-sonnet-4-6", "bedrock", True)),
            ("claude-sonnet-4-5@20250929", ("claude-sonnet-4-5-20250929", "vertex", False)),
            ("claude-haiku-4-5@20251001", ("claude-haiku-4-5-20251001", "vertex", False)),
            ("claude-sonnet-4@20250514", ("claude-sonnet-4-20250514", "vertex", False)),
            ("claude-3-7-sonnet@20250219", ("claude-3-7-sonnet-20250219", "vertex", False)),
            ("claude-opus-4-6@default", ("claude-opus-4-6", "vertex", False)),
            ("claude-3-5-sonnet-v2@20241022", ("claude-3-5-sonnet-20241022", "vertex", False)),
            ("claude-3-5-sonnet-v2@default", ("claude-3-5-sonnet-20241022", "vertex", False)),
            ("claude-3-5-sonnet-v2", ("claude-3-5-sonnet-20241022", "vertex", False)),
            ("vertex_ai/claude-3-5-sonnet-v2@20241022", ("claude-3-5-sonnet-20241022", "vertex", False)),
            ("claude-3-5-sonnet@20240620", ("claude-3-5-sonnet-20240620", "vertex", False)),
            ("claude-3-5-sonnet", ("claude-3-5-sonnet-20240620", "vertex", False)),
            ("claude-3-5-haiku", ("claude-3-5-haiku-20241022", "vertex", False)),
            ("claude-3-haiku", ("claude-3-haiku-20240307", "vertex", False)),
            ("claude-3-7-sonnet", ("claude-3-7-sonnet-20250219", "vertex", False)),
            ("claude-sonnet-4", ("claude-sonnet-4-20250514", "vertex", False)),
            ("claude-3-sonnet", ("claude-3-sonnet-20240229", "vertex", False)),
            ("claude-3-5-sonnet-v2@20240620", (None, "vertex", False)),
            ("claude-3-5-haiku-20990101", (None, "anthropic", False)),
            ("claude-sonnet-4-5-20990101", (None, "anthropic", False)),
            ("claude-opus-4-6@latest-ish", (None, "vertex", False)),
            ("gpt-4o", (None, "anthropic", False)),
            ("", (None, "anthropic", False)),
        ],
    )
    def test_id_forms(self, table: PriceTable, model: str, expected: tuple[str | None, str, bool]) -> None:
        """Every id form maps to its canonical first-party row, platform and endpoint kind."""
        resolution = table.resolve(model)
        assert (resolution.key, resolution.platform, resolution.regional) == expected
        assert resolution.model_id == model
        assert resolution.reason

    def test_reason_says_how(self, table: PriceTable) -> None:
        """The reason names the stripped prefix and suffix and the row."""
        reason = table.resolve("us.anthropic.claude-sonnet-4-5-20250929-v1:0").reason
        assert "'us.'" in reason
        assert "'-v1:0'" in reason
        assert reason.endswith("claude-sonnet-4-5-20250929")

    def test_resolve_never_raises_on_non_strings(self, table: PriceTable) -> None:
        """A non-string model id resolves to no row instead of raising."""
        assert table.resolve(42).key is None  # type: ignore[arg-type]

    def test_cache_is_bounded(self, table: PriceTable) -> None:
        """Resolving many distinct ids keeps the resolution cache bounded."""
        for i in range(5000):
            table.resolve(f"model-{i}")
        assert len(table._cache) <= 4096


class TestTable:
    REFERENCE_KEYS = (
        "claude-fable-5-2",
        "claude-mythos-5-2",
        "claude-fable-5-1",
        "claude-mythos-5-1",
        "claude-fable-5",
        "claude-mythos-5",
        "claude-mythos-preview",
        "claude-opus-5-5",
        "claude-opus-5",
        "claude-opus-4-8",
        "claude-opus-4-7",
        "claude-opus-4-6",
        "claude-opus-4-5-20251101",
        "claude-opus-4-1-20250805",
        "claude-opus-4-20250514",
        "claude-sonnet-5-5",
        "claude-sonnet-5",
        "claude-sonnet-4-6",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-20250514",
        "claude-3-7-sonnet-20250219",
        "claude-3-5-sonnet-20240620",
        "claude-3-5-sonnet-20241022",
        "claude-haiku-5-5",
        "claude-haiku-4-5-20251001",
        "claude-3-5-haiku-20241022",
        "claude-3-opus-20240229",
        "claude-3-haiku-20240307",
        "claude-3-sonnet-20240229",
        "claude-2.1",
        "claude-2.0",
        "claude-instant-1.2",
    )

    def test_every_reference_model_has_a_row(self) -> None:
        """Every Claude model of the pricing reference, current and legacy, is in the table."""
        keys = {row.key for row in default_table().rows()}
        assert set(self.REFERENCE_KEYS) <= keys

    def test_rows_carry_provenance(self) -> None:
        """Every row says where its prices come from, when, and whether they are official."""
        for row in default_table().rows():
            assert row.source
            assert row.date
            assert isinstance(row.official, bool)

    def test_import_reads_no_price_file(self) -> None:
        """`import fluxgate` opens no price file; the shipped table is read on first use."""
        code = (
            "import sys\n"
            "opened = []\n"
            "sys.addaudithook(lambda event, args: event == 'open' and opened.append(str(args[0])))\n"
            "import fluxgate, fluxgate._pricing\n"
            "assert not [p for p in opened if p.endswith('prices.json')], opened\n"
            "fluxgate._pricing.default_table()\n"
            "assert [p for p in opened if p.endswith('prices.json')], opened\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr

    def test_default_is_loaded_once(self) -> None:
        """default() and default_table() return the same cached object."""
        assert PriceTable.default() is PriceTable.default() is default_table()

    def test_version_is_dated(self) -> None:
        """The shipped table has a dated version string."""
        version = default_table().version
        assert datetime.strptime(version.split(".")[0], "%Y-%m-%d")

    def test_prices_match_the_reference(self) -> None:
        """Spot checks of the shipped rows against the reference figures."""
        table = default_table()
        opus = table.row("claude-opus-5-5")
        assert opus is not None
        assert opus.rates is not None
        assert (opus.rates.input, opus.rates.cache_read, opus.rates.output) == (
            Decimal(4),
            Decimal("0.20"),
            Decimal(20),
        )
        fable = table.row("claude-fable-5-2")
        assert fable is not None
        assert fable.official is False
        assert {"cache_read", "batch"} <= fable.third_party
        assert table.row("claude-mythos-5-2") is not None
        assert not table.row("claude-mythos-5-2").priced  # type: ignore[union-attr]
