"""Pools and signals: what a process holds reaches the store when it is told to stop."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

QUEUED = """
import sys
import fluxgate
from fluxgate.testing import FakeAnthropicAPI

fluxgate.init(db_path=sys.argv[1], flush_interval_s=3600, max_batch_size=100_000, exit_timeout_s=20)
client = FakeAnthropicAPI().client()
for _ in range({count}):
    client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{{"role": "user", "content": "hi"}}])
{before_ready}
print("ready", flush=True)
sys.stdin.read()  # held open: the parent signals while these events are still queued
print("not reached", flush=True)
"""

CHAINED = """
import signal
def on_term(signum, frame):
    print("app handler", flush=True)
    sys.exit(3)
signal.signal(signal.SIGTERM, on_term)
"""

POOL = """
import multiprocessing
import sys
import fluxgate
from fluxgate import track
from fluxgate.testing import FakeAnthropicAPI

fluxgate.init(db_path=sys.argv[1], flush_interval_s=3600, max_batch_size=100_000, exit_timeout_s=20)


@track("pooled")
def work(i):
    client = FakeAnthropicAPI().client()
    client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": str(i)}])
    return i


if __name__ == "__main__":
    with multiprocessing.get_context(sys.argv[2]).Pool(4) as pool:
        assert sorted(pool.map(work, range(400), chunksize=10)) == list(range(400))
    print("done", flush=True)
"""


BLOCKED_CHILD = """
import multiprocessing
import signal
import sys
import threading
import fluxgate
from fluxgate.testing import FakeAnthropicAPI

fluxgate.init(db_path=sys.argv[1], flush_interval_s=3600, exit_timeout_s=20)


def main_is_blocked(main_id):
    with open(f"/proc/self/task/{main_id}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "S"


def child():
    client = FakeAnthropicAPI().client()
    client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    held = multiprocessing.Lock()
    held.acquire()
    about_to_block = threading.Event()
    main_id = threading.get_native_id()

    def signal_from_here():
        # The C-level handler runs on this thread: the main thread, blocked in
        # sem_wait, sees no EINTR, as when the signal lands just before it blocks.
        about_to_block.wait()
        while not main_is_blocked(main_id):
            pass
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    threading.Thread(target=signal_from_here).start()
    about_to_block.set()
    held.acquire()  # never released: only the SIGTERM handler ends this process


if __name__ == "__main__":
    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(60)
    print("exitcode", process.exitcode, flush=True)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _count(db: Path, where: str = "1=1") -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM events WHERE {where}").fetchone()[0])


def _start(tmp_path: Path, script: str) -> tuple[subprocess.Popen[str], Path]:
    db = tmp_path / "events.db"
    path = tmp_path / "app.py"
    path.write_text(textwrap.dedent(script))
    proc = subprocess.Popen(
        [sys.executable, str(path), str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read() if proc.stderr else line
    return proc, db


@pytest.mark.slow
class TestSigterm:
    def test_queued_events_reach_the_store(self, tmp_path: Path) -> None:
        """SIGTERM with 500 events queued: all 500 are stored, and the process still dies of SIGTERM."""
        proc, db = _start(tmp_path, QUEUED.format(count=500, before_ready=""))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGTERM, err
        assert _count(db) == 500

    def test_an_application_handler_is_chained(self, tmp_path: Path) -> None:
        """A SIGTERM handler the application installed before init still runs, after delivery."""
        script = QUEUED.format(count=50, before_ready="").replace("import fluxgate\n", "import fluxgate\n" + CHAINED, 1)
        proc, db = _start(tmp_path, script)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert "app handler" in out, err
        assert proc.returncode == 3
        assert _count(db) == 50


@pytest.mark.slow
class TestPools:
    @pytest.mark.parametrize("run", [1, 2, 3])
    def test_fork_pool_in_a_with_block(self, tmp_path: Path, run: int) -> None:
        """Every event made in fork-pool workers is stored, though the with block terminates them."""
        self._pool(tmp_path, "fork")

    def test_forked_child_blocked_on_a_lock_obeys_sigterm(self, tmp_path: Path) -> None:
        """A SIGTERM handled on another thread of a forked child still delivers and ends it.

        The child's main thread waits on a multiprocessing lock (as a pool
        worker waits for its queue) when the signal arrives on another thread:
        the handler is left pending and would never run; fluxgate interrupts
        the main thread again until it does.
        """
        db = tmp_path / "events.db"
        path = tmp_path / "blocked.py"
        path.write_text(textwrap.dedent(BLOCKED_CHILD))
        done = subprocess.run(
            [sys.executable, str(path), str(db)], capture_output=True, text=True, env=_env(), timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        assert f"exitcode {-signal.SIGTERM}" in done.stdout, done.stderr
        assert _count(db) == 1

    def test_spawn_pool_in_a_with_block(self, tmp_path: Path) -> None:
        """Spawned workers (which run init() at import) deliver theirs too."""
        self._pool(tmp_path, "spawn")

    def _pool(self, tmp_path: Path, method: str) -> None:
        db = tmp_path / "events.db"
        path = tmp_path / "pooled.py"
        path.write_text(textwrap.dedent(POOL))
        done = subprocess.run(
            [sys.executable, str(path), str(db), method],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert _count(db, "feature = 'pooled'") == 400


WATCHER_AFTER_REPLACEMENT = """
import os
import signal
import threading
from fluxgate import _sigwatch

seen = []


def fluxgates(signum, frame):
    pass


signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))  # the application's, in fluxgate's place
_sigwatch.GRACE_S = 0.01
read_end, write_end = os.pipe()
os.write(write_end, bytes([signal.SIGTERM]))  # what the interpreter writes to the wakeup fd
watcher = threading.Thread(target=_sigwatch._watch, args=(read_end, threading.main_thread().ident, fluxgates))
watcher.daemon = True
watcher.start()
watcher.join(10)
print("alive" if watcher.is_alive() else "retired", len(seen))
"""


SPAWNED_WATCHER = """
import multiprocessing
import sys

import fluxgate
from fluxgate import _sigwatch

# At import, as a spawn pool's workers run it: before the child knows its parent process.
fluxgate.init(db_path=sys.argv[1])


def child(queue):
    queue.put(_sigwatch._pipe is not None)


if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    print("child", queue.get(timeout=100), flush=True)
    process.join(100)
    print("parent", _sigwatch._pipe is not None, flush=True)
"""


class TestSigtermWatcher:
    def test_retires_once_another_handler_replaced_fluxgates(self, tmp_path: Path) -> None:
        """The application's handler, installed in fluxgate's place, is never sent the SIGTERM again."""
        path = tmp_path / "watcher.py"
        path.write_text(textwrap.dedent(WATCHER_AFTER_REPLACEMENT))
        done = subprocess.run(
            [sys.executable, str(path)], capture_output=True, text=True, env=_env(), timeout=60, check=False
        )
        assert done.stdout.split() == ["retired", "0"], done.stderr

    def test_a_spawned_child_watches_too(self, tmp_path: Path) -> None:
        """A spawned child running init() as it imports the main module (as a spawn pool's worker does) watches."""
        path = tmp_path / "spawned.py"
        path.write_text(textwrap.dedent(SPAWNED_WATCHER))
        done = subprocess.run(
            [sys.executable, str(path), str(tmp_path / "events.db")],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=120,
            check=False,
        )
        assert done.stdout.split() == ["child", "True", "parent", "False"], done.stderr
