"""``fluxgate tail`` shows the last events first, waits for a store to appear and fits the terminal (issue 15)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fluxgate import Status
from fluxgate._cli.tail import tail_main

from .events import HOUR, NOW, REPO, SONNET, event, fill


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Fifteen events, written in order: feature f00 first, f14 last."""
    return fill(tmp_path / "events.db", [event(at=NOW - HOUR + i, feature=f"f{i:02}") for i in range(15)])


def tail(argv: list[str], **kwargs: object) -> tuple[int, list[str]]:
    """``fluxgate tail`` in-process until its first poll finds nothing new; returns the status and the lines."""
    out = io.StringIO()
    status = tail_main(argv, out=out, now_ms=NOW, stop=lambda: True, **kwargs)  # type: ignore[arg-type]
    return status, out.getvalue().splitlines()


def features(lines: list[str]) -> list[str]:
    return [line.split()[4] for line in lines]  # date, time, status, model, feature


class TestLastEventsFirst:
    """Like ``tail``, it first shows the last events already stored, oldest of them first."""

    def test_last_ten_by_default(self, store: Path) -> None:
        """With no flag, the header and the last ten events, in the order they were written."""
        status, (header, *lines) = tail(["--db", str(store)])
        assert status == 0
        assert header.startswith("time (UTC)")
        assert features(lines) == [f"f{i:02}" for i in range(5, 15)]

    @pytest.mark.parametrize(("n", "shown"), [("3", ["f12", "f13", "f14"]), ("0", []), ("50", None)])
    def test_lines_flag(self, store: Path, n: str, shown: list[str] | None) -> None:
        """-n N shows the last N (all when there are fewer; none for 0)."""
        _, (_, *lines) = tail(["--db", str(store), "-n", n])
        assert features(lines) == (shown if shown is not None else [f"f{i:02}" for i in range(15)])

    def test_since_shows_all_from_then(self, store: Path) -> None:
        """--since without -n shows every stored event from that time on."""
        _, (_, *lines) = tail(["--db", str(store), "--since", "2h"])
        assert len(lines) == 15

    def test_since_and_lines(self, tmp_path: Path) -> None:
        """--since with -n shows the last N of the events from that time on."""
        path = fill(tmp_path / "e.db", [event(at=NOW - 3 * HOUR, feature="old"), event(at=NOW - 1, feature="new")])
        _, (_, *lines) = tail(["--db", str(path), "--since", "1h", "-n", "5"])
        assert features(lines) == ["new"]

    def test_new_events_follow(self, store: Path) -> None:
        """After the stored events, events written later are printed as they arrive."""
        out = io.StringIO()
        written = []

        def write_more(_: float) -> None:  # the first empty poll writes two events, as an application would
            if not written:
                written.append(fill(store, [event(at=NOW, feature="late1"), event(at=NOW, feature="late2")]))

        status = tail_main(["--db", str(store), "-n", "1", "--limit", "3"], out=out, sleep=write_more)
        assert status == 0
        assert features(out.getvalue().splitlines()[1:]) == ["f14", "late1", "late2"]

    def test_bad_count(self, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A negative -n is a usage error."""
        assert tail(["--db", str(store), "-n", "-1"])[0] == 2
        assert "expected a whole number >= 0" in capsys.readouterr().err


class TestWaitsForTheStore:
    """Like ``tail -F``, a store that does not exist yet is waited for."""

    def test_waits_then_follows(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """It says once that it waits, and prints the events once the store appears."""
        path = tmp_path / "later" / "events.db"
        naps: list[float] = []

        def appear(seconds: float) -> None:
            naps.append(seconds)
            if len(naps) == 3:  # the third poll finds the store
                fill(path, [event(at=NOW, feature="first")])

        out = io.StringIO()
        status = tail_main(["--db", str(path), "--interval", "0.5", "--limit", "1"], out=out, sleep=appear)
        assert status == 0
        assert naps == [0.5, 0.5, 0.5]
        assert features(out.getvalue().splitlines()[1:]) == ["first"]
        err = capsys.readouterr().err
        assert err.count("waiting for a store at") == 1

    def test_stops_while_waiting(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Stopped (Ctrl-C, or stop()) while waiting, it exits 0 and prints no header."""
        status, lines = tail(["--db", str(tmp_path / "none.db")])
        assert (status, lines) == (0, [])
        assert "waiting for a store at" in capsys.readouterr().err

    def test_empty_file_is_waited_for(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file that has no events table yet (the sink is creating it) is waited for too."""
        path = tmp_path / "events.db"
        path.touch()
        assert tail(["--db", str(path)])[0] == 0
        assert "waiting for a store" in capsys.readouterr().err

    def test_corrupt_file_fails(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A file that is not a database is an error, not something to wait for."""
        path = tmp_path / "events.db"
        path.write_bytes(b"this is not a database, just some text that is long enough" * 100)
        assert tail(["--db", str(path)])[0] == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        assert "fluxgate tail:" in err[0]

    @pytest.mark.slow
    def test_real_process(self, tmp_path: Path) -> None:
        """The console script waits for a store created after it started, then prints its events."""
        path = tmp_path / "events.db"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-m", "fluxgate", "tail", "--db", str(path), "--format", "json"]
        with subprocess.Popen(
            [*command, "--interval", "0.05", "--limit", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            try:
                assert proc.stderr is not None
                assert "waiting for a store at" in proc.stderr.readline()  # blocks until it is waiting
                fill(path, [event(at=NOW, feature="a"), event(at=NOW, feature="b")])
                out, _ = proc.communicate(timeout=60)
            finally:
                proc.kill()
        assert proc.returncode == 0
        assert [json.loads(line)["feature"] for line in out.splitlines()] == ["a", "b"]


class TestWidth:
    """Lines fit the terminal: the least useful columns go first, then long names are clipped."""

    @pytest.mark.parametrize("width", [80, 60])
    def test_fits(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int) -> None:
        """At COLUMNS=80 or 60 no line is wider, and time, status and cost are still there."""
        long_name = "a-feature-name-much-longer-than-any-column"
        path = fill(tmp_path / "e.db", [event(cost="0.0123", feature=long_name, user="someone-with-a-long-id")])
        monkeypatch.setenv("COLUMNS", str(width))
        _, lines = tail(["--db", str(path)])
        assert all(len(line) <= width for line in lines), lines
        assert "SUCCESS" in lines[1]
        assert "$0.0123" in lines[1]
        assert "\N{HORIZONTAL ELLIPSIS}" in lines[1]

    def test_full_width_without_a_terminal(self, store: Path) -> None:
        """Written to a file with no COLUMNS, lines keep every column."""
        _, (header, *_) = tail(["--db", str(store)])
        assert header.split()[-3:] == ["tokens", "in/out", "latency"]


class TestAborted:
    """An aborted stream is marked as such."""

    def test_marked(self, tmp_path: Path) -> None:
        """Its status reads "SUCCESS (aborted)"; a finished call's does not."""
        events = [
            event(feature="done"),
            event(feature="cut", aborted=True, streamed=True, cost_status="estimated_usage"),
            event(feature="broke", status=Status.ERROR, aborted=True, streamed=True),
        ]
        _, (_, *lines) = tail(["--db", str(fill(tmp_path / "a.db", events))])
        assert [line.split()[2:4] for line in lines] == [
            ["SUCCESS", SONNET],
            ["SUCCESS", "(aborted)"],
            ["ERROR", "(aborted)"],
        ]
