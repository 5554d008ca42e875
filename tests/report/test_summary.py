"""fluxgate report and fluxgate tail over stores filled with known events."""

from __future__ import annotations

import csv
import io
import itertools
import json
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxgate import AiEventUser, CostEvent, Status
from fluxgate._cli.main import main as cli_main
from fluxgate._cli.report import follow, main, parse_when, tail_main
from fluxgate._pricing.table import PriceTable
from fluxgate._report.summary import (
    Filters,
    Follower,
    ReportError,
    cache_efficiency,
    connect,
    economics,
    format_usd,
    overview,
    report,
    waste,
)
from fluxgate.sinks import SQLiteSink

HOUR = 3_600_000
DAY = 24 * HOUR
NOW = int(datetime(2026, 11, 20, 12, tzinfo=timezone.utc).timestamp() * 1000)
SONNET = "claude-sonnet-4-6"
HAIKU = "claude-haiku-4-5-20251001"
ALICE = AiEventUser("alice", name="Alice", monthly_revenue=10.0)
BOB = AiEventUser("bob", monthly_revenue=100.0)
D = Decimal

_ids = itertools.count()


def event(
    *,
    cost: str | None,
    at: int,
    status: Status = Status.SUCCESS,
    model: str = SONNET,
    user: AiEventUser | str | None = None,
    **fields: Any,
) -> CostEvent:
    """A hand-made event; ``cost=None`` is a call to a model with no price."""
    who = AiEventUser(user) if isinstance(user, str) else user
    return CostEvent(
        tracking_id=f"ev-{next(_ids)}",
        created_at=at,
        status=status,
        cost_usd=None if cost is None else Decimal(cost),
        cost_status="unpriced_model" if cost is None else "priced",
        model=model,
        user=who,
        user_id=None if who is None else who.id,
        **fields,
    )


def known_events() -> list[CostEvent]:
    """Seven calls whose every sum is worked out by hand in the tests below."""
    return [
        event(
            cost="0.0045",
            at=NOW - HOUR,
            feature="summarize",
            user=ALICE,
            input_tokens=1000,
            output_tokens=100,
            reasoning_tokens=20,
            cache_read_input_tokens=2000,
            cache_creation_input_tokens=500,
            cache_creation_5m_input_tokens=500,
            cache_creation_1h_input_tokens=0,
            latency_ms=100.0,
            step="draft",
            session_id="s1",
            conversation_id="c1",
        ),
        event(
            cost="0.0010",
            at=NOW - DAY - HOUR,
            feature="summarize",
            user=ALICE,
            input_tokens=200,
            output_tokens=50,
            latency_ms=300.0,
            step="polish",
            session_id="s1",
            conversation_id="c1",
        ),
        event(
            cost="0.0200",
            at=NOW - 2 * HOUR,
            status=Status.MAX_TOKENS,
            model=HAIKU,
            feature="summarize",
            user=BOB,
            input_tokens=3000,
            output_tokens=4000,
            latency_ms=200.0,
            session_id="s2",
        ),
        event(
            cost="0.0003",
            at=NOW - 3 * HOUR,
            status=Status.ERROR,
            feature="chat",
            user=BOB,
            input_tokens=100,
            latency_ms=400.0,
            session_id="s2",
        ),
        event(
            cost="0.0007",
            at=NOW - DAY - 2 * HOUR,
            status=Status.CONTENT_FILTER,
            feature="chat",
            user="carol",
            input_tokens=150,
            output_tokens=5,
            latency_ms=150.0,
        ),
        event(
            cost=None,
            at=NOW - HOUR // 2,
            model="my-model",
            feature="chat",
            input_tokens=500,
            output_tokens=60,
            cache_read_input_tokens=100,
        ),
        event(cost="1.5", at=NOW - 40 * DAY, user=ALICE, input_tokens=10, output_tokens=10, latency_ms=50.0),
    ]


def fill(path: Path, events: list[CostEvent]) -> Path:
    """Write ``events`` through the real sink."""
    sink = SQLiteSink(path)
    sink.write(events)
    sink.close()
    return path


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store holding ``known_events()``."""
    return fill(tmp_path / "events.db", known_events())


@pytest.fixture
def conn(store: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to ``store``."""
    connection = connect(store)
    yield connection
    connection.close()


def rows_by_key(rep: Any) -> dict[tuple[str | None, ...], Any]:
    return {row.key: row for row in rep.rows}


def run(argv: list[str]) -> tuple[int, str]:
    """``fluxgate report`` in-process; returns the status and stdout."""
    out = io.StringIO()
    status = main(argv, out=out, now_ms=NOW)
    return status, out.getvalue()


