"""Process-level promises: events survive exit without an explicit flush."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import fluxgate
    from fluxgate.testing import FakeAnthropicAPI

    fluxgate.init(flush_interval_s=60)   # nothing would be sent before exit on its own
    client = FakeAnthropicAPI().client()
    with fluxgate.track_context(feature="batch-script"):
        for i in range(N):
            client.messages.create(model="claude-sonnet-4-6", max_tokens=16,
                                   messages=[{"role": "user", "content": str(i)}])
    # no flush(), no shutdown(): the interpreter exits here
    """
)


@pytest.mark.slow
class TestExit:
    def test_events_flushed_at_exit(self, tmp_path: Path) -> None:
        """A script that makes calls and exits without flush() leaves every event in SQLite."""
        db = tmp_path / "exit.db"
        env = {**os.environ, "FLUXGATE_DB": str(db), "PYTHONPATH": str(REPO)}
        env.pop("ANTHROPIC_API_KEY", None)
        subprocess.run([sys.executable, "-c", SCRIPT.replace("N", "250")], check=True, env=env, timeout=60)
        conn = sqlite3.connect(db)
        count, features = conn.execute("SELECT COUNT(*), COUNT(DISTINCT feature) FROM events").fetchone()
        conn.close()
        assert (count, features) == (250, 1)
