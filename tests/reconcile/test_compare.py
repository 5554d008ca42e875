"""The join of both sides: what is compared, what is set apart, and the caveats."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from fluxgate._reconcile.admin import ReportedCost, ReportedUsage
from fluxgate._reconcile.compare import reconcile
from fluxgate._reconcile.records import Reconciliation, Tokens
from fluxgate._reconcile.store import Tracked, TrackedGroup

from .conftest import DAY1_MS, DAY_MS, HOUR_MS, NOW_MS, SONNET

D1 = date(2026, 11, 24)
D2 = date(2026, 11, 25)
PICO = 10**12


def group(day: date, model: str, usd: str, *, tier: str = "standard", web: str = "0", inp: int = 0) -> TrackedGroup:
    return TrackedGroup(
        day=day,
        model=model,
        service_tier=tier,
        calls=1,
        unpriced_calls=0,
        cost_pusd=int(Decimal(usd) * PICO),
        tokens=Tokens(input_tokens=inp),
        web_search_pusd=int(Decimal(web) * PICO),
    )


def tracked(*groups: TrackedGroup, first_ms: int = DAY1_MS, last_ms: int = DAY1_MS + DAY_MS) -> Tracked:
    return Tracked(groups=groups, other_platforms=(), first_event_ms=first_ms, last_event_ms=last_ms)


def used(
    day: date, model: str | None, *, tier: str | None = "standard", inp: int = 0, ws: str | None = None
) -> ReportedUsage:
    return ReportedUsage(day=day, model=model, service_tier=tier, workspace_id=ws, tokens=Tokens(input_tokens=inp))


def billed(
    day: date,
    model: str | None,
    usd: str,
    *,
    kind: str = "tokens",
    tier: str | None = "standard",
    ws: str | None = None,
) -> ReportedCost:
    return ReportedCost(
        day=day,
        cost_type=kind,
        model=model,
        token_type="output_tokens" if kind == "tokens" else None,
        service_tier=tier if kind == "tokens" else None,
        workspace_id=ws,
        amount_usd=Decimal(usd),
    )


def compare(
    side: Tracked,
    usage: list[ReportedUsage],
    cost: list[ReportedCost],
    *,
    by: tuple[str, ...] = ("day", "model"),
    undated: bool = False,
    workspaces: list[str] | None = None,
) -> Reconciliation:
    return reconcile(
        tracked=side,
        usage=usage,
        cost=cost,
        since=D1,
        until=date(2026, 11, 26),
        now_ms=NOW_MS,
        by=by,
        undated=undated,
        workspaces=workspaces,
    )


class TestPriorityTier:
    def test_priority_is_set_apart_on_both_sides(self) -> None:
        """Priority calls leave the rows and the total; the usage report's Priority tokens go with them."""
        result = compare(
            tracked(group(D1, SONNET, "1", inp=10), group(D1, SONNET, "3", tier="priority", inp=30)),
            [used(D1, SONNET, inp=10), used(D1, SONNET, tier="priority", inp=30)],
            [billed(D1, SONNET, "1")],
        )
        assert [(r.tracked_cost_usd, r.reported_cost_usd) for r in result.rows] == [(Decimal(1), Decimal(1))]
        assert result.total.coverage == Decimal(1)
        assert result.priority is not None
        assert result.priority.tracked_cost_usd == Decimal(3)
        assert result.priority.reported.input_tokens == 30
        assert any("Priority Tier" in note for note in result.notes)


class TestNotCompared:
    def test_code_execution_is_listed_apart(self) -> None:
        """Reported code-execution cost, which fluxgate does not price, is outside the total."""
        result = compare(
            tracked(group(D1, SONNET, "1")),
            [],
            [billed(D1, SONNET, "1"), billed(D1, None, "0.12", kind="code_execution")],
        )
        assert result.total.reported_cost_usd == Decimal(1)
        assert [(u.name, u.cost_usd) for u in result.not_compared] == [("code_execution", Decimal("0.12"))]
        assert any("code_execution" in note for note in result.notes)


class TestWebSearch:
    def test_web_search_fees_are_compared_on_their_own_row(self) -> None:
        """The web-search part of tracked cost meets the cost report's model-less web_search line."""
        result = compare(
            tracked(group(D1, SONNET, "1.03", web="0.03")),
            [],
            [billed(D1, SONNET, "1"), billed(D1, None, "0.04", kind="web_search")],
        )
        tokens, search = result.rows
        assert (tokens.kind, tokens.tracked_cost_usd, tokens.difference_usd) == ("tokens", Decimal(1), Decimal(0))
        assert (search.kind, search.model) == ("web_search", None)
        assert (search.tracked_cost_usd, search.reported_cost_usd) == (Decimal("0.03"), Decimal("0.04"))
        assert result.total.difference_usd == Decimal("0.01")