# --- the grouped report ---------------------------------------------------------------------


class TestGroupedReport:
    """Sums per group are exact and match the events written."""

    def test_by_feature_sums(self, conn: sqlite3.Connection) -> None:
        """Each feature's calls, exact cost, tokens, failures and unpriced calls are summed."""
        rows = rows_by_key(report(conn))
        summarize, chat, untracked = rows[("summarize",)], rows[("chat",)], rows[(None,)]
        assert (summarize.calls, summarize.cost_usd, summarize.unpriced_calls) == (3, D("0.0255"), 0)
        assert (summarize.input_tokens, summarize.output_tokens, summarize.reasoning_tokens) == (4200, 4150, 20)
        assert (summarize.cache_read_tokens, summarize.cache_write_tokens, summarize.failed_calls) == (2000, 500, 0)
        assert (chat.calls, chat.cost_usd, chat.unpriced_calls, chat.failed_calls) == (3, D("0.0010"), 1, 1)
        assert chat.error_rate == pytest.approx(1 / 3)
        assert (untracked.calls, untracked.cost_usd) == (1, D("1.5"))

    def test_totals(self, conn: sqlite3.Connection) -> None:
        """The totals cover every event; unpriced calls are counted, not priced at $0."""
        totals = report(conn).totals
        assert totals.calls == 7
        assert totals.cost_usd == D("1.5265")
        assert totals.unpriced_calls == 1
        assert totals.tokens == 4960 + 4225 + 2100 + 500
        assert (totals.first_ms, totals.last_ms) == (NOW - 40 * DAY, NOW - HOUR // 2)

    def test_latency_percentiles(self, conn: sqlite3.Connection) -> None:
        """p50 and p95 are nearest-rank over calls that recorded a latency."""
        rep = report(conn)
        rows = rows_by_key(rep)
        assert (rows[("summarize",)].p50_latency_ms, rows[("summarize",)].p95_latency_ms) == (200.0, 300.0)
        assert (rows[("chat",)].p50_latency_ms, rows[("chat",)].p95_latency_ms) == (150.0, 400.0)
        assert (rows[(None,)].p50_latency_ms, rows[(None,)].p95_latency_ms) == (50.0, 50.0)
        assert (rep.totals.p50_latency_ms, rep.totals.p95_latency_ms) == (150.0, 400.0)

    def test_no_latency_pass(self, conn: sqlite3.Connection) -> None:
        """latency=False leaves the percentiles out."""
        rep = report(conn, latency=False)
        assert rep.totals.p95_latency_ms is None
        assert all(row.p50_latency_ms is None for row in rep.rows)

    @pytest.mark.parametrize(
        ("group", "expected"),
        [
            ("user", {("alice",): D("1.5055"), ("bob",): D("0.0203"), ("carol",): D("0.0007"), (None,): D(0)}),
            ("model", {(SONNET,): D("1.5065"), (HAIKU,): D("0.02"), ("my-model",): D(0)}),
            ("step", {("draft",): D("0.0045"), ("polish",): D("0.001"), (None,): D("1.5210")}),
            ("session", {("s1",): D("0.0055"), ("s2",): D("0.0203"), (None,): D("1.5007")}),
            ("conversation", {("c1",): D("0.0055"), (None,): D("1.5210")}),
            ("day", {("2026-11-20",): D("0.0248"), ("2026-11-19",): D("0.0017"), ("2026-10-11",): D("1.5")}),
            (
                "status",
                {
                    ("SUCCESS",): D("1.5055"),
                    ("MAX_TOKENS",): D("0.02"),
                    ("ERROR",): D("0.0003"),
                    ("CONTENT_FILTER",): D("0.0007"),
                },
            ),
        ],
    )
    def test_every_grouping(self, conn: sqlite3.Connection, group: str, expected: dict[Any, Decimal]) -> None:
        """Every group-by gives one row per value with its exact cost."""
        rep = report(conn, group_by=(group,))
        assert {row.key: row.cost_usd for row in rep.rows} == expected
        assert sum(row.calls for row in rep.rows) == 7

    def test_days_are_utc(self, tmp_path: Path) -> None:
        """Days split at midnight UTC, to the millisecond."""
        midnight = int(datetime(2026, 11, 20, tzinfo=timezone.utc).timestamp() * 1000)
        path = fill(tmp_path / "d.db", [event(cost="1", at=midnight - 1), event(cost="2", at=midnight)])
        with closing(connect(path)) as conn:
            rows = report(conn, group_by=("day",), sort="name").rows
        assert [(row.key, row.cost_usd) for row in rows] == [(("2026-11-19",), D(1)), (("2026-11-20",), D(2))]

    def test_unpriced_group(self, conn: sqlite3.Connection) -> None:
        """A model with no price shows its calls as unpriced, with no cost."""
        row = rows_by_key(report(conn, group_by=("model",)))[("my-model",)]
        assert (row.calls, row.unpriced_calls, row.cost_usd) == (1, 1, D(0))

    def test_several_groups(self, conn: sqlite3.Connection) -> None:
        """Grouping by two names gives one row per combination."""
        rows = rows_by_key(report(conn, group_by=("feature", "user")))
        assert rows[("summarize", "alice")].cost_usd == D("0.0055")
        assert rows[("summarize", "bob")].cost_usd == D("0.02")
        assert rows[("chat", None)].unpriced_calls == 1
        assert len(rows) == 6

    @pytest.mark.parametrize(
        ("sort", "order"),
        [
            ("cost", [None, "summarize", "chat"]),
            ("calls", ["chat", "summarize", None]),
            ("tokens", ["summarize", "chat", None]),
            ("errors", ["chat", "summarize", None]),
            ("p50", ["summarize", "chat", None]),
            ("p95", ["chat", "summarize", None]),
            ("name", ["chat", "summarize", None]),
        ],
    )
    def test_sorts(self, conn: sqlite3.Connection, sort: str, order: list[str | None]) -> None:
        """Each sort orders the rows, largest first except by name."""
        assert [row.key[0] for row in report(conn, sort=sort).rows] == order

    def test_top_keeps_totals(self, conn: sqlite3.Connection) -> None:
        """top cuts the rows but not the totals."""
        rep = report(conn, top=1)
        assert [row.key for row in rep.rows] == [(None,)]
        assert (rep.total_groups, rep.totals.calls, rep.totals.cost_usd) == (3, 7, D("1.5265"))

    def test_empty_store(self, tmp_path: Path) -> None:
        """An empty store reports no rows and zero totals."""
        path = fill(tmp_path / "empty.db", [])
        with closing(connect(path)) as conn:
            rep = report(conn)
        assert rep.rows == ()
        assert (rep.totals.calls, rep.totals.cost_usd, rep.totals.p50_latency_ms) == (0, D(0), None)


class TestFilters:
    """Filters select the events a report reads."""

    @pytest.mark.parametrize(
        ("filters", "calls", "cost"),
        [
            (Filters(since_ms=NOW - DAY), 4, D("0.0248")),
            (Filters(until_ms=NOW - DAY), 3, D("1.5017")),
            (Filters(since_ms=NOW - 2 * DAY, until_ms=NOW - DAY), 2, D("0.0017")),
            (Filters(features=("summarize",)), 3, D("0.0255")),
            (Filters(features=("summarize", "chat")), 6, D("0.0265")),
            (Filters(users=("bob",)), 2, D("0.0203")),
            (Filters(statuses=("ERROR", "MAX_TOKENS")), 2, D("0.0203")),
            (Filters(models=("my-model",)), 1, D(0)),
            (Filters(features=("chat",), users=("bob",), since_ms=NOW - DAY), 1, D("0.0003")),
            (Filters(features=("nothing",)), 0, D(0)),
        ],
    )
    def test_filter(self, conn: sqlite3.Connection, filters: Filters, calls: int, cost: Decimal) -> None:
        """Each filter, alone or combined, keeps exactly the matching events."""
        totals = report(conn, filters=filters).totals
        assert (totals.calls, totals.cost_usd) == (calls, cost)

    def test_since_is_inclusive_until_exclusive(self, conn: sqlite3.Connection) -> None:
        """An event at since_ms is in; one at until_ms is out."""
        at = NOW - HOUR
        assert report(conn, filters=Filters(since_ms=at, until_ms=at + 1)).totals.calls == 1
        assert report(conn, filters=Filters(since_ms=at - 1, until_ms=at)).totals.calls == 0


class TestExactMoney:
    """Costs are summed exactly, as Decimals, however many and however large."""

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        st.lists(
            st.decimals(min_value=0, max_value=50, places=12, allow_nan=False, allow_infinity=False),
            min_size=1,
            max_size=40,
        )
    )
    def test_sum_equals_decimal_sum(self, costs: list[Decimal]) -> None:
        """The report's total equals the Decimal sum of the costs written."""
        with tempfile.TemporaryDirectory() as tmp:
            path = fill(Path(tmp) / "events.db", [event(cost=str(c), at=NOW, feature="f") for c in costs])
            with closing(connect(path)) as conn:
                assert report(conn).totals.cost_usd == sum(costs, D(0))

    def test_sum_past_int64(self, tmp_path: Path) -> None:
        """Sums past SQLite's 64-bit integers (over $9.2M) stay exact."""
        cost = D("4000000.000000000001")
        path = fill(tmp_path / "big.db", [event(cost=str(cost), at=NOW + i, feature="f") for i in range(3)])
        with closing(connect(path)) as conn:
            assert report(conn).totals.cost_usd == cost * 3
            assert waste(conn).total.cost_usd == cost * 3
            assert economics(conn, until_ms=NOW + DAY).users == ()


