"""JSONLSink: one event per line, appended, rotated by size."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from fluxgate import ConfigurationError, TransientSinkError
from fluxgate._delivery.flusher import Flusher
from fluxgate._store.lines import event_from_dict
from fluxgate.sinks import JSONLSink

from .conftest import make_events


def read_lines(path: Path) -> list[dict[str, object]]:
    """Every line of ``path``, parsed."""
    return [json.loads(line) for line in path.read_text().splitlines()]


class TestJSONLSink:
    def test_one_event_per_line(self, tmp_path: Path) -> None:
        """Each event is one line holding its to_dict(), in order."""
        path = tmp_path / "events.jsonl"
        sink = JSONLSink(path)
        events = make_events(5)
        sink.write(events)
        sink.close()
        rows = read_lines(path)
        assert [event_from_dict(row) for row in rows] == events
        assert path.read_bytes().endswith(b"\n")

    def test_appends(self, tmp_path: Path) -> None:
        """A new sink on an existing file appends to it."""
        path = tmp_path / "events.jsonl"
        first, second = make_events(3), make_events(2)
        JSONLSink(path).write(first)
        sink = JSONLSink(path)
        sink.write(second)
        sink.close()
        assert [row["tracking_id"] for row in read_lines(path)] == [e.tracking_id for e in first + second]

    def test_creates_parents_private(self, tmp_path: Path) -> None:
        """The file and its parents are created, the file readable by its owner only."""
        path = tmp_path / "a" / "b" / "events.jsonl"
        JSONLSink(path).write(make_events(1))
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_rotation_by_size(self, tmp_path: Path) -> None:
        """Past max_bytes the file is rotated; no line is split and backups are bounded."""
        path = tmp_path / "events.jsonl"
        line_size = len(json.dumps(make_events(1)[0].to_dict(), separators=(",", ":")).encode()) + 1
        sink = JSONLSink(path, max_bytes=line_size * 25, backups=2)
        batches = [make_events(10) for _ in range(10)]
        for batch in batches:
            sink.write(batch)
        sink.close()
        files = sorted(p.name for p in tmp_path.iterdir())
        assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
        for name in files:
            assert (tmp_path / name).stat().st_size <= line_size * 25 + 100
        kept = read_lines(path.with_name("events.jsonl.2")) + read_lines(path.with_name("events.jsonl.1"))
        kept += read_lines(path)
        everything = [e.tracking_id for batch in batches for e in batch]
        assert [row["tracking_id"] for row in kept] == everything[-len(kept) :]

    def test_no_backups(self, tmp_path: Path) -> None:
        """With backups=0 a full file is started afresh."""
        path = tmp_path / "events.jsonl"
        sink = JSONLSink(path, max_bytes=2000, backups=0)
        for _ in range(5):
            sink.write(make_events(1))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]
        assert len(read_lines(path)) < 5

    def test_big_batch_in_a_fresh_file(self, tmp_path: Path) -> None:
        """A batch larger than max_bytes is still written, whole, to one file."""
        path = tmp_path / "events.jsonl"
        sink = JSONLSink(path, max_bytes=100)
        sink.write(make_events(5))
        assert len(read_lines(path)) == 5

    def test_write_after_close_reopens(self, tmp_path: Path) -> None:
        """Writing after close() reopens the file."""
        path = tmp_path / "events.jsonl"
        sink = JSONLSink(path)
        sink.write(make_events(1))
        sink.close()
        sink.write(make_events(1))
        sink.close()
        assert len(read_lines(path)) == 2

    def test_follows_a_rename(self, tmp_path: Path) -> None:
        """When something else rotates the file away, the next write starts a new one."""
        path = tmp_path / "events.jsonl"
        sink = JSONLSink(path, max_bytes=0)
        sink.write(make_events(1))
        path.rename(tmp_path / "moved.jsonl")
        sink.write(make_events(2))
        assert len(read_lines(path)) == 2

    def test_os_errors_are_transient(self, tmp_path: Path) -> None:
        """A file that cannot be written is a transient error."""
        blocker = tmp_path / "file"
        blocker.write_text("")
        with pytest.raises(TransientSinkError):
            JSONLSink(blocker / "events.jsonl").write(make_events(1))

    @pytest.mark.parametrize("options", [{"max_bytes": -1}, {"backups": -2}, {"backups": 1.5}])
    def test_rejects_bad_bounds(self, tmp_path: Path, options: dict[str, object]) -> None:
        """A negative or non-integer bound is a ConfigurationError."""
        with pytest.raises(ConfigurationError):
            JSONLSink(tmp_path / "e.jsonl", **options)  # type: ignore[arg-type]

    def test_rejects_a_directory(self, tmp_path: Path) -> None:
        """A path that is a directory is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="directory"):
            JSONLSink(tmp_path)

    def test_through_the_flusher(self, tmp_path: Path) -> None:
        """Events recorded through the flusher land in the file."""
        path = tmp_path / "events.jsonl"
        f = Flusher([JSONLSink(path)], max_batch_size=7)
        events = make_events(50)
        for event in events:
            f.submit(event)
        assert f.close(5)
        assert [row["tracking_id"] for row in read_lines(path)] == [e.tracking_id for e in events]

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
    @pytest.mark.filterwarnings("ignore::DeprecationWarning")
    def test_processes_share_a_file(self, tmp_path: Path) -> None:
        """Forked writers sharing one file, with rotation, never split or lose a line."""
        path = tmp_path / "events.jsonl"
        sink = JSONLSink(path, max_bytes=200_000, backups=50)
        sink.write(make_events(1))  # the parent's descriptor exists before the fork
        children = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 1
                try:
                    for _ in range(50):
                        sink.write(make_events(5))
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
        for pid in children:
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
        rows = [row for p in tmp_path.iterdir() for row in read_lines(p)]
        assert len(rows) == 1 + 4 * 50 * 5
        assert len({row["tracking_id"] for row in rows}) == len(rows)
