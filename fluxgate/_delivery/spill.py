"""Spill files: batches a sink could not take, kept on local disk until it can.

Each sink spills to its own file, ``<directory>/<sink name>.jsonl``, one
``CostEvent.to_dict()`` per line (``_store.lines``: made storable, so a line
always parses back). A replay first *claims* the file by renaming
it to ``<sink name>.<pid>.replaying``, so new spills start a fresh file and two
processes sharing the directory never replay the same lines; the claimed file
is deleted once every line in it was delivered, and what could not be
delivered is appended back. A claimed file left by a process that died is
adopted by the next one. Appends and claims hold an ``flock`` on the file
(POSIX; elsewhere only one process should use a directory).

Spilled lines survive a crash of the process, not of the machine: nothing is
fsynced, because spills happen during outages, when throughput matters most.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

from .._guard import logger
from .._models import CostEvent
from .._store import event_from_dict, event_line, lock_file, write_all

__all__ = ["Spill"]

_CHUNK = 1 << 16


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process
        return True
    return True


class Spill:
    """One sink's spill file.

    Args:
        directory: Where spill files live; created on first spill.
        name: The sink's name, which names the file.
        max_bytes: New spills are refused (and counted as dropped by the
            caller) once the file would grow past this.
    """

    def __init__(self, directory: Path, name: str, *, max_bytes: int) -> None:
        self.path = directory / f"{name}.jsonl"
        self._name = name
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        #: Lines replays found unreadable (torn by a crash, or foreign), and skipped.
        self.skipped = 0

    def __repr__(self) -> str:
        return f"Spill({str(self.path)!r})"

    def after_fork(self) -> None:
        """Forget a lock another thread may have held when the process forked."""
        self._lock = threading.Lock()

    @property
    def _mine(self) -> Path:
        return self.path.with_name(f"{self._name}.{os.getpid()}.replaying")

    def append(self, batch: Sequence[CostEvent]) -> bool:
        """Add ``batch``; False (nothing written) if it would pass ``max_bytes``.

        Raises:
            OSError: The file could not be written.
            TypeError, ValueError: An event cannot be encoded (nothing written).
        """
        return self.append_lines([event_line(event) for event in batch])

    def append_lines(self, lines: Sequence[bytes]) -> bool:
        """Add encoded events (``event_line``); False (nothing written) if they would pass ``max_bytes``.

        Raises:
            OSError: The file could not be written.
        """
        data = b"".join(lines)
        return self._append([data], size=len(data))

    def _append(self, chunks: Iterable[bytes], *, size: int | None) -> bool:
        """Append ``chunks``; refuse when ``size`` would pass the bound (None: unbounded)."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for _ in range(10):
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    lock_file(fd)
                    opened = os.fstat(fd)
                    try:
                        current = self.path.stat()
                    except FileNotFoundError:
                        continue
                    if (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev):
                        continue  # claimed by a replay while we waited: write to the new file
                    if size is not None and opened.st_size + size > self._max_bytes:
                        return False
                    for chunk in chunks:
                        write_all(fd, chunk)
                    return True
                finally:
                    os.close(fd)
        raise OSError(f"could not append to {str(self.path)!r}: it kept being replaced")

    def _claimable(self) -> Iterator[Path]:
        for path in sorted(self.path.parent.glob(f"{self._name}.*.replaying")):
            pid = path.name[len(self._name) + 1 : -len(".replaying")]
            if pid.isdigit() and (int(pid) == os.getpid() or not _pid_alive(int(pid))):
                yield path

    def pending(self) -> bool:
        """True when there are spilled lines this process could replay."""
        try:
            if self.path.stat().st_size > 0:
                return True
        except FileNotFoundError:
            pass
        except OSError:
            return False
        return next(self._claimable(), None) is not None

    def claim(self) -> Path | None:
        """Take the spilled lines for replay; None when there are none."""
        mine = self._mine
        with self._lock:
            for orphan in self._claimable():
                try:
                    orphan.replace(mine)
                except FileNotFoundError:
                    continue  # another process adopted it first
                return mine
            try:
                fd = os.open(self.path, os.O_RDWR)
            except FileNotFoundError:
                return None
            try:
                lock_file(fd)
                if os.fstat(fd).st_size == 0:
                    return None
                try:
                    self.path.replace(mine)
                except FileNotFoundError:
                    return None
                return mine
            finally:
                os.close(fd)

    def replay(self, claimed: Path, batch_size: int, deliver: Callable[[list[CostEvent]], bool]) -> bool:
        """Feed ``claimed`` to ``deliver`` in batches; delete it when done.

        ``deliver`` returns False to stop: that batch and every line after it
        go back to the spill file (beyond ``max_bytes``: they were counted
        when first spilled). Lines that do not parse are logged and skipped.
        Returns True if the whole file was consumed.
        """
        try:
            handle = claimed.open("rb")
        except FileNotFoundError:
            return True
        with handle:
            done = self._replay_from(handle, claimed, batch_size, deliver)
        claimed.unlink(missing_ok=True)
        return done

    def _replay_from(
        self, handle: IO[bytes], claimed: Path, batch_size: int, deliver: Callable[[list[CostEvent]], bool]
    ) -> bool:
        lines: list[bytes] = []
        events: list[CostEvent] = []
        bad = 0
        for line in itertools.chain(handle, [b""]):
            if line:
                try:
                    events.append(event_from_dict(json.loads(line)))
                    lines.append(line if line.endswith(b"\n") else line + b"\n")
                except Exception:  # noqa: BLE001 - a torn or foreign line is skipped, never fatal
                    bad += 1
                if len(events) < batch_size:
                    continue
            if not events:
                continue
            if not deliver(events):
                rest = iter(lambda: handle.read(_CHUNK), b"")
                self._append(itertools.chain(lines, rest), size=None)
                return False
            lines, events = [], []
        if bad:
            self.skipped += bad
            logger.error("fluxgate: skipped %d unreadable lines in spill file %s", bad, claimed.name)
        return True