class TestWaste:
    """Spend on cut-off, refused and failed calls is summed apart."""

    def test_waste(self, conn: sqlite3.Connection) -> None:
        """Each kind has its calls and exact cost, against all spend."""
        w = waste(conn)
        assert (w.max_tokens.calls, w.max_tokens.cost_usd) == (1, D("0.02"))
        assert (w.refusals.calls, w.refusals.cost_usd) == (1, D("0.0007"))
        assert (w.failed.calls, w.failed.cost_usd) == (1, D("0.0003"))
        assert (w.total.calls, w.total.cost_usd, w.total.unpriced_calls) == (7, D("1.5265"), 1)
        assert w.wasted_usd == D("0.021")
        assert w.share == pytest.approx(0.021 / 1.5265)

    def test_waste_counts_unpriced_apart(self, tmp_path: Path) -> None:
        """A failed call to a model with no price is counted, not priced at $0."""
        path = fill(tmp_path / "w.db", [event(cost=None, at=NOW, status=Status.ERROR, model="x")])
        with closing(connect(path)) as conn:
            failed = waste(conn).failed
        assert (failed.calls, failed.cost_usd, failed.unpriced_calls) == (1, D(0), 1)

    def test_waste_filtered(self, conn: sqlite3.Connection) -> None:
        """Waste reads the same slice as the report."""
        w = waste(conn, filters=Filters(features=("chat",)))
        assert (w.max_tokens.calls, w.failed.calls, w.refusals.calls, w.total.calls) == (0, 1, 1, 3)