class TestStoreRange:
    def test_days_before_the_first_event_are_left_out_of_the_total(self) -> None:
        """Reported spend from before the store began is listed per day, not counted as untracked."""
        result = compare(
            tracked(group(D2, SONNET, "1"), first_ms=DAY1_MS + DAY_MS + HOUR_MS),
            [],
            [billed(D1, SONNET, "5"), billed(D2, SONNET, "1")],
        )
        assert [r.day for r in result.rows] == [D2]
        assert result.total.coverage == Decimal(1)
        assert [(r.day, r.reported_cost_usd) for r in result.outside_store] == [(D1, Decimal(5))]
        assert any("before it is left out of the total" in note for note in result.notes)

    def test_spend_after_the_last_event_is_pointed_out(self) -> None:
        """Reported spend after the store's newest event gets a note asking whether fluxgate still records."""
        result = compare(
            tracked(group(D1, SONNET, "1"), last_ms=DAY1_MS + HOUR_MS),
            [],
            [billed(D1, SONNET, "1"), billed(D2, SONNET, "2")],
        )
        assert result.total.coverage == Decimal("0.333333")
        assert any("is fluxgate still recording" in note for note in result.notes)


class TestProvisional:
    def test_only_a_day_that_just_ended_is_provisional(self) -> None:
        """With the clock 30 minutes after the second day, that day's row is provisional and the first is not."""
        result = reconcile(
            tracked=tracked(group(D1, SONNET, "1"), group(D2, SONNET, "1")),
            usage=[],
            cost=[billed(D1, SONNET, "1"), billed(D2, SONNET, "1")],
            since=D1,
            until=date(2026, 11, 26),
            now_ms=DAY1_MS + 2 * DAY_MS + HOUR_MS // 2,
        )
        assert [(r.day, r.provisional) for r in result.rows] == [(D1, False), (D2, True)]
        assert result.total.provisional
        assert any("lags" in note for note in result.notes)

    def test_days_past_the_report_s_last_bucket_are_provisional(self) -> None:
        """When the report stops before the range does, the later tracked day is provisional and named in a note."""
        result = reconcile(
            tracked=tracked(group(D1, SONNET, "1"), group(D2, SONNET, "1")),
            usage=[],
            cost=[billed(D1, SONNET, "1")],
            since=D1,
            until=date(2026, 11, 26),
            now_ms=NOW_MS,
            reported_through=D2,
        )
        assert [(r.day, r.provisional) for r in result.rows] == [(D1, False), (D2, True)]
        assert any("returned days up to 2026-11-24 only" in note for note in result.notes)


class TestModelNames:
    def test_an_alias_and_a_dated_id_are_pointed_out(self) -> None:
        """A model tracked under its alias and reported under its dated id gives two rows and a hint."""
        result = compare(tracked(group(D1, "claude-sonnet-4-5", "1")), [], [billed(D1, SONNET, "1")])
        assert len(result.rows) == 2
        assert any("--undated" in note for note in result.notes)

    def test_undated_compares_them_as_one(self) -> None:
        """With ``undated`` both names meet on one row without the date suffix."""
        result = compare(tracked(group(D1, "claude-sonnet-4-5", "1")), [], [billed(D1, SONNET, "1")], undated=True)
        assert [(r.model, r.difference_usd) for r in result.rows] == [("claude-sonnet-4-5", Decimal(0))]
        assert not any("--undated" in note for note in result.notes)


class TestGrouping:
    def test_service_tier_splits_rows(self) -> None:
        """``by`` with ``service_tier`` keeps standard and batch apart; without it they are summed."""
        side = tracked(group(D1, SONNET, "1"), group(D1, SONNET, "0.5", tier="batch"))
        cost = [billed(D1, SONNET, "1"), billed(D1, SONNET, "0.5", tier="batch")]
        split = compare(side, [], cost, by=("day", "model", "service_tier"))
        assert [(r.service_tier, r.tracked_cost_usd) for r in split.rows] == [
            ("batch", Decimal("0.5")),
            ("standard", Decimal(1)),
        ]
        assert [r.tracked_cost_usd for r in compare(side, [], cost).rows] == [Decimal("1.5")]

    def test_workspace_filter_keeps_only_that_workspace_s_report(self) -> None:
        """Only the named workspace's reported figures are compared; ``default`` is the null workspace."""
        cost = [billed(D1, SONNET, "1", ws="wrkspc_a"), billed(D1, SONNET, "7", ws="wrkspc_b"), billed(D1, SONNET, "2")]
        side = tracked(group(D1, SONNET, "1"))
        assert compare(side, [], cost, workspaces=["wrkspc_a"]).total.reported_cost_usd == Decimal(1)
        assert compare(side, [], cost, workspaces=["default"]).total.reported_cost_usd == Decimal(2)
        assert compare(side, [], cost).total.reported_cost_usd == Decimal(10)
