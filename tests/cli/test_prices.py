"""``fluxgate prices``: the table, one model's row, JSON output, exit codes, and ``--check``."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from datetime import datetime, timezone

import pytest

from fluxgate._cli.main import main as fluxgate_main
from fluxgate._cli.prices import main
from fluxgate._pricing import compare, genai_prices_table
from fluxgate._pricing.table import default_table


class TestList:
    def test_lists_every_row(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without an id, every model is listed with its rates, source, date and provenance."""
        assert main([]) == 0
        out = capsys.readouterr().out
        assert default_table().version in out
        for column in ("model", "input", "5m write", "1h write", "read", "output", "source", "date", "official"):
            assert column in out
        for row in default_table().rows():
            assert row.key in out
        sonnet = next(line for line in out.splitlines() if line.startswith("claude-sonnet-4-6 "))
        assert sonnet.split()[1:6] == ["3", "3.75", "6", "0.30", "15"]
        assert "claude-sonnet-5-5 (from 2026-10-07)" in out
        assert "prompt > 100,000" in out

    def test_unpriced_rows_say_so(self, capsys: pytest.CaptureFixture[str]) -> None:
        """NOT FOUND models are listed without prices."""
        main([])
        line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("claude-mythos-5-2 "))
        assert "no price" in line

    def test_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--json prints the version and every row with prices as decimal strings."""
        assert main(["--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["version"] == default_table().version
        assert len(data["rows"]) == len(default_table().rows())
        haiku = next(row for row in data["rows"] if row["key"] == "claude-3-haiku-20240307")
        assert haiku["rates"]["cache_read"] == "0.03"

    def test_reached_through_the_console_script(self, capsys: pytest.CaptureFixture[str]) -> None:
        """`fluxgate prices` dispatches to this command."""
        assert fluxgate_main(["prices", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["version"] == default_table().version


class TestModel:
    def test_shows_the_row_and_why(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An id shows the row it resolves to, the resolution reason and the modifiers."""
        assert main(["us.anthropic.claude-sonnet-4-5-20250929-v1:0"]) == 0
        out = capsys.readouterr().out
        assert "-> claude-sonnet-4-5-20250929 (Claude Sonnet 4.5)" in out
        assert "stripped Bedrock region prefix 'us.'" in out
        assert "regional endpoint: yes" in out
        assert "prompt > 200,000" in out

    def test_unknown_id_exits_1(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown id exits with status 1 and a clear message on stderr."""
        assert main(["gpt-4o"]) == 1
        captured = capsys.readouterr()
        assert "unknown model id 'gpt-4o'" in captured.err
        assert captured.out == ""

    def test_known_unpriced_id(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A known model without an official price says so."""
        assert main(["claude-mythos-5-2"]) == 0
        assert "known model, no official price" in capsys.readouterr().out

    def test_json_model(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--json with an id prints the resolution and the row in effect."""
        assert main(["--json", "anthropic.claude-opus-4-6-v1"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert (data["key"], data["platform"], data["regional"]) == ("claude-opus-4-6", "bedrock", False)
        assert data["row"]["fast"]["input"] == "30"

    def test_json_unknown_exits_1(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--json with an unknown id prints a null key and exits 1."""
        assert main(["--json", "nope"]) == 1
        assert json.loads(capsys.readouterr().out)["key"] is None

    @pytest.mark.parametrize(("day", "read"), [("2026-10-06", "0.20"), ("2026-10-07", "0.10")])
    def test_at_picks_the_effective_row(self, capsys: pytest.CaptureFixture[str], day: str, read: str) -> None:
        """--at shows the row in effect on that day."""
        assert main(["--json", "--at", day, "claude-sonnet-5-5"]) == 0
        assert json.loads(capsys.readouterr().out)["row"]["rates"]["cache_read"] == read


class TestArguments:
    def test_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help prints usage and exits 0."""
        assert main(["--help"]) == 0
        assert "fluxgate prices" in capsys.readouterr().out

    def test_bad_option(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown option exits 2 with argparse's message."""
        assert main(["--nope"]) == 2
        assert "unrecognized arguments" in capsys.readouterr().err

    def test_bad_date(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--at with something that is not a date exits 2."""
        assert main(["--at", "yesterday", "claude-sonnet-5-5"]) == 2
        assert "--at must be a date" in capsys.readouterr().err


needs_genai = pytest.mark.skipif(
    importlib.util.find_spec("genai_prices") is None, reason="genai-prices is not installed (it needs Python 3.11+)"
)


class TestCheck:
    def test_without_genai_prices_exits_2(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without genai-prices, --check says to install it and exits 2."""
        monkeypatch.setitem(sys.modules, "genai_prices", None)  # what an uninstalled package looks like to import
        assert main(["--check"]) == 2
        captured = capsys.readouterr()
        assert "install genai-prices to compare" in captured.err
        assert captured.out == ""

    def test_unknown_model_exits_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--check with an id that resolves to no row has nothing to compare and exits 2."""
        assert main(["--check", "gpt-4o"]) == 2
        assert "unknown model id 'gpt-4o'" in capsys.readouterr().err

    @needs_genai
    def test_one_line_per_disagreement(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Each stdout line is model, component, ours (source), theirs (genai-prices source); exit 1 iff any."""
        status = main(["--check", "--at", "2026-11-27"])
        captured = capsys.readouterr()
        lines = captured.out.splitlines()
        assert status == (1 if lines else 0)
        keys = {row.key for row in default_table().rows()}
        for line in lines:
            model, component, rest = line.split(maxsplit=2)
            assert model in keys
            assert component
            assert re.fullmatch(r"ours \S+( price)? \(.+\)\s+theirs \S+( price)? \(genai-prices .+\)", rest), line
        assert f"{len(lines)} disagreement(s) between fluxgate {default_table().version} and genai-prices" in (
            captured.err
        )

    @needs_genai
    def test_one_model_as_json(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--check --json with an id compares that row only and prints the disagreements as JSON."""
        status = main(["--check", "--json", "--at", "2026-11-27", "claude-mythos-5-2"])
        data = json.loads(capsys.readouterr().out)
        assert (data["ours"], data["at"]) == (default_table().version, "2026-11-27")
        assert data["theirs"].startswith("genai-prices ")
        assert status == (1 if data["disagreements"] else 0)
        assert {d["model"] for d in data["disagreements"]} <= {"claude-mythos-5-2"}

    @needs_genai
    def test_lines_match_the_comparison(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The printed lines are exactly the comparison of the bundled table with genai-prices at that date."""
        main(["--check", "--at", "2026-03-01"])
        lines = capsys.readouterr().out.splitlines()
        table = default_table()
        at = datetime(2026, 3, 1, tzinfo=timezone.utc)
        found = compare(
            table,
            genai_prices_table(dict.fromkeys(r.key for r in table.rows()), at=at),
            at_ms=int(at.timestamp() * 1000),
        )
        assert [line.split()[:2] for line in lines] == [[d.model, d.component] for d in found]
