"""Budgets on their own: windows, stores, worst-case estimates."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from fluxgate import ConfigurationError
from fluxgate._budget import Budget, MemorySpendStore, worst_case_usd
from fluxgate._budget.estimate import estimate_input_tokens
from fluxgate._models import ContextFrame
from fluxgate._pricing.table import PriceTable
from fluxgate._store import SQLiteSpendStore

from ..conftest import fixtures_dir

REPO = Path(__file__).resolve().parents[2]


def ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


class TestBudgetSettings:
    def test_per_and_scope_either_way(self) -> None:
        """The window and the grouping can be given in either keyword."""
        a = Budget(5, per="user", scope="month")
        b = Budget(5, per="month", scope="user")
        assert (a.grouping, a.window) == (b.grouping, b.window) == ("user", "month")
        assert a.name == b.name

    @pytest.mark.parametrize(
        ("window", "hours"), [("24h", 24), ("rolling_24h", 24), ("last-6h", 6), ("6 hours", 6), ("hour", 1)]
    )
    def test_rolling_window_spellings(self, window: str, hours: int) -> None:
        """Rolling windows can be written several natural ways."""
        budget = Budget(1, per=window)
        assert (budget.window, budget.hours) == ("hours", hours)

    def test_mapping_scope_is_a_filter(self) -> None:
        """scope={"feature": ...} restricts the budget like where=."""
        budget = Budget(1, per="user", scope={"feature": "agent"})
        assert (budget.grouping, dict(budget.where)) == ("user", {"feature": "agent"})
        assert budget.group_key(ContextFrame.build(feature="chat", user="u")) is None

    def test_defaults(self) -> None:
        """Without settings a budget is global, per UTC day."""
        budget = Budget("2.50")
        assert (budget.grouping, budget.window, budget.tz, budget.limit_usd) == (
            "global",
            "day",
            "UTC",
            Decimal("2.50"),
        )

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"limit_usd": -1}, "limit_usd"),
            ({"limit_usd": "lots"}, "limit_usd"),
            ({"limit_usd": True}, "limit_usd"),
            ({"limit_usd": 1, "per": "fortnight"}, "window"),
            ({"limit_usd": 1, "per": "user", "scope": "feature"}, "two groupings"),
            ({"limit_usd": 1, "per": "day", "scope": "month"}, "two windows"),
            ({"limit_usd": 1, "tz": "Mars/Olympus"}, "tz"),
            ({"limit_usd": 1, "warn_at": 1.5}, "warn_at"),
            ({"limit_usd": 1, "on_unpriced": "maybe"}, "on_unpriced"),
            ({"limit_usd": 1, "where": {"colour": "red"}}, "where"),
        ],
    )
    def test_bad_settings_raise(self, kwargs: dict[str, object], field: str) -> None:
        """A wrong setting raises ConfigurationError saying which."""
        with pytest.raises(ConfigurationError, match=field):
            Budget(**kwargs)  # type: ignore[arg-type]

    def test_group_keys(self) -> None:
        """Calls are grouped by the budget's field; calls without it are not its business."""
        per_user = Budget(1, per="user")
        assert per_user.group_key(ContextFrame.build(user="u1")) != per_user.group_key(ContextFrame.build(user="u2"))
        assert per_user.group_key(ContextFrame.build(feature="f")) is None
        only_chat = Budget(1, where={"feature": "chat"})
        assert only_chat.group_key(ContextFrame.build(feature="chat")) is not None
        assert only_chat.group_key(ContextFrame.build(feature="search")) is None


class TestWindows:
    def test_calendar_day_utc(self) -> None:
        """A UTC day runs midnight to midnight."""
        budget = Budget(1, per="day")
        start, end = budget.window_bounds(ms("2026-11-27T13:45:00+00:00") / 1000)
        assert (start, end) == (ms("2026-11-27T00:00:00+00:00"), ms("2026-11-28T00:00:00+00:00"))

    def test_calendar_day_in_zone_across_dst(self) -> None:
        """A Paris day is local midnight to midnight, 23 hours on the spring DST change."""
        budget = Budget(1, per="day", tz="Europe/Paris")
        start, end = budget.window_bounds(ms("2026-03-29T12:00:00+02:00") / 1000)
        assert start == ms("2026-03-29T00:00:00+01:00")
        assert end == ms("2026-03-30T00:00:00+02:00")
        assert end - start == 23 * 3_600_000

    def test_month(self) -> None:
        """A month is the calendar month, not 28 or 30 days."""
        budget = Budget(1, per="month", tz="America/New_York")
        start, end = budget.window_bounds(ms("2026-12-31T23:30:00-05:00") / 1000)
        assert (start, end) == (ms("2026-12-01T00:00:00-05:00"), ms("2027-01-01T00:00:00-05:00"))

    def test_rolling_hours(self) -> None:
        """A rolling window looks back the given number of hours."""
        budget = Budget(1, per="6h")
        now = ms("2026-11-27T12:00:00+00:00")
        start, _ = budget.window_bounds(now / 1000)
        assert start == now - 6 * 3_600_000


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MemorySpendStore | SQLiteSpendStore:
    return MemorySpendStore() if request.param == "memory" else SQLiteSpendStore(tmp_path / "budget.db")