RATES = PriceTable.default().with_overrides(
    {
        SONNET: {"input": "3", "output": "15", "cache_write_5m": "3.75", "cache_write_1h": "6", "cache_read": "0.30"},
        HAIKU: {"input": "1", "output": "5", "cache_write_5m": "1.25", "cache_write_1h": "2", "cache_read": "0.10"},
    }
)


class TestCacheEfficiency:
    """Cache reads are priced against the input rate and writes at their own rates."""

    def test_savings_and_write_cost(self, conn: sqlite3.Connection) -> None:
        """Reads save (input - read rate) per token; writes cost their rate, the premium is above input."""
        cache = cache_efficiency(conn, prices=RATES)
        assert cache.saved_usd == D(2000) * D("2.70") / 1_000_000
        assert cache.write_cost_usd == D(500) * D("3.75") / 1_000_000
        assert cache.write_premium_usd == D(500) * D("0.75") / 1_000_000
        assert cache.net_usd == D("0.0054") - D("0.000375")
        assert (cache.read_tokens, cache.write_tokens) == (2000, 500)
        assert cache.unpriced_read_tokens == 100
        unpriced = next(m for m in cache.models if m.model == "my-model")
        assert (unpriced.priced, unpriced.saved_usd) == (False, D(0))

    def test_ttl_batch_and_unsplit_writes(self, tmp_path: Path) -> None:
        """1-hour writes use the 1h rate, writes without a split the 5m rate, and batch calls half price."""
        events = [
            event(
                cost="0.1",
                at=NOW,
                cache_creation_input_tokens=3000,
                cache_creation_5m_input_tokens=1000,
                cache_creation_1h_input_tokens=2000,
            ),
            event(cost="0.1", at=NOW + 1, cache_creation_input_tokens=1000),
            event(cost="0.1", at=NOW + 2, cache_read_input_tokens=1000, batch_id="b1"),
        ]
        with closing(connect(fill(tmp_path / "c.db", events))) as conn:
            cache = cache_efficiency(conn, prices=RATES)
        assert cache.write_cost_usd == (D(2000) * 6 + D(2000) * D("3.75")) / 1_000_000
        assert cache.saved_usd == D(1000) * D("2.70") / 2 / 1_000_000
        assert cache.hit_rate == pytest.approx(1000 / 5000)


