"""Opening the store for a report: a SQLite file or a PostgreSQL URL, one reader either way.

The PostgreSQL side against a real server is in ``tests/postgres/test_pg_report.py``;
these need no server.
"""

from __future__ import annotations

import io
import sqlite3
import sys
from contextlib import closing, redirect_stderr
from pathlib import Path

import pytest

from fluxgate._cli.report import main
from fluxgate._report import Follower, NoStoreError, ReportError, connect, open_reader, overview, report
from fluxgate._report.store import SQLiteReader, as_reader

from .test_summary import NOW, fill, known_events

PASSWORD = "hunter2/secret"
URL = "postgresql://app:hunter2%2Fsecret@127.0.0.1:1/fluxgate"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store holding the hand-worked events of ``test_summary``."""
    return fill(tmp_path / "events.db", known_events())


class TestSQLiteReader:
    """A path opens a read-only SQLite reader that reports exactly as a bare connection does."""

    def test_same_report_as_a_bare_connection(self, store: Path) -> None:
        """report() on the reader equals report() on connect()'s sqlite3 connection."""
        reader = open_reader(store)
        try:
            assert isinstance(reader, SQLiteReader)
            assert reader.name == str(store)
            with closing(connect(store)) as conn:
                assert report(reader, group_by=("day", "model")) == report(conn, group_by=("day", "model"))
        finally:
            reader.close()

    def test_missing_store(self, tmp_path: Path) -> None:
        """No file: NoStoreError naming the path, nothing created."""
        with pytest.raises(NoStoreError, match="no fluxgate store at"):
            open_reader(tmp_path / "none.db")
        assert list(tmp_path.iterdir()) == []

    def test_bare_connection_stays_open(self, store: Path) -> None:
        """A wrapped sqlite3 connection is the caller's: closing the wrapper leaves it usable."""
        with closing(connect(store)) as conn:
            as_reader(conn).close()
            assert conn.execute("SELECT COUNT(*) FROM events").fetchone() == (7,)
            assert len(Follower(conn, since_ms=0).poll()) == 7

    def test_sessions_have_their_own_connection(self, store: Path) -> None:
        """A session on another thread gets a connection of its own, closed when it ends."""
        reader = open_reader(store)
        try:
            with reader.session() as session:
                assert session is not reader
                assert session.rows("SELECT COUNT(*) FROM events", ()) == [(7,)]
            with pytest.raises(ReportError, match="could not be read"):
                session.rows("SELECT 1", ())
            assert reader.rows("SELECT COUNT(*) FROM events", ()) == [(7,)]
        finally:
            reader.close()

    def test_overview_leaves_a_given_reader_open(self, store: Path) -> None:
        """overview() closes the readers it opens, not the one it is handed."""
        reader = open_reader(store)
        try:
            view = overview(reader, now_ms=NOW)
            assert view.store == str(store)
            assert view == overview(store, now_ms=NOW)
            assert reader.rows("SELECT COUNT(*) FROM events", ()) == [(7,)]
        finally:
            reader.close()

    def test_reader_cannot_write(self, store: Path) -> None:
        """The file is opened read-only: a write is refused as a ReportError."""
        reader = open_reader(store)
        try:
            with pytest.raises(ReportError, match="readonly"):
                reader.rows("DELETE FROM events", ())
        finally:
            reader.close()
        with closing(sqlite3.connect(store)) as conn:
            assert conn.execute("SELECT COUNT(*) FROM events").fetchone() == (7,)


class TestPostgresURL:
    """A postgresql:// URL selects the PostgreSQL reader; its password never reaches a message."""

    def run(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stderr(err):
            status = main(list(argv), out=out, now_ms=NOW)
        return status, out.getvalue(), err.getvalue()

    def test_malformed_url(self) -> None:
        """A URL with a bad port is refused before connecting, masked, in one line."""
        status, out, err = self.run("--db", "postgresql://app:hunter2@127.0.0.1:port/db")
        assert status == 1
        assert out == ""
        assert err == (
            "fluxgate report: the store 'url' must have a numeric port (got 'postgresql://app:***@127.0.0.1:port/db').\n"
        )

    def test_without_psycopg(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without psycopg installed, the error says how to install it and shows no password."""
        monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import psycopg` meets when it is not installed
        with pytest.raises(ReportError, match=r"pip install 'fluxgate\[postgres\]'") as caught:
            open_reader(URL)
        assert "hunter2" not in str(caught.value)

    def test_unreachable(self) -> None:
        """Nothing listens on the port: exit 1 with the URL masked, whatever the spelling of the password."""
        status, _, err = self.run("--db", URL, "--format", "json")
        assert status == 1
        assert err.startswith("fluxgate report: reading the store failed on postgresql://app:***@127.0.0.1:1/fluxgate")
        assert "hunter2" not in err
        assert "Traceback" not in err
