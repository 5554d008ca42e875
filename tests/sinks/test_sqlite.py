"""SQLiteSink: the embedded default store."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import fluxgate
from fluxgate import AiEventUser, CostEvent, Status
from fluxgate._store import COLUMNS, default_db_path, event_from_row
from fluxgate.sinks import SQLiteSink
from fluxgate.testing import FakeAnthropicAPI


def make_event(n: int = 0, **overrides: object) -> CostEvent:
    fields: dict[str, object] = {
        "tracking_id": f"t{n}",
        "created_at": 1_790_000_000_000 + n,
        "status": Status.SUCCESS,
        "cost_usd": Decimal("0.000123456789"),
        "cost_status": "priced",
        "cost_breakdown": {"input": Decimal("0.0001"), "output": Decimal("0.000023456789")},
        "price_version": "test",
        "model": "claude-sonnet-4-6",
        "input_tokens": 10,
        "output_tokens": 20,
        "feature": "f",
        "user": AiEventUser("u1", name="Ada", monthly_revenue=49.0),
        "user_id": "u1",
        "metadata": {"k": [1, 2]},
        "latency_ms": 12.5,
    }
    fields.update(overrides)
    return CostEvent(**fields)  # type: ignore[arg-type]


def rows(path: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM events ORDER BY created_at").fetchall()
    finally:
        conn.close()


class TestSQLiteSink:
    def test_round_trip(self, tmp_path: Path) -> None:
        """An event written and read back is equal, Decimals exact."""
        sink = SQLiteSink(tmp_path / "a.db")
        event = make_event()
        sink.write([event])
        sink.close()
        [row] = rows(tmp_path / "a.db")
        assert event_from_row(row) == event
        assert row["cost_usd"] == "0.000123456789"
        assert row["cost_pusd"] == 123456789

    def test_one_column_per_field(self, tmp_path: Path) -> None:
        """The table has a column for every CostEvent field."""
        sink = SQLiteSink(tmp_path / "a.db")
        sink.write([make_event()])
        conn = sqlite3.connect(tmp_path / "a.db")
        columns = {r[1] for r in conn.execute("PRAGMA table_info(events)")}
        conn.close()
        assert columns == set(COLUMNS)
        assert {a.name for a in CostEvent.__attrs_attrs__} <= columns

    def test_file_private_and_wal(self, tmp_path: Path) -> None:
        """The database is created with mode 0600, parents too, in WAL mode."""
        path = tmp_path / "nested" / "dir" / "events.db"
        SQLiteSink(path).write([make_event()])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()

    def test_retried_batch_not_stored_twice(self, tmp_path: Path) -> None:
        """Writing the same batch again (a retry) leaves one row per event."""
        sink = SQLiteSink(tmp_path / "a.db")
        batch = [make_event(i) for i in range(3)]
        sink.write(batch)
        sink.write(batch)
        assert len(rows(tmp_path / "a.db")) == 3

    @pytest.mark.parametrize("size", [1, 127, 128, 129, 300, 1000])
    def test_writes_of_every_size_store_each_event_once(self, size: int, tmp_path: Path) -> None:
        """A write longer than one statement (128 rows) stores every event, and one retried part-way none twice."""
        sink = SQLiteSink(tmp_path / "a.db")
        batch = [make_event(i, feature=f"f{i}") for i in range(size)]
        sink.write(batch[: size // 2])  # a retry after the first statements were committed
        sink.write(batch)
        stored = rows(tmp_path / "a.db")
        assert [row["tracking_id"] for row in stored] == [event.tracking_id for event in batch]
        assert [event_from_row(row) for row in stored] == batch

    @pytest.mark.parametrize(("size", "statements_needed"), [(100, 3), (129, 2), (1000, 10)])
    def test_a_write_is_one_transaction(self, size: int, statements_needed: int, tmp_path: Path) -> None:
        """A write of several statements is one transaction (one commit writes the index pages once)."""
        sink = SQLiteSink(tmp_path / "a.db")
        sink.write([make_event(-1)])
        statements: list[str] = []
        sink._connect().set_trace_callback(statements.append)
        sink.write([make_event(i) for i in range(size)])
        kinds = [text.split()[0] for text in statements]
        assert kinds == ["BEGIN", *["INSERT"] * statements_needed, "COMMIT"]
        assert len(rows(tmp_path / "a.db")) == size + 1
        sink.close()

    def test_writes_of_every_size_use_few_statements(self, tmp_path: Path) -> None:
        """Batches of 1 to 300 events are written by eight statements, each prepared once and kept.

        A statement of a new size is parsed anew (up to 5,000 placeholders):
        batches come in every size, so one statement per size cost the flusher
        more than anything but the rows themselves.
        """
        sink = SQLiteSink(tmp_path / "a.db")
        statements: list[str] = []
        sink._connect().set_trace_callback(statements.append)
        written = 0
        for size in range(1, 301):
            sink.write([make_event(written + i) for i in range(size)])
            written += size
        inserts = {text.count("), (") + 1 for text in statements if text.startswith("INSERT")}
        assert inserts == {1, 2, 4, 8, 16, 32, 64, 128}
        assert len(rows(tmp_path / "a.db")) == written
        sink.close()

    @pytest.mark.parametrize(
        "sparse",
        [
            {"error_type": "overloaded_error", "error_message": "Overloaded", "status": Status.ERROR},
            {"batch_id": "msgbatch_1", "custom_id": "c1"},
            {"reasoning_tokens": 120},
            {"speed": "fast"},
        ],
        ids=["error", "batch", "thinking", "speed"],
    )
    def test_a_write_binds_the_sparse_columns_only_when_a_row_has_one(
        self, sparse: dict[str, Any], tmp_path: Path
    ) -> None:
        """Successful calls leave error, batch, thinking and speed columns out of the INSERT; one that has
        any makes its write give every column, in every row, and each row still reads back as its event.
        """
        sink = SQLiteSink(tmp_path / "a.db")
        statements: list[str] = []
        sink._connect().set_trace_callback(statements.append)
        plain = [make_event(i) for i in range(4)]  # four rows: one statement each write
        sink.write(plain)
        mixed = [make_event(4), make_event(5, **sparse), make_event(6), make_event(7)]
        sink.write(mixed)
        sink.close()
        inserts = [text for text in statements if text.startswith("INSERT")]
        assert len(inserts) == 2
        assert "error_type" not in inserts[0]
        assert "error_type" in inserts[1]
        assert "custom_id" in inserts[1]
        assert [event_from_row(row) for row in rows(tmp_path / "a.db")] == [*plain, *mixed]

    def test_adds_columns_of_newer_versions(self, tmp_path: Path) -> None:
        """A store made by an older fluxgate gets the missing columns on first write."""
        path = tmp_path / "old.db"
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE events (tracking_id TEXT PRIMARY KEY, created_at INTEGER)")
        conn.commit()
        conn.close()
        SQLiteSink(path).write([make_event()])
        assert rows(path)[0]["feature"] == "f"

    def test_a_new_store_indexes_time_only(self, tmp_path: Path) -> None:
        """Each index costs every write; reports read time windows, so a new store indexes created_at alone."""
        SQLiteSink(tmp_path / "a.db").write([make_event()])
        conn = sqlite3.connect(tmp_path / "a.db")
        indexes = {
            name: [col[2] for col in conn.execute(f"PRAGMA index_info({name})")]
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")
        }
        conn.close()
        key = [name for name in indexes if name.startswith("sqlite_autoindex")]
        assert [indexes[name] for name in key] == [["tracking_id"]]
        assert {name: cols for name, cols in indexes.items() if name not in key} == {
            "ix_events_created_at": ["created_at"]
        }

    def test_an_older_stores_indexes_are_kept(self, tmp_path: Path) -> None:
        """Indexes an earlier fluxgate made stay (the user may query by them); writes and reports go on."""
        path = tmp_path / "old.db"
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE events (tracking_id TEXT PRIMARY KEY, created_at INTEGER, feature TEXT)")
        conn.execute("CREATE INDEX ix_events_feature ON events (feature, created_at)")
        conn.commit()
        conn.close()
        SQLiteSink(path).write([make_event(1), make_event(2, feature="g")])
        conn = sqlite3.connect(path)
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM events WHERE feature = 'g'"))
        conn.close()
        assert {"ix_events_feature", "ix_events_created_at"} <= names
        assert "ix_events_feature" in plan
        assert [row["feature"] for row in rows(path)] == ["f", "g"]

    def test_unpriced_event(self, tmp_path: Path) -> None:
        """An unpriced event stores NULL cost, never 0."""
        sink = SQLiteSink(tmp_path / "a.db")
        sink.write([make_event(cost_usd=None, cost_status="unpriced_model", cost_breakdown={})])
        [row] = rows(tmp_path / "a.db")
        assert row["cost_usd"] is None
        assert row["cost_pusd"] is None
        assert event_from_row(row).cost_usd is None

    def test_concurrent_writers(self, tmp_path: Path) -> None:
        """Several sinks on one file (as several processes would) lose no rows."""
        path = tmp_path / "shared.db"
        sinks = [SQLiteSink(path, timeout_s=60) for _ in range(4)]

        def work(k: int) -> None:
            for i in range(25):
                sinks[k].write([make_event(k * 1000 + i)])

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(rows(path)) == 100

    def test_directory_path_rejected(self, tmp_path: Path) -> None:
        """A directory as path is a configuration error."""
        with pytest.raises(fluxgate.ConfigurationError, match="path"):
            SQLiteSink(tmp_path)

    def test_default_path_from_env(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """FLUXGATE_DB sets the default database; otherwise XDG_DATA_HOME/fluxgate/events.db."""
        monkeypatch.setenv("FLUXGATE_DB", str(tmp_path / "x.db"))
        assert default_db_path() == tmp_path / "x.db"
        monkeypatch.delenv("FLUXGATE_DB")
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        assert default_db_path() == tmp_path / "data" / "fluxgate" / "events.db"

    def test_default_sink_of_init(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """init() with no sinks stores tracked calls in the SQLite file FLUXGATE_DB names."""
        path = tmp_path / "default.db"
        monkeypatch.setenv("FLUXGATE_DB", str(path))
        fluxgate.init()
        api = FakeAnthropicAPI()
        with fluxgate.track_context(feature="default-store"):
            api.client().messages.create(
                model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            )
        assert fluxgate.flush(timeout_s=10)
        [row] = rows(path)
        assert row["feature"] == "default-store"
        assert row["api"] == "messages.create"

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
    def test_forked_child_opens_its_own_connection(self, tmp_path: Path) -> None:
        """A child forked after the parent wrote stores its rows through a connection of its own."""
        path = tmp_path / "fork.db"
        sink = SQLiteSink(path)
        sink.write([make_event(1)])
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                sink.write([make_event(2)])
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        sink.write([make_event(3)])
        assert os.waitstatus_to_exitcode(status) == 0
        assert [r["tracking_id"] for r in rows(path)] == ["t1", "t2", "t3"]

    @pytest.mark.slow
    def test_processes_opening_a_new_store_at_once(self, tmp_path: Path) -> None:
        """Several processes creating and writing one new store at the same moment lose nothing."""
        import subprocess
        import sys

        path = tmp_path / "fresh.db"
        script = (
            "import sys\n"
            "from tests.sinks.test_sqlite import make_event\n"
            "from fluxgate.sinks import SQLiteSink\n"
            "sink = SQLiteSink(sys.argv[1])\n"
            "k = int(sys.argv[2])\n"
            "for i in range(20):\n"
            "    sink.write([make_event(k * 1000 + i)])\n"
        )
        repo = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": str(repo)}
        procs = [subprocess.Popen([sys.executable, "-c", script, str(path), str(k)], env=env) for k in range(6)]
        assert [p.wait(timeout=120) for p in procs] == [0] * 6
        assert len(rows(path)) == 120
