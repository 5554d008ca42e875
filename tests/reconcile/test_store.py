"""The tracked side, read straight from SQLite."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from fluxgate._reconcile.store import StoreError, read_tracked
from fluxgate.sinks import SQLiteSink

from .conftest import DAY1_MS, HOUR_MS, SONNET, event

D1 = date(2026, 11, 24)
D3 = date(2026, 11, 26)


class TestReadTracked:
    def test_huge_sums_stay_exact(self, tmp_path: Path) -> None:
        """Two $5,000,000.000001 calls sum exactly, past SQLite's 64-bit integers in pico-dollars."""
        path = tmp_path / "events.db"
        sink = SQLiteSink(path)
        sink.write([event(SONNET, 0, "5000000.000001", inp=1, out=1) for _ in range(2)])
        sink.close()
        (group,) = read_tracked(path, since=D1, until=D3).groups
        assert group.cost_pusd == 2 * 5_000_000_000_001 * 10**6
        assert group.calls == 2

    def test_an_older_store_without_newer_columns_reads(self, tmp_path: Path) -> None:
        """Columns added later (tier, platform, cache, breakdown) read as their defaults when absent."""
        path = tmp_path / "old.db"
        with sqlite3.connect(path) as conn:
            conn.execute(
                "CREATE TABLE events (created_at INTEGER, model TEXT, cost_pusd INTEGER, "
                "input_tokens INTEGER, output_tokens INTEGER)"
            )
            conn.execute("INSERT INTO events VALUES (?, ?, ?, 10, 2)", (DAY1_MS + HOUR_MS, SONNET, 7 * 10**12))
        conn.close()
        (group,) = read_tracked(path, since=D1, until=D3).groups
        assert (group.service_tier, group.cost_pusd, group.tokens.input_tokens) == ("standard", 7 * 10**12, 10)

    def test_the_store_is_opened_read_only(self, tmp_path: Path) -> None:
        """Reading leaves the file byte for byte as it was (SQLite may add its WAL index beside it)."""
        path = tmp_path / "events.db"
        sink = SQLiteSink(path)
        sink.write([event(SONNET, 0, "1", inp=1, out=1)])
        sink.close()
        before = path.read_bytes()
        tracked = read_tracked(path, since=D1, until=D3)
        assert sum(g.cost_pusd for g in tracked.groups) == 10**12
        assert path.read_bytes() == before

    @pytest.mark.parametrize("content", [None, b"not a database at all, just bytes" * 100, "no-table"])
    def test_a_missing_or_foreign_file_is_a_store_error(self, tmp_path: Path, content: bytes | str | None) -> None:
        """No file, a file that is not SQLite, or SQLite without an events table: StoreError, not a traceback."""
        path = tmp_path / "events.db"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content == "no-table":
            sqlite3.connect(path).execute("CREATE TABLE other (x)").connection.close()
        with pytest.raises(StoreError):
            read_tracked(path, since=D1, until=D3)
