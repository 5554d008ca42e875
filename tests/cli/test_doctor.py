"""``fluxgate doctor``: versions, what is patched, and whether the store can be written (issue 15)."""

from __future__ import annotations

import io
import os
import sqlite3
from importlib.metadata import version
from pathlib import Path

import pytest

from fluxgate._cli.doctor import TESTED_ANTHROPIC, in_range, main
from fluxgate._instrument.patches import TARGETS

from .events import event, fill, fluxgate_cli


def doctor(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(argv), out=out, environ=environ if environ is not None else {})
    return status, out.getvalue()


def count(path: Path, where: str = "1") -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM events WHERE {where}").fetchone()[0])
    finally:
        conn.close()


class TestHealthy:
    """On a working setup doctor says so and exits 0."""

    def test_store_with_events(self, tmp_path: Path) -> None:
        """It names the versions, the store and its events, writes a test event and leaves nothing behind."""
        store = fill(tmp_path / "events.db", [event(feature="f") for _ in range(3)])
        before = store.read_bytes()
        status, out = doctor("--db", str(store))
        assert status == 0, out
        assert out.startswith("fluxgate 0.")
        assert f"anthropic: {version('anthropic')}, in the tested range ({TESTED_ANTHROPIC})" in out
        assert f"store: {store} (from --db)" in out
        assert "events: 3, the last at" in out
        assert "writable: yes (a test event was written, read back and rolled back)" in out
        assert "last delivery error: none" in out
        assert out.rstrip().endswith("no problems found")
        assert count(store) == 3
        assert count(store, "tracking_id LIKE 'fluxgate-doctor-%'") == 0
        assert store.read_bytes() == before

    def test_store_not_created_yet(self, tmp_path: Path) -> None:
        """A store that does not exist yet is fine if its folder can be made; doctor creates nothing."""
        store = tmp_path / "not" / "yet" / "events.db"
        status, out = doctor(environ={"FLUXGATE_DB": str(store)})
        assert status == 0, out
        assert f"store: {store} (from $FLUXGATE_DB)" in out
        assert "not created yet" in out
        assert not (tmp_path / "not").exists()
        assert [p.name for p in tmp_path.iterdir()] == []

    def test_empty_file(self, tmp_path: Path) -> None:
        """An empty file (a store the sink has just created) is usable, and stays empty."""
        store = tmp_path / "events.db"
        store.touch()
        status, out = doctor("--db", str(store))
        assert status == 0, out
        assert "events: none yet" in out
        sqlite = sqlite3.connect(store)
        assert sqlite.execute("SELECT name FROM sqlite_master").fetchall() == []
        sqlite.close()

    def test_patch_table(self) -> None:
        """Every SDK method fluxgate patches is listed with whether the installed release has it."""
        _, out = doctor("--db", "/nonexistent-dir-for-doctor/events.db")
        assert "patches: none in this process" in out
        for module, cls, method, _ in TARGETS:
            assert f"{module}.{cls}.{method}" in out
        assert "  yes  anthropic._base_client.SyncAPIClient.request" in out

    def test_flags_in_the_environment(self, tmp_path: Path) -> None:
        """FLUXGATE_DISABLED is pointed out: with it, init() patches nothing."""
        _, out = doctor("--db", str(tmp_path / "e.db"), environ={"FLUXGATE_DISABLED": "1"})
        assert "environment: FLUXGATE_DISABLED='1' is set" in out


class TestUnusable:
    """A store fluxgate cannot use is a problem: doctor says why and exits 1."""

    def test_corrupt_file(self, tmp_path: Path) -> None:
        """A file that is not a database."""
        store = tmp_path / "events.db"
        store.write_bytes(b"definitely not SQLite " * 200)
        status, out = doctor("--db", str(store))
        assert status == 1
        assert "unusable:" in out
        assert "1 problem(s): fluxgate cannot record" in out

    def test_directory(self, tmp_path: Path) -> None:
        """A path that is a directory."""
        status, out = doctor("--db", str(tmp_path))
        assert status == 1
        assert "unusable: the path is a directory" in out

    def test_folder_cannot_be_created(self, tmp_path: Path) -> None:
        """A store whose folder would have to be made inside a file."""
        blocker = tmp_path / "a-file"
        blocker.write_text("x")
        status, out = doctor("--db", str(blocker / "sub" / "events.db"))
        assert status == 1
        assert "cannot be created" in out
        assert "is not a directory" in out

    def test_other_database(self, tmp_path: Path) -> None:
        """An SQLite database of something else is not taken over."""
        store = tmp_path / "other.db"
        conn = sqlite3.connect(store)
        conn.execute("CREATE TABLE invoices (id INTEGER)")
        conn.commit()
        conn.close()
        status, out = doctor("--db", str(store))
        assert status == 1
        assert "not a fluxgate store" in out
        conn = sqlite3.connect(store)
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["invoices"]
        conn.close()

    @pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only files")
    def test_read_only_store(self, tmp_path: Path) -> None:
        """A store this user cannot write: the test write's error is the last delivery error."""
        store = fill(tmp_path / "events.db", [event()])
        store.chmod(0o444)
        tmp_path.chmod(0o555)
        try:
            status, out = doctor("--db", str(store))
        finally:
            tmp_path.chmod(0o755)
            store.chmod(0o644)
        assert status == 1
        assert "writable: NO:" in out
        assert "last delivery error: " in out

    @pytest.mark.slow
    def test_console_script(self, tmp_path: Path) -> None:
        """The real process exits 1 for a corrupt store, after printing every check."""
        store = tmp_path / "events.db"
        store.write_bytes(b"garbage" * 500)
        done = fluxgate_cli("doctor", "--db", str(store))
        assert done.returncode == 1
        assert "patches: none in this process" in done.stdout
        assert "unusable:" in done.stdout
        assert "Traceback" not in done.stderr


class TestRange:
    """The tested range is >=0.50,<3: every release the suite runs on, and none after."""

    @pytest.mark.parametrize(
        ("release", "inside"),
        [
            ("0.49.0", False),
            ("0.50.0", True),
            ("0.125.0", True),
            ("1.17.0", True),
            ("2.15.0", True),
            ("2.15.0rc1", True),
            ("3.0.0", False),
        ],
    )
    def test_in_range(self, release: str, inside: bool) -> None:
        """Releases compare by number, not as text (0.125 is after 0.50)."""
        assert in_range(release) is inside
