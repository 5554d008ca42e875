"""JSONLSink: append one JSON object per event to a file, for log shippers.

Each line is ``CostEvent.to_dict()`` (the same objects the HTTP ingest
protocol sends). A batch goes to the file in one ``write`` under an ``flock``,
so several processes can share a file without interleaving lines, and the
file is rotated by size the way ``logging.handlers.RotatingFileHandler`` does
it: ``events.jsonl`` becomes ``events.jsonl.1``, which becomes ``.2``, up to
``backups``. Shippers such as Vector, Fluent Bit and Filebeat follow renames.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from .._errors import ConfigurationError, TransientSinkError
from .._models import CostEvent
from .._store import event_line, lock_file, unlock_file, write_all

__all__ = ["JSONLSink"]


class JSONLSink:
    """Append events to a JSON Lines file, rotating it by size.

    Args:
        path: The file; created (mode 0600, parents too) on first write.
        max_bytes: Rotate before a batch would make the file larger than
            this; 0 never rotates.
        backups: Rotated files kept (``path.1`` is the newest); 0 keeps none.
        fsync: Sync the file after every batch (survive a power cut, at a cost).

    Raises:
        ConfigurationError: ``path`` is a directory, or a bound is negative.

    >>> sink = JSONLSink("events.jsonl", max_bytes=50_000_000)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = 100 * 2**20,
        backups: int = 5,
        fsync: bool = False,
    ) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            msg = f"JSONLSink 'path' must be a file, not a directory (got {str(self.path)!r})."
            raise ConfigurationError(msg)
        for name, value in (("max_bytes", max_bytes), ("backups", backups)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                msg = f"JSONLSink '{name}' must be an int >= 0 (got {value!r})."
                raise ConfigurationError(msg)
        self._max_bytes = max_bytes
        self._backups = backups
        self._fsync = fsync
        self._fd: int | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"JSONLSink({str(self.path)!r})"

    def _open(self) -> int:
        # After a fork the child opens its own descriptor: a shared one would
        # share the flock too, and then it would exclude nobody.
        if self._fd is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def _reopen(self) -> int:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None
        return self._open()

    def _rotate(self) -> None:
        if self._backups == 0:
            self.path.unlink(missing_ok=True)
            return
        for index in range(self._backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{index + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def write(self, batch: Sequence[CostEvent]) -> None:
        """Append ``batch`` (rotating first if needed); a failed write is transient."""
        data = b"".join(event_line(event) for event in batch)
        if not data:
            return
        with self._lock:
            try:
                self._append(data)
            except OSError as exc:
                raise TransientSinkError(f"cannot append to {str(self.path)!r}: {exc}") from exc

    def _append(self, data: bytes) -> None:
        fd = self._open()
        for _ in range(10):
            lock_file(fd)  # released by the next close or by the unlock below
            try:
                current = self.path.stat()
            except FileNotFoundError:
                current = None
            opened = os.fstat(fd)
            if current is None or (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev):
                fd = self._reopen()  # another process rotated the file
                continue
            try:
                if self._max_bytes and opened.st_size and opened.st_size + len(data) > self._max_bytes:
                    self._rotate()
                    fd = self._reopen()
                    continue
                write_all(fd, data)
                if self._fsync:
                    os.fsync(fd)
                return
            finally:
                unlock_file(fd)
        raise OSError("the file kept being rotated away")

    def close(self) -> None:
        """Close the file (a later write reopens it)."""
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is not None and self._pid == os.getpid():
                os.close(fd)