class TestStores:
    def test_reserve_until_full(self, store: MemorySpendStore | SQLiteSpendStore) -> None:
        """Reservations succeed until the next would cross the limit, exactly."""
        claim = [("k", 0, 10_000, 100)]
        assert [store.reserve(claim, 30, 5) is not None for _ in range(4)] == [True, True, True, False]
        assert store.spent("k", 0, 10_000) == 90

    def test_settle_replaces_reservation(self, store: MemorySpendStore | SQLiteSpendStore) -> None:
        """Settling swaps the worst case for the real cost, freeing room."""
        rid = store.reserve([("k", 0, 10_000, 100)], 80, 5)
        assert rid is not None
        store.settle(rid, 10)
        assert store.spent("k", 0, 10_000) == 10
        assert store.reserve([("k", 0, 10_000, 100)], 80, 6) is not None

    def test_all_or_nothing(self, store: MemorySpendStore | SQLiteSpendStore) -> None:
        """A reservation that fails one claim takes nothing from the others."""
        store.reserve([("b", 0, 10_000, 50)], 40, 1)
        assert store.reserve([("a", 0, 10_000, 100), ("b", 0, 10_000, 50)], 20, 2) is None
        assert store.spent("a", 0, 10_000) == 0

    def test_window_excludes_other_windows(self, store: MemorySpendStore | SQLiteSpendStore) -> None:
        """Spend outside the window does not count."""
        store.reserve([("k", 0, 1000, 100)], 90, 500)
        assert store.reserve([("k", 1000, 2000, 100)], 90, 1500) is not None


WORKER = """
import sys
from fluxgate._store import SQLiteSpendStore
store = SQLiteSpendStore(sys.argv[1])
taken = 0
while store.reserve([("shared", 0, 2**62, int(sys.argv[2]))], int(sys.argv[3]), 1) is not None:
    taken += 1
print(taken)
"""


@pytest.mark.slow
class TestProcesses:
    def test_eight_processes_never_overspend(self, tmp_path: Path) -> None:
        """Eight processes reserving against one limit take exactly what fits, no more."""
        db, limit, amount = str(tmp_path / "shared.db"), 1_000_000, 7_000
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, db, str(limit), str(amount)], stdout=subprocess.PIPE, env=env, text=True
            )
            for _ in range(8)
        ]
        taken = sum(int(p.communicate(timeout=120)[0]) for p in procs)
        assert taken == limit // amount
        assert SQLiteSpendStore(db).spent("shared", 0, 2**62) == taken * amount <= limit


class TestWorstCase:
    def test_estimate_is_conservative_on_recordings(self) -> None:
        """For every recorded request, the estimate is at least the input the API counted."""
        base = fixtures_dir()
        checked = 0
        for path in sorted(base.glob("*.json")):
            recording = json.loads(path.read_text())
            expected = recording["expected"]
            if expected.get("input_tokens") is None or not isinstance(recording["request"].get("messages"), list):
                continue
            if "iterations" in (recording.get("response") or {}).get("usage", {}) or "tool-search" in path.name:
                continue  # server-side steps add input the request does not show
            counted = (
                expected["input_tokens"]
                + (expected["cache_creation_input_tokens"] or 0)
                + (expected["cache_read_input_tokens"] or 0)
            )
            if "web-search" in path.name or "programmatic" in path.name:
                continue  # search results and container output join the prompt server-side
            assert estimate_input_tokens(recording["request"]) >= counted, path.name
            checked += 1
        assert checked >= 20

    def test_worst_case_prices_max_tokens_as_output(self) -> None:
        """The worst case is the estimated input plus max_tokens of output, at the model's rates."""
        request = {"model": "claude-sonnet-4-6", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]}
        tokens = estimate_input_tokens(request)
        expected = (tokens * Decimal(3) + 1000 * Decimal(15)) / Decimal(1_000_000)
        assert worst_case_usd(PriceTable.default(), "claude-sonnet-4-6", request) == expected

    def test_worst_case_with_caching_uses_1h_write_rate(self) -> None:
        """A request that asks for caching has its input priced at the 1-hour write rate."""
        request = {
            "max_tokens": 10,
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "x" * 400, "cache_control": {"type": "ephemeral"}}],
                }
            ],
        }
        tokens = estimate_input_tokens(request)
        expected = (tokens * Decimal(6) + 10 * Decimal(15)) / Decimal(1_000_000)
        assert worst_case_usd(PriceTable.default(), "claude-sonnet-4-6", request) == expected

    def test_unpriced_model(self) -> None:
        """An unknown model has no worst case."""
        assert worst_case_usd(PriceTable(version="empty", models={}), "claude-unknown", {"max_tokens": 1}) is None


class TestBadBudgets:
    @pytest.mark.parametrize(
        ("options", "field"),
        [
            ({"tz": 5}, "tz"),
            ({"tz": "Mars/Olympus"}, "tz"),
            ({"per": "99999999999999999999h"}, "window"),
            ({"per": 5}, "per"),
            ({"where": 5}, "where"),
            ({"name": 5}, "name"),
            ({"warn_at": "x"}, "warn_at"),
            ({"on_warn": 5}, "on_warn"),
            ({"on_unpriced": 3}, "on_unpriced"),
        ],
    )
    def test_bad_field_is_named(self, options: dict[str, object], field: str) -> None:
        """Every Budget field is checked when the budget is made, with a ConfigurationError naming it."""
        with pytest.raises(ConfigurationError, match=field):
            Budget(1, **options)  # type: ignore[arg-type]