class TestEconomics:
    """AI spend over 30 days is set against each user's monthly revenue."""

    def test_ratios_and_alerts(self, conn: sqlite3.Connection) -> None:
        """Spend in the window, revenue and ratio per user; the threshold flags the users above it."""
        econ = economics(conn, until_ms=NOW, threshold=D("0.0003"))
        users = {u.user_id: u for u in econ.users}
        assert set(users) == {"alice", "bob", "carol"}
        alice, bob, carol = users["alice"], users["bob"], users["carol"]
        assert (alice.spend_usd, alice.monthly_revenue, alice.name) == (D("0.0055"), D("10.0"), "Alice")
        assert alice.ratio == D("0.00055")
        assert (bob.spend_usd, bob.ratio) == (D("0.0203"), D("0.000203"))
        assert (carol.monthly_revenue, carol.ratio, carol.over_threshold) == (None, None, False)
        assert [u.user_id for u in econ.alerts] == ["alice"]
        assert (econ.spend_usd, econ.revenue, econ.users_with_revenue) == (D("0.0258"), D("110.0"), 2)
        assert econ.spend_without_revenue_usd == D("0.0007")

    def test_window(self, conn: sqlite3.Connection) -> None:
        """Only the 30 days before until_ms count."""
        econ = economics(conn, until_ms=NOW - 39 * DAY)
        assert [(u.user_id, u.spend_usd) for u in econ.users] == [("alice", D("1.5"))]

    def test_latest_revenue_and_zero_revenue(self, tmp_path: Path) -> None:
        """The latest revenue in the window wins; spend against zero revenue is an alert."""
        events = [
            event(cost="1", at=NOW - 2 * DAY, user=AiEventUser("u", monthly_revenue=10.0)),
            event(cost="1", at=NOW - DAY, user=AiEventUser("u", monthly_revenue=40.0)),
            event(cost="1", at=NOW - HOUR, user="u"),
            event(cost="0.5", at=NOW - HOUR, user=AiEventUser("free", monthly_revenue=0.0)),
        ]
        with closing(connect(fill(tmp_path / "e.db", events))) as conn:
            econ = economics(conn, until_ms=NOW, threshold=D("0.5"))
        users = {u.user_id: u for u in econ.users}
        assert (users["u"].monthly_revenue, users["u"].spend_usd, users["u"].ratio) == (D(40), D(3), D("0.075"))
        assert (users["free"].ratio, users["free"].over_threshold) == (None, True)

    def test_bad_arguments(self, conn: sqlite3.Connection) -> None:
        """A window under a day or a negative threshold is refused."""
        with pytest.raises(ReportError, match="days"):
            economics(conn, days=0)
        with pytest.raises(ReportError, match="threshold"):
            economics(conn, threshold=D(-1))


class TestOverview:
    """overview() runs every part, side by side, over the same slice."""

    def test_parts_agree(self, store: Path) -> None:
        """Each part equals the function run alone."""
        view = overview(store, filters=Filters(since_ms=NOW - 10 * DAY), now_ms=NOW, threshold=D("0.0003"))
        with closing(connect(store)) as conn:
            assert view.report == report(conn, filters=Filters(since_ms=NOW - 10 * DAY))
            assert view.waste == waste(conn, filters=Filters(since_ms=NOW - 10 * DAY))
        assert view.daily is not None
        assert {row.key for row in view.daily.rows} >= {("2026-11-20", "summarize"), ("2026-11-19", "chat")}
        assert view.by_model is not None
        assert [u.user_id for u in view.economics.alerts] == ["alice"]

    def test_without_charts(self, store: Path) -> None:
        """charts=False skips the daily and per-model views."""
        view = overview(store, now_ms=NOW, charts=False, workers=1)
        assert (view.daily, view.by_model) == (None, None)


class TestStoreErrors:
    """A missing, foreign or bad store and bad arguments raise ReportError with a clear message."""

    def test_missing(self, tmp_path: Path) -> None:
        """A missing store is named, and not created."""
        path = tmp_path / "nope.db"
        with pytest.raises(ReportError, match="no fluxgate store at"):
            connect(path)
        assert not path.exists()

    def test_not_sqlite(self, tmp_path: Path) -> None:
        """A file that is not a database is refused."""
        path = tmp_path / "text.db"
        path.write_text("hello, this is not a database at all" * 100)
        with pytest.raises(ReportError, match="not a fluxgate store"):
            connect(path)

    def test_no_events_table(self, tmp_path: Path) -> None:
        """A database without the events table is refused."""
        path = tmp_path / "other.db"
        with sqlite3.connect(path) as other:
            other.execute("CREATE TABLE t (x)")
        other.close()
        with pytest.raises(ReportError, match="no 'events' table"):
            connect(path)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"group_by": ("colour",)}, "unknown group-by 'colour'; choose from feature, user"),
            ({"group_by": ()}, "group by at least one"),
            ({"sort": "size"}, "unknown sort 'size'"),
            ({"top": 0}, "'top' must be at least 1"),
        ],
    )
    def test_bad_arguments(self, conn: sqlite3.Connection, kwargs: dict[str, Any], message: str) -> None:
        """Unknown groups and sorts, and a top below 1, are refused."""
        with pytest.raises(ReportError, match=message):
            report(conn, **kwargs)


