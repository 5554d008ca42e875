"""``fluxgate report``: tables that fit the terminal, JSON without exponents, aborted streams apart (issue 15)."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fluxgate import AiEventUser, Status
from fluxgate._cli.report import main as report_main

from .events import HOUR, NOW, event, fill, fluxgate_cli

D = Decimal


def run(argv: list[str]) -> str:
    out = io.StringIO()
    assert report_main(argv, out=out, now_ms=NOW) == 0
    return out.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Calls over three features with every column non-empty, so a full table is about 140 characters wide."""
    events = [
        event(
            cost=str(D("0.0123") * (i + 1)),
            at=NOW - HOUR * (i + 1),
            feature=feature,
            user=AiEventUser(f"user-{i}", monthly_revenue=49.0),
            input_tokens=123_456,
            output_tokens=12_345,
            reasoning_tokens=2_345,
            cache_read_input_tokens=345_678,
            cache_creation_input_tokens=45_678,
            latency_ms=1234.0 + i,
        )
        for i, feature in enumerate(["summarize-support-tickets", "chat", "search"])
    ]
    return fill(tmp_path / "events.db", events)


class TestWidth:
    """Tables fit the terminal's width, and say which columns they left out."""

    @pytest.mark.slow
    @pytest.mark.parametrize("columns", [80, 100])
    def test_rich_table_fits(self, store: Path, columns: int) -> None:
        """The console script, drawing with rich at COLUMNS=80 or 100, prints no line wider than that."""
        pytest.importorskip("rich")
        done = fluxgate_cli("report", "--db", str(store), "--since", "2020-01-01", env={"COLUMNS": str(columns)})
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert max(len(line) for line in lines) <= columns
        assert "─" in done.stdout  # drawn by rich
        assert f"Left out to fit {columns} columns:" in done.stdout
        row = next(line for line in lines if "summarize-support-tickets" in line)
        assert {"$0.0123", "1"} <= set(row.split())  # the cost and calls are kept

    def test_plain_table_fits(self, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without rich, at COLUMNS=60, the plain tables and notes fit too; the least useful columns went first."""
        monkeypatch.setitem(sys.modules, "rich.console", None)
        monkeypatch.setenv("COLUMNS", "60")
        out = run(["--db", str(store), "--margin-alert", "0.2"])
        assert max(len(line) for line in out.splitlines()) <= 60
        header = next(line for line in out.splitlines() if line.startswith("feature"))
        assert header.split()[:4] == ["feature", "calls", "cost", "unknown"]
        assert "reasoning" not in header
        note = " ".join(out[out.index("Left out to fit 60 columns:") :].split("(")[0].split())  # unwrapped
        assert {"reasoning", "cache read", "cache write", "p50 ms"} <= {
            n.strip() for n in note.split(":")[1].split(",")
        }

    def test_wide_terminal_keeps_everything(self, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """At COLUMNS=200 every column is shown and nothing is said to be left out."""
        monkeypatch.setenv("COLUMNS", "200")
        out = run(["--db", str(store)])
        assert "Left out" not in out
        assert "reasoning" in out
        assert "p50 ms" in out

    def test_no_terminal_keeps_everything(self, store: Path) -> None:
        """Written to a pipe or file with no COLUMNS, the table keeps every column."""
        out = run(["--db", str(store)])
        assert "Left out" not in out
        assert "cache write" in out

    def test_long_names_are_clipped_last(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """A name longer than the terminal allows is cut with an ellipsis rather than pushing figures off screen."""
        monkeypatch.setitem(sys.modules, "rich.console", None)
        monkeypatch.setenv("COLUMNS", "50")
        path = fill(tmp_path / "l.db", [event(cost="1.5", feature="x" * 120)])
        out = run(["--db", str(path)])
        row = next(line for line in out.splitlines() if line.startswith("xxx"))
        assert len(row) <= 50
        assert "\N{HORIZONTAL ELLIPSIS}" in row
        assert "$1.50" in row


EXPONENT = re.compile(r"\d[eE][+-]?\d")


def walk(value: Any) -> list[str]:
    """Every scalar in a JSON document, as its text."""
    if isinstance(value, dict):
        return [text for item in value.values() for text in walk(item)]
    if isinstance(value, list):
        return [text for item in value for text in walk(item)]
    return [json.dumps(value)]


class TestNoExponents:
    """Money and ratios are decimal strings written out in full, in JSON and CSV."""

    @pytest.fixture
    def tiny(self, tmp_path: Path) -> Path:
        """A tenth of a micro-dollar, a user whose spend is $0 of a $10.0 revenue, and one failed call in a million."""
        user = AiEventUser("free-rider", monthly_revenue=10.0)
        events = [
            event(cost="0.0000001", at=NOW - HOUR, feature="cheap"),
            event(cost="0", at=NOW - HOUR, feature="free", user=user),
            event(cost="0.00000005", at=NOW - HOUR, feature="rare", status=Status.ERROR),
        ]
        return fill(tmp_path / "tiny.db", events)

    def test_json(self, tiny: Path) -> None:
        """No value in the JSON has an exponent: "0E+1" is "0" and 1E-7 is "0.0000001"."""
        data = json.loads(run(["--db", str(tiny), "--format", "json"]))
        found = [text for text in walk(data) if EXPONENT.search(text)]
        assert found == []
        rows = {row["feature"]: row for row in data["rows"]}
        assert rows["cheap"]["cost_usd"] == "0.0000001"
        assert rows["rare"]["error_rate"] == "1"
        assert data["totals"]["cost_usd"] == "0.00000015"
        assert data["economics"]["users"][0]["ratio"] == "0"
        assert data["economics"]["ratio"] == "0"
        assert D(data["waste"]["share"]) == D("0.00000005") / D("0.00000015")

    def test_ratios_are_exact_strings(self, tmp_path: Path) -> None:
        """The error rate, the waste share and the cache hit rate are exact decimal strings, not floats."""
        events = [event(feature="f", status=Status.ERROR)] + [event(feature="f") for _ in range(2)]
        data = json.loads(run(["--db", str(fill(tmp_path / "r.db", events)), "--format", "json"]))
        assert data["rows"][0]["error_rate"] == "0.3333333333333333333333333333"
        assert isinstance(data["cache"]["hit_rate"], str)
        assert isinstance(data["waste"]["share"], str)

    def test_csv(self, tiny: Path) -> None:
        """CSV cells have no exponent either."""
        rows = list(csv.DictReader(io.StringIO(run(["--db", str(tiny), "--format", "csv"]))))
        assert {row["feature"]: row["cost_usd"] for row in rows}["cheap"] == "0.0000001"
        assert not [cell for row in rows for cell in row.values() if EXPONENT.search(cell)]


class TestAborted:
    """Aborted streams are counted apart, and calls with an estimated cost are counted."""

    @pytest.fixture
    def aborted(self, tmp_path: Path) -> Path:
        events = [
            event(cost="0.01", feature="chat", streamed=True),
            event(cost="0.02", feature="chat", streamed=True, aborted=True, cost_status="estimated_usage"),
            event(cost="0.04", feature="chat", streamed=True, aborted=True, status=Status.ERROR),
            event(cost="0.08", feature="search", cost_status="estimated_price"),
            event(cost="0.16", feature="search", status=Status.MAX_TOKENS),
        ]
        return fill(tmp_path / "aborted.db", events)

    def test_json(self, aborted: Path) -> None:
        """Rows count aborted and estimated calls; waste holds aborted streams that did not fail, once."""
        data = json.loads(run(["--db", str(aborted), "--format", "json"]))
        rows = {row["feature"]: row for row in data["rows"]}
        assert (rows["chat"]["aborted_calls"], rows["chat"]["estimated_calls"]) == (2, 1)
        assert (rows["search"]["aborted_calls"], rows["search"]["estimated_calls"]) == (0, 1)
        assert data["totals"]["aborted_calls"] == 2
        waste = data["waste"]
        assert (waste["aborted"]["calls"], waste["aborted"]["cost_usd"]) == (1, "0.02")
        assert (waste["failed"]["calls"], waste["failed"]["cost_usd"]) == (1, "0.04")
        assert waste["wasted_usd"] == "0.22"  # max_tokens 0.16 + aborted 0.02 + failed 0.04

    def test_table(self, aborted: Path) -> None:
        """The terminal table gets an "aborted" column and says what it counts."""
        out = run(["--db", str(aborted)])
        header = next(line for line in out.splitlines() if line.split()[:1] == ["feature"])
        assert "aborted" in header.split()
        assert "2 streams aborted before the end" in out
        assert "2 calls with an estimated cost" in out
        assert "aborted streams" in out  # the waste row

    def test_html(self, aborted: Path, tmp_path: Path) -> None:
        """The HTML table gets the column, the page says what it counts, and waste has the bar."""
        page = tmp_path / "report.html"
        run(["--db", str(aborted), "--html", str(page)])
        html = page.read_text(encoding="utf-8")
        assert "<th>aborted</th>" in html
        assert "2 streams aborted before the end" in html
        assert ">aborted streams<" in html

    def test_no_aborted_column_without_aborted_calls(self, tmp_path: Path) -> None:
        """A store with no aborted stream keeps the usual columns."""
        out = run(["--db", str(fill(tmp_path / "n.db", [event(feature="f")]))])
        header = next(line for line in out.splitlines() if line.split()[:1] == ["feature"])
        assert "aborted" not in header.split()
        assert "aborted before the end" not in out

    def test_store_without_the_column(self, tmp_path: Path) -> None:
        """A store written before events had an aborted column reads as "none aborted"."""
        path = fill(tmp_path / "old.db", [event(cost="0.5", feature="f"), event(cost="0.25", feature="f")])
        conn = sqlite3.connect(path)
        conn.execute("ALTER TABLE events DROP COLUMN aborted")
        conn.commit()
        conn.close()
        data = json.loads(run(["--db", str(path), "--format", "json"]))
        assert (data["totals"]["calls"], data["totals"]["aborted_calls"], data["totals"]["cost_usd"]) == (2, 0, "0.75")
        assert data["waste"]["aborted"]["calls"] == 0
        assert "aborted before the end" not in run(["--db", str(path)])  # the table reads it too
