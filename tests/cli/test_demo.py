"""The demo (`make demo`, `fluxgate demo`) works offline, records what it says and ends with a reconcile."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from .events import REPO, event, fill, fluxgate_cli

#: The calls the demo app makes, per step ("-" for the endpoint's own call).
STEPS = {
    "-": 1,
    "draft": 4,
    "draft/self-check": 4,
    "expand-query": 4,
    "rerank": 4,
    "reply": 1,
    "retry-with-bad-settings": 1,
}


def check_store(db: Path) -> None:
    """Every call the app made is in the store, with its caching and users."""
    conn = sqlite3.connect(db)
    rows = dict(conn.execute("SELECT COALESCE(step, '-'), COUNT(*) FROM events GROUP BY step").fetchall())
    cached = conn.execute("SELECT SUM(cache_read_input_tokens) FROM events").fetchone()[0]
    users = {r[0] for r in conn.execute("SELECT DISTINCT user_id FROM events")}
    conn.close()
    assert rows == STEPS
    assert cached > 0
    assert users == {"cust-042", "cust-007"}


def check_saved_reconcile(db: Path) -> None:
    """The reconcile result saved beside the store: every tracked dollar billed, plus the untracked Console spend."""
    saved = json.loads(Path(f"{db}.reconcile.json").read_text())
    total = saved["total"]
    tracked, reported = Decimal(total["tracked_cost_usd"]), Decimal(total["reported_cost_usd"])
    assert tracked > 0
    assert reported > tracked
    assert Decimal(total["difference_usd"]) == reported - tracked
    assert Decimal("0.5") < Decimal(total["coverage"]) < 1


@pytest.mark.slow
class TestExample:
    def test_demo_runs_offline_and_records(self, tmp_path: Path) -> None:
        """Without an API key the example uses the fake API, leaves every call in its store, and reconciles."""
        db = tmp_path / "demo.db"
        env = {**os.environ, "FLUXGATE_DB": str(db), "PYTHONPATH": str(REPO)}
        env.pop("ANTHROPIC_API_KEY", None)
        done = subprocess.run(
            [sys.executable, str(REPO / "examples" / "demo.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "in-process fake API" in done.stdout
        assert "expected failure recorded: MALFORMED_REQUEST" in done.stdout
        assert "Tracked vs billed" in done.stdout
        assert "saved to" in done.stderr
        check_store(db)
        check_saved_reconcile(db)


@pytest.mark.slow
class TestCommand:
    def test_fills_reports_and_reconciles(self, tmp_path: Path) -> None:
        """`fluxgate demo` records the app's calls, prints the report and the reconcile, and writes the HTML page."""
        db, page = tmp_path / "demo.db", tmp_path / "report.html"
        done = fluxgate_cli("demo", "--db", str(db), "--html", str(page), env={"ANTHROPIC_API_KEY": "sk-ant-not-used"})
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert "in-process fake API" in out  # never the real API, whatever the environment holds
        assert "By feature, step" in out
        assert "answer-pipeline" in out
        assert "Tracked vs billed" in out
        assert f"wrote {page} (19 calls," in out
        assert out.index("By feature, step") < out.index("Tracked vs billed") < out.index(f"wrote {page}")
        check_store(db)
        check_saved_reconcile(db)
        html = page.read_text(encoding="utf-8")
        assert 'id="reconcile"' in html
        assert "Tracked vs billed" in html

    def test_default_store_is_fluxgate_db(self, tmp_path: Path) -> None:
        """Without --db the demo writes to $FLUXGATE_DB."""
        db = tmp_path / "env.db"
        done = fluxgate_cli("demo", env={"FLUXGATE_DB": str(db)})
        assert done.returncode == 0, done.stderr
        check_store(db)
        assert f"The demo's made-up calls are in {str(db)!r}: delete it (and env.db.reconcile.json)" in done.stdout


class TestRefuses:
    def test_store_with_events(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A store that already holds events is left alone: the demo's calls are made up."""
        from fluxgate._cli.demo import main

        db = fill(tmp_path / "real.db", [event(feature="production")])
        before = db.read_bytes()
        assert main(["--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert "already holds 1 event;" in err
        assert "fluxgate demo --db demo.db" in err
        assert db.read_bytes() == before
        assert not Path(f"{db}.reconcile.json").exists()

    def test_not_a_store(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file that is not a store is not written to either."""
        from fluxgate._cli.demo import main

        db = tmp_path / "notes.txt"
        db.write_text("my notes " * 200)
        assert main(["--db", str(db)]) == 2
        assert "is not an empty fluxgate store" in capsys.readouterr().err
        assert db.read_text() == "my notes " * 200
