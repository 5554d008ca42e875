"""The one SQLite opener: commits survive other processes checkpointing, and our own crash."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from fluxgate._store import connect

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX advisory locks")

#: A process that writes to the store when told to, and says when each write is committed.
WRITER = textwrap.dedent(
    """
    import os, sys
    import fluxgate._store.sqlite as opener
    from fluxgate._store import SQLiteSpendStore
    from fluxgate.sinks import SQLiteSink
    from tests.sinks.conftest import make_events

    if sys.argv[2] == "old":
        # The opener as it was: open and close a descriptor on the existing file,
        # which drops every POSIX lock this process holds on it, SQLite's included.
        def touch(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        opener._create_private = touch

    sink = SQLiteSink(sys.argv[1])
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "write":
            sink.write(make_events(int(arg)))
        elif command == "open":  # a second store on the same file, as budgets open one
            SQLiteSpendStore(sys.argv[1])
            SQLiteSink(sys.argv[1]).write(make_events(1))
        print("ok", flush=True)
    """
)


class Writer:
    """A writer process driven line by line; it never closes its store on its own."""

    def __init__(self, path: Path, opener: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), opener],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        self.acknowledged = 0

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline() == "ok\n", f"the writer failed at {command!r}"
        _, _, count = command.partition(" ")
        self.acknowledged += int(count) if count else 1

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def writers() -> Iterator[list[Writer]]:
    """Writer processes, killed after the test whatever happens."""
    started: list[Writer] = []
    yield started
    for writer in started:
        if writer.proc.poll() is None:
            writer.kill()


def checkpoint_elsewhere(path: Path) -> None:
    """Another process opens the store, checkpoints it, and closes (the last closer deletes the WAL)."""
    code = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1])\n"
        "conn.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchall()\n"
        "conn.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)


def stored(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        count: int = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        conn.close()
    return count


def crash_scenario(path: Path, writers: list[Writer], opener: str) -> tuple[int, int]:
    """Write, open a second store, let another process checkpoint, write more, get killed.

    Returns (events acknowledged as committed, events found in the file afterwards).
    """
    writer = Writer(path, opener)
    writers.append(writer)
    writer.send("write 50")
    writer.send("open")
    checkpoint_elsewhere(path)
    writer.send("write 50")
    writer.send("write 50")
    writer.kill()
    return writer.acknowledged, stored(path)


@pytest.mark.slow
class TestCrossProcessDurability:
    def test_commits_survive_a_checkpoint_elsewhere_and_a_crash(self, tmp_path: Path, writers: list[Writer]) -> None:
        """Every committed event is in the file after another process checkpoints and the writer is killed."""
        acknowledged, found = crash_scenario(tmp_path / "events.db", writers, "current")
        assert found == acknowledged == 151

    def test_the_scenario_catches_the_old_opener(self, tmp_path: Path, writers: list[Writer]) -> None:
        """With the old open-and-close opener the same scenario loses commits (so the test above can fail)."""
        acknowledged, found = crash_scenario(tmp_path / "events.db", writers, "old")
        assert found < acknowledged


class TestConnect:
    def test_creates_the_file_private_with_parents(self, tmp_path: Path) -> None:
        """A new store is created 0600, parents too, in WAL mode."""
        path = tmp_path / "a" / "b" / "events.db"
        conn = connect(path, 5.0)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_never_touches_an_existing_file(self, tmp_path: Path) -> None:
        """Opening an existing store leaves its mode alone (the opener does not open a descriptor on it)."""
        path = tmp_path / "events.db"
        sqlite3.connect(path).close()
        path.chmod(0o640)
        connect(path, 5.0).close()
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
