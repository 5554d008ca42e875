"""The demo that `make demo` runs works offline and records what it says."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
class TestDemo:
    def test_demo_runs_offline_and_records(self, tmp_path: Path) -> None:
        """Without an API key the demo uses the fake API and leaves every call in its store."""
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
        conn = sqlite3.connect(db)
        rows = dict(conn.execute("SELECT COALESCE(step, '-'), COUNT(*) FROM events GROUP BY step").fetchall())
        cached = conn.execute("SELECT SUM(cache_read_input_tokens) FROM events").fetchone()[0]
        users = {r[0] for r in conn.execute("SELECT DISTINCT user_id FROM events")}
        conn.close()
        assert rows == {
            "-": 1,
            "draft": 4,
            "draft/self-check": 4,
            "expand-query": 4,
            "rerank": 4,
            "reply": 1,
            "retry-with-bad-settings": 1,
        }
        assert cached > 0
        assert users == {"cust-042", "cust-007"}