# --- the command line ------------------------------------------------------------------------


class TestReportCommand:
    """fluxgate report prints tables, JSON or CSV, and fails in one clear line."""

    def test_json_exact(self, store: Path) -> None:
        """JSON carries exact money as decimal strings, per group and in total."""
        status, out = run(["--db", str(store), "--format", "json"])
        assert status == 0
        data = json.loads(out)
        rows = {row["feature"]: row for row in data["rows"]}
        assert D(rows["summarize"]["cost_usd"]) == D("0.0255")
        assert (rows["chat"]["calls"], rows["chat"]["unpriced_calls"]) == (3, 1)
        assert rows["summarize"]["p95_latency_ms"] == 300.0
        assert D(data["totals"]["cost_usd"]) == D("1.5265")
        assert data["totals"]["unpriced_calls"] == 1
        assert D(data["waste"]["max_tokens"]["cost_usd"]) == D("0.02")
        assert D(data["waste"]["wasted_usd"]) == D("0.021")
        assert D(data["economics"]["spend_usd"]) == D("0.0258")
        assert "saved_usd" in data["cache"]

    def test_csv_exact(self, store: Path) -> None:
        """CSV has one row per group with exact cost strings."""
        status, out = run(["--db", str(store), "--format", "csv", "--by", "feature,user", "--sort", "name"])
        assert status == 0
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [(r["feature"], r["user"]) for r in rows][:3] == [("chat", "bob"), ("chat", "carol"), ("chat", "")]
        costs = {(r["feature"], r["user"]): D(r["cost_usd"]) for r in rows}
        assert costs[("summarize", "alice")] == D("0.0055")
        assert sum(costs.values()) == D("1.5265")

    @pytest.mark.parametrize(
        ("args", "calls"),
        [
            (["--since", "1d"], 4),
            (["--since", "2026-11-19", "--until", "2026-11-20"], 2),
            (["--until", "2026-11-20T00:00:00Z"], 3),
            (["--feature", "summarize", "--feature", "chat"], 6),
            (["--user", "bob"], 2),
            (["--status", "error,max_tokens"], 2),
            (["--status", "ERROR", "--status", "CONTENT_FILTER"], 2),
            (["--model", "my-model"], 1),
        ],
    )
    def test_filter_flags(self, store: Path, args: list[str], calls: int) -> None:
        """Every filter flag reaches the query."""
        status, out = run(["--db", str(store), "--format", "json", *args])
        assert status == 0
        assert json.loads(out)["totals"]["calls"] == calls

    def test_by_and_top(self, store: Path) -> None:
        """--by can be repeated, --top cuts rows, and --sort orders them."""
        status, out = run(["--db", str(store), "--format", "json", "--by", "day", "--by", "model", "--top", "2"])
        assert status == 0
        data = json.loads(out)
        assert data["group_by"] == ["day", "model"]
        assert data["sort"] == "name"  # days read in order by default
        assert [(r["day"], r["model"]) for r in data["rows"]] == [("2026-10-11", SONNET), ("2026-11-19", SONNET)]
        assert data["total_groups"] == 5

    def test_table_with_rich(self, store: Path) -> None:
        """The terminal table shows groups, totals, unpriced calls apart, waste, cache and unit economics."""
        pytest.importorskip("rich")
        status, out = run(["--db", str(store), "--margin-alert", "0.0003"])
        assert status == 0
        self.check_table(out)
        assert "━" in out or "─" in out  # drawn by rich

    def test_table_without_rich(self, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without rich the same report prints as plain aligned text."""
        monkeypatch.setitem(sys.modules, "rich.console", None)
        status, out = run(["--db", str(store), "--margin-alert", "20%"])
        assert status == 0
        self.check_table(out)
        assert "─" not in out
        header = next(line for line in out.splitlines() if line.startswith("feature"))
        expected = "feature calls cost unknown cost input output reasoning cache read cache write errors p50 ms p95 ms"
        assert header.split() == expected.split()

    @staticmethod
    def check_table(out: str) -> None:
        lines = out.splitlines()
        summarize = next(line for line in lines if line.strip().startswith("summarize"))
        assert summarize.split()[:4] == ["summarize", "3", "$0.0255", "0"]
        total = next(line for line in lines if line.strip().startswith("total"))
        assert total.split()[:4] == ["total", "7", "$1.53", "1"]
        assert "1 call of unknown cost" in out
        assert "(none)" in out
        assert "cut off at max_tokens" in out
        assert "Cache" in out
        assert "Unit economics, last 30 days" in out

    def test_margin_alert_lists_users(self, store: Path) -> None:
        """--margin-alert names the users over the share."""
        status, out = run(["--db", str(store), "--margin-alert", "0.0003"])
        assert status == 0
        assert "1 user spends more than 0.03% of their revenue: alice" in out

    def test_default_db_from_environment(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without --db the store is $FLUXGATE_DB."""
        path = fill(tmp_path / "env.db", known_events())
        monkeypatch.setenv("FLUXGATE_DB", str(path))
        status, out = run(["--format", "json"])
        assert (status, json.loads(out)["store"]) == (0, str(path))

    def test_dispatch_from_console_script(self, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """`fluxgate report` reaches this command through the console script's dispatcher."""
        assert cli_main(["report", "--db", str(store), "--format", "csv"]) == 0
        assert capsys.readouterr().out.startswith("feature,calls,cost_usd")

    def test_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help prints the options and succeeds."""
        assert run(["--help"])[0] == 0
        assert "--margin-alert" in capsys.readouterr().out


class TestReportCommandErrors:
    """Every expected failure is one line on stderr and a non-zero status, never a traceback."""

    def check(self, capsys: pytest.CaptureFixture[str], argv: list[str], status: int, message: str) -> None:
        got, out = run(argv)
        err = capsys.readouterr().err
        assert got == status
        assert out == ""
        assert message in err
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1

    def test_missing_store(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A missing store says where it looked and how to point elsewhere."""
        self.check(capsys, ["--db", str(tmp_path / "none.db")], 1, "no fluxgate store at")

    def test_empty_store(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An empty store says there are no events."""
        path = fill(tmp_path / "empty.db", [])
        self.check(capsys, ["--db", str(path)], 1, "no events in")

    def test_nothing_matches(self, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Filters matching nothing say so."""
        self.check(capsys, ["--db", str(store), "--feature", "nope"], 1, "no events matching the filters")

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--by", "colour"], "unknown group-by 'colour'; choose from feature, user, step, model"),
            (["--by", "feature,feature"], "names a group twice"),
            (["--since", "last tuesday"], "--since: expected a duration such as 7d"),
            (["--since", "1d", "--until", "2d"], "--since must be earlier than --until"),
            (["--status", "FINE"], "unknown status 'FINE'"),
            (["--top", "0"], "expected a whole number >= 1"),
            (["--margin-alert", "lots"], "expected a share such as 0.2"),
            (["--format", "xml"], "invalid choice: 'xml'"),
            (["--sort", "size"], "invalid choice: 'size'"),
        ],
    )
    def test_usage_errors(self, store: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
        """A bad flag exits with status 2 and one line naming it."""
        self.check(capsys, ["--db", str(store), *args], 2, message)

    def test_unknown_group_before_missing_store(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A bad command line is reported even when the store is missing too."""
        self.check(capsys, ["--db", str(tmp_path / "none.db"), "--by", "colour"], 2, "unknown group-by")

    @pytest.mark.slow
    def test_console_script_has_no_traceback(self, tmp_path: Path) -> None:
        """The real process prints one line and exits 1 for a missing store."""
        done = subprocess.run(
            [sys.executable, "-m", "fluxgate", "report", "--db", str(tmp_path / "none.db")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 1
        assert done.stderr.startswith("fluxgate report: no fluxgate store at")
        assert "Traceback" not in done.stderr


class TestParseWhen:
    """--since and --until take durations, dates and ISO times."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("7d", NOW - 7 * DAY),
            ("24h", NOW - DAY),
            ("30m", NOW - 30 * 60_000),
            ("90s", NOW - 90_000),
            ("2w", NOW - 14 * DAY),
            ("1.5h", NOW - 90 * 60_000),
            ("now", NOW),
            ("2026-11-01", int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp() * 1000)),
            ("2026-11-01T06:30", int(datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc).timestamp() * 1000)),
            ("2026-11-01T06:30:00Z", int(datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc).timestamp() * 1000)),
            ("2026-11-01T08:30:00+02:00", int(datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc).timestamp() * 1000)),
        ],
    )
    def test_forms(self, text: str, expected: int) -> None:
        """Each accepted form gives the expected Unix ms."""
        assert parse_when(text, now_ms=NOW) == expected

    @pytest.mark.parametrize("text", ["", "7 days", "d7", "2026-13-01", "yesterday"])
    def test_rejects(self, text: str) -> None:
        """Anything else is a ValueError that shows the accepted forms."""
        with pytest.raises(ValueError, match="expected a duration"):
            parse_when(text, now_ms=NOW)


