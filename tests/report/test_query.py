"""``fluxgate.report.query``: the report as typed rows for notebooks, and ``to_pandas()`` (issue 15)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from fluxgate.report import GROUPS, ReportError, Row, Rows, query

from .test_summary import DAY, HOUR, NOW, SONNET, fill, known_events

D = Decimal


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """The seven hand-summed events of ``test_summary``, the newest at NOW - 30 min."""
    return fill(tmp_path / "events.db", known_events())


def by_key(rows: Rows, name: str) -> dict[object, Row]:
    return {getattr(row, name): row for row in rows}


class TestQuery:
    """query() returns one typed row per group with the report's exact figures."""

    def test_rows_by_feature(self, store: Path) -> None:
        """Each row names its feature and carries the report's columns, money as exact Decimals."""
        rows = query(db=store)
        assert isinstance(rows, Rows)
        assert rows.by == ("feature",)
        assert [row.feature for row in rows] == [None, "summarize", "chat"]  # largest cost first
        summarize = by_key(rows, "feature")["summarize"]
        assert isinstance(summarize, Row)
        assert (summarize.calls, summarize.cost_usd, summarize.unpriced_calls) == (3, D("0.0255"), 0)
        assert (summarize.input_tokens, summarize.output_tokens, summarize.reasoning_tokens) == (4200, 4150, 20)
        assert (summarize.p50_latency_ms, summarize.p95_latency_ms) == (200.0, 300.0)
        assert summarize.user is None  # not grouped by user
        assert summarize.last == datetime.fromtimestamp((NOW - HOUR) / 1000, tz=timezone.utc)

    def test_totals(self, store: Path) -> None:
        """rows.totals covers every group, even those cut by top."""
        rows = query(db=store, top=1)
        assert len(rows) == 1
        assert rows.total_groups == 3
        assert (rows.totals.calls, rows.totals.cost_usd, rows.totals.unpriced_calls) == (7, D("1.5265"), 1)
        assert rows.totals.feature is None

    @pytest.mark.parametrize("by", [["feature", "user"], ("feature", "user"), "feature,user", "feature, user"])
    def test_several_groups(self, store: Path, by: object) -> None:
        """Several groups, as a list or comma-separated, give one row per combination."""
        rows = query(by, db=store)  # type: ignore[arg-type]
        assert rows.by == ("feature", "user")
        costs = {(row.feature, row.user): row.cost_usd for row in rows}
        assert costs[("summarize", "alice")] == D("0.0055")
        assert costs[("summarize", "bob")] == D("0.02")

    def test_days_are_dates(self, store: Path) -> None:
        """Grouped by day, each row's day is a date (UTC)."""
        days = {row.day: row.cost_usd for row in query("day", db=store)}
        assert days == {date(2026, 11, 20): D("0.0248"), date(2026, 11, 19): D("0.0017"), date(2026, 10, 11): D("1.5")}

    @pytest.mark.parametrize(
        "since",
        [
            datetime.fromtimestamp((NOW - DAY) / 1000, tz=timezone.utc),
            datetime.fromtimestamp((NOW - DAY) / 1000, tz=timezone.utc).replace(tzinfo=None),  # naive is UTC
            datetime.fromtimestamp((NOW - DAY) / 1000, tz=timezone(timedelta(hours=2))),
        ],
    )
    def test_since_datetimes(self, store: Path, since: datetime) -> None:
        """since takes an aware datetime in any zone, or a naive one read as UTC."""
        assert query(db=store, since=since).totals.calls == 4

    def test_since_strings_and_dates(self, store: Path) -> None:
        """since/until take the command line's forms, a date (midnight UTC) and a timedelta ago."""
        assert query(db=store, since=date(2026, 11, 19), until=date(2026, 11, 20)).totals.calls == 2
        assert query(db=store, since="2026-11-19", until="2026-11-20").totals.calls == 2
        recent = query(db=store, since=timedelta(days=365 * 50)).totals.calls
        assert recent == 7

    def test_where(self, store: Path) -> None:
        """where filters on feature, user, model and status; a str or a list of them; statuses in any case."""
        assert query(db=store, where={"feature": "chat"}).totals.calls == 3
        assert query(db=store, where={"user": ["bob", "carol"]}).totals.calls == 3
        assert query(db=store, where={"status": ["error", "MAX_TOKENS"]}).totals.cost_usd == D("0.0203")
        assert query(db=store, where={"model": SONNET, "feature": "summarize"}).totals.calls == 2

    def test_default_store(self, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without db, the store is $FLUXGATE_DB, as for the command."""
        monkeypatch.setenv("FLUXGATE_DB", str(store))
        assert query().totals.calls == 7

    def test_groups_are_row_fields(self) -> None:
        """Every group name is a field of Row."""
        assert set(GROUPS) <= {field.name for field in attrs.fields(Row)}


class TestQueryErrors:
    """Bad arguments and missing stores raise ReportError (a ValueError) naming what is wrong."""

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"by": "colour"}, "unknown group-by 'colour'"),
            ({"by": 3}, "'by' must be a group name"),
            ({"since": "last tuesday"}, "'since': expected a duration such as 7d"),
            ({"until": 1_700_000_000}, "'until' must be a str such as '7d'"),
            ({"since": "1d", "until": "2d"}, "'since' must be earlier than 'until'"),
            ({"where": {"colour": "red"}}, "unknown where key 'colour'; choose from feature, user, model, status"),
            ({"where": {"status": "FINE"}}, "unknown status 'FINE'"),
            ({"where": {"user": []}}, "where['user'] must be a str or a non-empty list"),
            ({"sort": "size"}, "unknown sort 'size'"),
        ],
    )
    def test_bad_arguments(self, store: Path, kwargs: dict[str, object], message: str) -> None:
        """Each mistake is a ReportError whose message says what was expected."""
        with pytest.raises(ReportError, match=message.replace("(", r"\(").replace("[", r"\[")):
            query(db=store, **kwargs)  # type: ignore[arg-type]

    def test_missing_store(self, tmp_path: Path) -> None:
        """No store is a ReportError (and so a ValueError) that says where it looked."""
        with pytest.raises(ValueError, match="no fluxgate store at"):
            query(db=tmp_path / "none.db")


class TestToPandas:
    """Rows.to_pandas() builds a DataFrame with a column per group and per figure."""

    def test_data_frame(self, store: Path) -> None:
        """The frame has the groups, then the report's columns; money stays exact."""
        pytest.importorskip("pandas")
        frame = query(["feature", "user"], db=store).to_pandas()
        assert list(frame.columns[:4]) == ["feature", "user", "calls", "cost_usd"]
        assert "model" not in frame.columns
        assert len(frame) == 6
        assert sum(frame["cost_usd"]) == D("1.5265")
        row = frame[(frame["feature"] == "summarize") & (frame["user"] == "alice")].iloc[0]
        assert (row["calls"], row["cost_usd"]) == (2, D("0.0055"))

    def test_without_pandas(self, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without pandas, to_pandas() raises an ImportError that says how to get it."""
        monkeypatch.setitem(sys.modules, "pandas", None)
        rows = query(db=store)
        with pytest.raises(ImportError, match="pip install pandas"):
            rows.to_pandas()


class TestImport:
    """fluxgate.report is loaded only when used."""

    def test_import_fluxgate_does_not_load_it(self) -> None:
        """import fluxgate leaves fluxgate.report and the report package unloaded."""
        code = (
            "import sys, fluxgate\n"
            "assert 'fluxgate.report' not in sys.modules\n"
            "assert 'fluxgate._report' not in sys.modules\n"
            "import fluxgate.report\n"
            "assert fluxgate.report.query\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
