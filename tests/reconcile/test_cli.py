"""``fluxgate reconcile`` end to end: a real store, a real HTTP server on 127.0.0.1, the CLI in process."""

from __future__ import annotations

import csv
import io
import json
import logging
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from fluxgate import Status
from fluxgate._reconcile import load_saved, render_html_section, saved_path
from fluxgate.sinks import SQLiteSink

from .conftest import (
    ADMIN_KEY,
    DAY1_MS,
    HAIKU,
    HOUR_MS,
    RANGE,
    SONNET,
    AdminServer,
    answered,
    event,
    run,
)


def _json(store: Path, *extra: str) -> dict[str, Any]:
    result = run(["--db", str(store), *RANGE, "--format", "json", *extra])
    assert result.status == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def _row(data: dict[str, Any], day: str, model: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [r for r in data["rows"] if r["day"] == day and r["model"] == model]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.usefixtures("admin_env")
class TestComparison:
    def test_the_gap_is_on_exactly_the_row_with_extra_spend(self, store: Path) -> None:
        """The 10 % untracked Sonnet spend on 2026-11-24 shows on that row, with exact amounts and tokens."""
        data = _json(store)
        gap = _row(data, "2026-11-24", SONNET)
        assert gap["tracked_cost_usd"] == "0.5"
        assert gap["reported_cost_usd"] == "0.55"
        assert gap["difference_usd"] == "0.05"
        assert gap["coverage"] == "0.90909"  # 0.5 / 0.55 = 0.909090..., truncated to six places
        assert (gap["tracked_input_tokens"], gap["reported_input_tokens"]) == (100_000, 110_000)
        assert (gap["tracked_output_tokens"], gap["reported_output_tokens"]) == (20_000, 22_000)
        others = [r for r in data["rows"] if r is not gap and r != gap]
        assert len(others) == 3
        for row in others:
            assert row["difference_usd"] == "0", row
            assert row["tracked_cost_usd"] == row["reported_cost_usd"]
            assert row["tracked_input_tokens"] == row["reported_input_tokens"]
            assert row["coverage"] == "1"

    def test_rows_cover_both_days_and_models(self, store: Path) -> None:
        """One row per day and model, in day then model order, with the documented keys."""
        data = _json(store)
        assert [(r["day"], r["model"]) for r in data["rows"]] == [
            ("2026-11-24", HAIKU),
            ("2026-11-24", SONNET),
            ("2026-11-25", HAIKU),
            ("2026-11-25", SONNET),
        ]
        assert _row(data, "2026-11-24", HAIKU)["tracked_cost_usd"] == "0.2"
        assert _row(data, "2026-11-25", HAIKU)["reported_cost_usd"] == "0.15"
        assert data["since"] == "2026-11-24"
        assert data["until"] == "2026-11-26"

    def test_totals_and_coverage_are_exact(self, store: Path) -> None:
        """Tracked $0.95 of a reported $1.00: coverage is exactly 0.95."""
        total = _json(store)["total"]
        assert total["tracked_cost_usd"] == "0.95"
        assert total["reported_cost_usd"] == "1"
        assert total["difference_usd"] == "0.05"
        assert total["coverage"] == "0.95"
        assert (total["tracked_input_tokens"], total["reported_input_tokens"]) == (295_000, 305_000)

    def test_other_platforms_are_listed_apart(self, store: Path) -> None:
        """The Bedrock call is outside the total and listed with its cost."""
        data = _json(store)
        assert data["other_platforms"] == [{"name": "bedrock", "cost_usd": "0.4", "calls": 1, "unpriced_calls": 0}]
        assert all("bedrock" not in (r["model"] or "") for r in data["rows"])
        assert any("bedrock" in note for note in data["notes"])

    def test_by_model_sums_the_days(self, store: Path) -> None:
        """``--by model`` gives one row per model across both days."""
        data = _json(store, "--by", "model")
        assert [(r["day"], r["model"], r["tracked_cost_usd"], r["reported_cost_usd"]) for r in data["rows"]] == [
            (None, HAIKU, "0.35", "0.35"),
            (None, SONNET, "0.6", "0.65"),
        ]

    def test_every_page_is_followed(self, store: Path, admin_env: AdminServer) -> None:
        """With one bucket a page, the client sends each ``next_page`` back and misses no day."""
        _json(store)
        cost_pages = [r for r in admin_env.received if r.path.endswith("/cost_report")]
        assert len(cost_pages) == 2
        assert "page" not in cost_pages[0].query
        assert cost_pages[1].query["page"][0].startswith("page_")
        assert cost_pages[0].query["limit"] == ["31"]
        assert cost_pages[0].query["group_by[]"] == ["description", "workspace_id"]

    def test_requests_carry_the_documented_headers(self, store: Path, admin_env: AdminServer) -> None:
        """The key goes in ``x-api-key`` with ``anthropic-version: 2023-06-01``, and nowhere else."""
        _json(store)
        assert admin_env.received
        for request in admin_env.received:
            headers = {k.lower(): v for k, v in request.headers.items()}
            assert headers["x-api-key"] == ADMIN_KEY
            assert headers["anthropic-version"] == "2023-06-01"
            assert "authorization" not in headers
            assert ADMIN_KEY not in request.path

    def test_web_search_priority_and_blocked_calls_end_to_end(self, tmp_path: Path, admin_env: AdminServer) -> None:
        """Search fees meet on their own row, Priority is set apart, and a BLOCKED call counts for nothing."""
        searched = event(SONNET, 0, "0.05", inp=1_000, out=100, web_search_requests=2)
        searched = attrs.evolve(
            searched,
            cost_breakdown={"input": Decimal("0.02"), "output": Decimal("0.01"), "web_search": Decimal("0.02")},
        )
        priority = event(HAIKU, 0, "0.30", inp=3_000, out=300, usage_service_tier="priority")
        blocked = event(HAIKU, 0, "0", inp=0, out=0, status=Status.BLOCKED)
        path = tmp_path / "events.db"
        sink = SQLiteSink(path)
        sink.write([searched, priority, blocked])
        sink.close()
        admin_env.calls, admin_env.extra = answered([searched, priority]), []
        data = _json(path)
        assert [(r["model"], r["kind"], r["tracked_cost_usd"], r["reported_cost_usd"]) for r in data["rows"]] == [
            (SONNET, "tokens", "0.03", "0.03"),
            (None, "web_search", "0.02", "0.02"),
        ]
        assert data["rows"][0]["tracked_web_search_requests"] == data["rows"][0]["reported_web_search_requests"] == 2
        assert data["total"]["coverage"] == "1"
        assert data["total"]["tracked_calls"] == 1
        assert data["priority_tier"]["tracked_cost_usd"] == "0.3"
        assert data["priority_tier"]["reported_input_tokens"] == 3_000
        assert data["priority_tier"]["reported_cost_usd"] == "0"

    def test_the_table_shows_rows_total_and_caveats(self, store: Path) -> None:
        """The default output is a table with the total's coverage and what cannot be seen."""
        result = run(["--db", str(store), *RANGE])
        assert result.status == 0, result.err
        assert "95.00%" in result.out
        assert "90.90%" in result.out
        assert "$0.55" in result.out
        assert "What the comparison cannot see:" in result.out
        assert "bedrock: 1 call, $0.40 tracked" in result.out


@pytest.mark.usefixtures("admin_env")
class TestErrors:
    def test_no_admin_key_is_one_line_and_exit_2(self, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without an admin key the command says so in one line and exits 2, sending nothing."""
        monkeypatch.delenv("ANTHROPIC_ADMIN_KEY")
        result = run(["--db", str(store), *RANGE])
        assert result.status == 2
        assert result.out == ""
        assert result.err.count("\n") == 1
        assert "ANTHROPIC_ADMIN_KEY" in result.err

    def test_the_regular_api_key_is_never_used(
        self, store: Path, monkeypatch: pytest.MonkeyPatch, admin_env: AdminServer
    ) -> None:
        """``ANTHROPIC_API_KEY`` alone is not an admin key: exit 2 and no request."""
        monkeypatch.delenv("ANTHROPIC_ADMIN_KEY")
        monkeypatch.setenv("ANTHROPIC_API_KEY", ADMIN_KEY)
        assert run(["--db", str(store), *RANGE]).status == 2
        assert admin_env.received == []

    def test_anthropic_s_variable_name_is_read_too(self, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """``ANTHROPIC_ADMIN_API_KEY``, the name Anthropic's examples use, works as well."""
        monkeypatch.delenv("ANTHROPIC_ADMIN_KEY")
        monkeypatch.setenv("ANTHROPIC_ADMIN_API_KEY", ADMIN_KEY)
        assert run(["--db", str(store), *RANGE]).status == 0

    def test_a_refused_key_is_one_line_without_traceback(self, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A 401 says the admin key was refused, exits 2, and shows neither a traceback nor the key."""
        wrong = "sk-ant-admin01-WRONG-0123456789"
        monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", wrong)
        result = run(["--db", str(store), *RANGE])
        assert result.status == 2
        assert "the admin key was refused (HTTP 401" in result.err
        assert "Traceback" not in result.err
        assert wrong not in result.err
        assert result.err.count("\n") == 1

    def test_403_is_refused_too(self, store: Path, admin_env: AdminServer) -> None:
        """A 403 (a key without the admin role) is reported the same way, without retrying."""
        admin_env.fail_next(403, kind="permission_error")
        result = run(["--db", str(store), *RANGE])
        assert result.status == 2
        assert "the admin key was refused (HTTP 403: permission_error" in result.err
        assert len(admin_env.received) == 1

    def test_429_then_200_waits_as_told_and_succeeds(self, store: Path, admin_env: AdminServer) -> None:
        """A 429 with ``Retry-After: 3`` is retried after exactly 3 s, then the comparison completes."""
        admin_env.fail_next(429, headers={"retry-after": "3"}, kind="rate_limit_error")
        result = run(["--db", str(store), *RANGE, "--format", "json"])
        assert result.status == 0, result.err
        assert result.sleeps == [3.0]
        assert json.loads(result.out)["total"]["coverage"] == "0.95"

    def test_persistent_500_ends_in_a_clear_error(self, store: Path, admin_env: AdminServer) -> None:
        """A server that keeps failing is tried five times with backoff, then named in one line; exit 3."""
        admin_env.always = (500, {}, b'{"type":"error","error":{"type":"api_error","message":"boom"}}')
        result = run(["--db", str(store), *RANGE])
        assert result.status == 3
        assert len(admin_env.received) == 5
        assert len(result.sleeps) == 4
        assert all(0 <= s <= 20 for s in result.sleeps)
        assert "is unavailable: HTTP 500: api_error: boom (gave up after 5 attempts)" in result.err
        assert "Traceback" not in result.err

    def test_the_key_never_appears_in_output_or_logs(
        self, store: Path, admin_env: AdminServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Retries, refusals and results all leave the key out of stdout, stderr and the log."""
        caplog.set_level(logging.DEBUG)
        texts = []
        admin_env.fail_next(429, kind="rate_limit_error")
        admin_env.fail_next(529, kind="overloaded_error")
        for fmt in ("table", "json", "csv"):
            result = run(["--db", str(store), *RANGE, "--format", fmt, "--save"])
            texts += [result.out, result.err]
        admin_env.always = (401, {}, f'{{"error":{{"type":"authentication_error","message":"{ADMIN_KEY}"}}}}'.encode())
        refused = run(["--db", str(store), *RANGE])
        assert refused.status == 2
        texts += [refused.out, refused.err, caplog.text, saved_path(store).read_text()]
        assert "retrying" in caplog.text
        assert "[admin key]" in refused.err
        for text in texts:
            assert ADMIN_KEY not in text
            assert "TESTKEY" not in text

    def test_no_store_is_one_line_and_exit_2(self, tmp_path: Path, admin_env: AdminServer) -> None:
        """A missing store is reported before any request is made."""
        result = run(["--db", str(tmp_path / "none.db"), *RANGE])
        assert result.status == 2
        assert "no fluxgate store" in result.err
        assert admin_env.received == []

    def test_a_bad_flag_is_one_line_and_exit_2(self, store: Path) -> None:
        """An unknown ``--by`` key is a usage error."""
        result = run(["--db", str(store), "--by", "feature"])
        assert result.status == 2
        assert "unknown key 'feature'" in result.err


@pytest.mark.usefixtures("admin_env")
class TestMinCoverage:
    def test_below_the_floor_exits_1(self, store: Path) -> None:
        """Coverage 0.95 under ``--min-coverage 0.98`` exits 1 after printing the comparison."""
        result = run(["--db", str(store), *RANGE, "--min-coverage", "0.98"])
        assert result.status == 1
        assert "Tracked vs billed" in result.out
        assert "coverage 95.00% is below --min-coverage 98.00%" in result.err

    def test_the_floor_is_compared_exactly(self, store: Path) -> None:
        """Exactly at the floor passes; a hair above it fails."""
        assert run(["--db", str(store), *RANGE, "--min-coverage", "95%"]).status == 0
        assert run(["--db", str(store), *RANGE, "--min-coverage", "0.9500001"]).status == 1


@pytest.mark.usefixtures("admin_env")
class TestCSV:
    def test_formula_text_is_neutralised_and_numbers_stay_numbers(self, tmp_path: Path, admin_env: AdminServer) -> None:
        """A model named like a formula gets a leading quote; its negative difference stays a plain number."""
        path = tmp_path / "events.db"
        sink = SQLiteSink(path)
        sink.write([event("=HYPERLINK(1)", 0, "0.30", inp=10, out=10), event("@SUM", 0, "0.10", inp=1, out=1)])
        sink.close()
        admin_env.calls = answered([event("@SUM", 0, "0.10", inp=1, out=1)])
        admin_env.extra = []
        result = run(["--db", str(path), *RANGE, "--format", "csv"])
        assert result.status == 0, result.err
        rows = list(csv.DictReader(io.StringIO(result.out)))
        by_model = {r["model"]: r for r in rows}
        assert set(by_model) == {"'=HYPERLINK(1)", "'@SUM"}
        formula = by_model["'=HYPERLINK(1)"]
        assert formula["difference_usd"] == "-0.3"
        assert formula["reported_cost_usd"] == "0"
        assert formula["coverage"] == ""
        assert by_model["'@SUM"]["coverage"] == "1"


@pytest.mark.usefixtures("admin_env")
class TestTerminal:
    def test_control_characters_from_data_are_escaped(self, tmp_path: Path) -> None:
        """An escape sequence in a model name is printed as text, never sent to the terminal."""
        path = tmp_path / "events.db"
        sink = SQLiteSink(path)
        sink.write([event("evil\x1b[2J\x07", 0, "0.01", inp=1, out=1)])
        sink.close()
        result = run(["--db", str(path), *RANGE])
        assert result.status == 0, result.err
        assert "\x1b" not in result.out
        assert "\x07" not in result.out
        assert "evil\\x1b[2J\\x07" in result.out


@pytest.mark.usefixtures("admin_env")
class TestSave:
    def test_save_then_load_saved_gives_the_same_result(self, store: Path) -> None:
        """``--save`` writes ``<db>.reconcile.json`` (owner-only) and ``load_saved`` reads back what was printed."""
        result = run(["--db", str(store), *RANGE, "--format", "json", "--save"])
        assert result.status == 0, result.err
        target = saved_path(store)
        assert target == store.with_name("events.db.reconcile.json")
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        loaded = load_saved(store)
        assert loaded is not None
        assert loaded.to_json() == json.loads(result.out)
        assert loaded.total.coverage == Decimal("0.95")

    def test_the_html_section_shows_the_comparison_escaped(self, tmp_path: Path, admin_env: AdminServer) -> None:
        """The "tracked vs billed" fragment carries the coverage and escapes names from the data."""
        path = tmp_path / "events.db"
        sink = SQLiteSink(path)
        sink.write([event("<script>x</script>", 0, "0.01", inp=1, out=1, created_at=DAY1_MS + HOUR_MS)])
        sink.close()
        admin_env.calls, admin_env.extra = [], []
        assert run(["--db", str(path), *RANGE, "--save"]).status == 0
        loaded = load_saved(path)
        assert loaded is not None
        fragment = render_html_section(loaded)
        assert fragment.startswith('<section class="panel" id="reconcile"><h2>Tracked vs billed</h2>')
        assert "<script>" not in fragment
        assert "&lt;script&gt;x&lt;/script&gt;" in fragment
        assert "<b>n/a</b><span>of billed spend tracked</span>" in fragment  # nothing was reported

    def test_load_saved_is_none_when_absent_or_unreadable(self, tmp_path: Path) -> None:
        """No saved result, or a damaged one, gives ``None`` so the HTML report can call it unconditionally."""
        db = tmp_path / "events.db"
        assert load_saved(db) is None
        saved_path(db).write_text('{"format": 99}')
        assert load_saved(db) is None
        saved_path(db).write_text("not json")
        assert load_saved(db) is None