class TestFormatting:
    """Dollar amounts read well at every size."""

    @pytest.mark.parametrize(
        ("value", "text"),
        [
            ("0", "$0.00"),
            ("1234.5", "$1,234.50"),
            ("0.5", "$0.50"),
            ("0.0045", "$0.0045"),
            ("0.123456", "$0.1235"),
            ("0.000001", "$0.000001"),
        ],
    )
    def test_usd(self, value: str, text: str) -> None:
        """Cents from $1, four significant digits below."""
        assert format_usd(D(value)) == text


# --- tail ------------------------------------------------------------------------------------


class TestTail:
    """fluxgate tail prints the events written after it started, without sleeping in tests."""

    def test_follower_starts_at_the_end(self, store: Path) -> None:
        """Stored events are skipped; new ones arrive once, in write order."""
        with closing(connect(store)) as conn:
            follower = Follower(conn)
            assert follower.poll() == []
            new = [event(cost="0.01", at=NOW + i, feature=f"new-{i}") for i in range(3)]
            fill(store, new)
            assert [e.tracking_id for e in follower.poll()] == [e.tracking_id for e in new]
            assert follower.poll() == []

    def test_follower_since(self, store: Path) -> None:
        """With since_ms, stored events from then on come first."""
        with closing(connect(store)) as conn:
            got = Follower(conn, since_ms=NOW - 2 * HOUR).poll()
        assert sorted(e.created_at for e in got) == [NOW - 2 * HOUR, NOW - HOUR, NOW - HOUR // 2]
        assert got[0].cost_usd == D("0.0045")  # write order: the first event written

    def test_follow_limit(self, store: Path) -> None:
        """follow() stops after limit events; it sleeps only after an empty poll."""
        naps: list[float] = []
        polls = iter([False, True])
        out = io.StringIO()
        with closing(connect(store)) as conn:
            follower = Follower(conn)
            shown = follow(follower, out, interval_s=0.25, sleep=naps.append, stop=lambda: next(polls))
            assert (shown, naps) == (0, [0.25])
            fill(store, [event(cost="0.01", at=NOW + i, feature="late", user="zed") for i in range(5)])
            shown = follow(follower, out, limit=2, sleep=naps.append)
        assert (shown, naps) == (2, [0.25])
        lines = out.getvalue().splitlines()
        assert len(lines) == 2
        assert lines[0].split()[2:7] == ["SUCCESS", SONNET, "late", "zed", "$0.01"]

    def test_tail_main_json(self, store: Path) -> None:
        """tail --format json prints one CostEvent per line."""
        out = io.StringIO()
        status = tail_main(
            ["--db", str(store), "--since", "1d", "--format", "json", "--limit", "10"],
            out=out,
            now_ms=NOW,
            stop=lambda: True,
        )
        assert status == 0
        events = [json.loads(line) for line in out.getvalue().splitlines()]
        assert len(events) == 4
        assert {e["feature"] for e in events} == {"summarize", "chat"}
        assert {e["cost_usd"] for e in events} >= {"0.0045", None}

    def test_tail_main_table(self, store: Path) -> None:
        """tail prints a header, then one line per event."""
        out = io.StringIO()
        status = tail_main(["--db", str(store), "--since", "45m"], out=out, now_ms=NOW, stop=lambda: True)
        assert status == 0
        header, *lines = out.getvalue().splitlines()
        assert header.startswith("time (UTC)")
        assert len(lines) == 1
        assert "unknown" in lines[0]  # the unpriced call

    def test_tail_errors(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A missing store is waited for (one line says so), and a bad flag is one line on stderr."""
        assert tail_main(["--db", str(tmp_path / "none.db")], stop=lambda: True) == 0
        assert tail_main(["--interval", "0"], stop=lambda: True) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2
        assert "waiting for a store at" in err[0]
        assert "expected a number of seconds > 0" in err[1]
