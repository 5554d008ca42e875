"""``fluxgate tail``: the last events, then each new one as it is written, as a table line or a JSON object.

Like ``tail -f``, it first shows the last events already stored (10 unless
``-n`` says otherwise), oldest first, then follows; and like ``tail -F`` it
waits for a store that does not exist yet: a SQLite file, or the events table
of a PostgreSQL database (``--db postgresql://...``, shown with its password
masked). Feature, user and model names are escaped before they reach the
terminal, and the line fits its width.
Like ``fluxgate report``, every expected failure ends in one line on stderr
and a non-zero exit status; Ctrl-C and a closed pipe end it quietly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

from .._ids import now_ms as clock_ms
from .._models import CostEvent
from .._report import Follower, NoStoreError, Reader, ReportError, clean, fit, format_usd, label, open_reader
from .args import (
    EXIT_NO_DATA,
    _db_help,
    _ExitError,
    _Parser,
    _positive,
    _seconds,
    _silence,
    parse_when,
    terminal_width,
)

__all__ = ["Layout", "event_line", "follow", "tail_main"]

#: The columns of a line and their widest: the time, status, model, feature, user, cost, tokens and latency.
_HEAD: Final = ("time (UTC)", "status", "model", "feature", "user", "cost", "tokens in/out", "latency")
_WIDEST: Final = (19, 17, 26, 16, 14, 10, 13, 10)
_TEXT: Final = frozenset({2, 3, 4})
_RIGHT: Final = frozenset({5})
#: What a narrow terminal gives up first (see ``_report.layout``).
_STEPS: Final = ("latency", "tokens in/out", 16, "user", 12, "feature", 8)
_DEFAULT_LINES: Final = 10


class Layout:
    """Which columns a ``tail`` line shows, and how wide each is, for a terminal ``width`` (``None``: all)."""

    def __init__(self, width: int | None = None) -> None:
        shape = fit(_HEAD, [tuple("x" * w for w in _WIDEST)], width=width, text_cols=_TEXT, steps=_STEPS)
        self._keep = shape.keep
        self._widths = dict(zip(shape.keep, shape.widths, strict=True))

    def line(self, cells: tuple[str, ...]) -> str:
        """The cells (one per column of the full line) padded, clipped and joined; left-out columns skipped."""
        out = []
        for i in self._keep:
            size, text = self._widths[i], cells[i]
            if len(text) > size:
                text = text[: size - 1] + "\N{HORIZONTAL ELLIPSIS}"
            out.append(text.rjust(size) if i in _RIGHT else text.ljust(size))
        return "  ".join(out).rstrip()

    def head(self) -> str:
        """The header line."""
        return self.line(_HEAD)


_FULL: Final = Layout()


def event_line(event: CostEvent, layout: Layout = _FULL) -> str:
    """One event as a line of the ``tail`` table; names from the application are escaped."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event.created_at / 1000))
    cost = "unknown" if event.cost_usd is None else format_usd(event.cost_usd)
    latency = "" if event.latency_ms is None else f"{event.latency_ms:,.0f} ms"
    cells = (
        when,
        event.status.value + (" (aborted)" if event.aborted else ""),
        clean(label(event.model)),
        clean(label(event.feature)),
        clean(label(event.user_id)),
        cost,
        f"{event.input_tokens:,}/{event.output_tokens:,}",
        latency,
    )
    return layout.line(cells)


def follow(
    follower: Follower,
    out: IO[str],
    *,
    fmt: str = "table",
    interval_s: float = 1.0,
    limit: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] = lambda: False,
    layout: Layout = _FULL,
) -> int:
    """Print events as they arrive until ``limit`` events were shown or ``stop()`` is true; returns the count.

    ``sleep`` runs only after a poll that found nothing; ``stop`` is asked after every poll.
    """
    shown = 0
    skipped = 0
    while True:
        batch = follower.poll(limit=1000 if limit is None else min(1000, limit - shown))
        for event in batch:
            print(json.dumps(event.to_dict()) if fmt == "json" else event_line(event, layout), file=out)
            shown += 1
        out.flush()
        if follower.skipped > skipped:
            print(f"fluxgate tail: skipped {follower.skipped - skipped} rows that could not be read", file=sys.stderr)
            skipped = follower.skipped
        if (limit is not None and shown >= limit) or stop():
            return shown
        if not batch:
            sleep(interval_s)


def _lines(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        msg = f"expected a whole number >= 0 (got {text!r})"
        raise argparse.ArgumentTypeError(msg)
    return value


def _tail_parser() -> _Parser:
    parser = _Parser(
        prog="fluxgate tail",
        description="Show the last events in the store, then each new one as it is written.",
    )
    parser.add_argument("--db", help=_db_help())
    parser.add_argument(
        "-n",
        "--lines",
        type=_lines,
        metavar="N",
        help=f"first show the last N stored events (default: {_DEFAULT_LINES}; 0 for new events only)",
    )
    parser.add_argument("--since", help="first show the stored events from this time on: 10m, 1h, 2026-11-01 ...")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="one line per event")
    parser.add_argument("--interval", type=_seconds, default=1.0, metavar="S", help="seconds between polls")
    parser.add_argument("--limit", type=_positive, metavar="N", help="stop after N events")
    return parser


def _wait_for_store(
    store: str | Path, *, interval_s: float, sleep: Callable[[float], None], stop: Callable[[], bool]
) -> Reader | None:
    """Open the store, waiting (as ``tail -F`` does) while there is none yet; ``None`` if ``stop()`` came first.

    Raises:
        ReportError: The file is there but is not a store (corrupt, unreadable),
            or the database cannot be reached.
    """
    from .._store import describe_store

    waiting = False
    while True:
        try:
            return open_reader(store)
        except NoStoreError:
            if not waiting:
                print(
                    f"fluxgate tail: waiting for a store at {describe_store(store)!r} "
                    "(it is created when the first call is recorded; Ctrl-C to stop)",
                    file=sys.stderr,
                )
                waiting = True
        if stop():
            return None
        sleep(interval_s)


def tail_main(
    argv: list[str],
    *,
    out: IO[str] | None = None,
    now_ms: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Run ``fluxgate tail``; returns the exit status. Ctrl-C ends it quietly.

    ``out``, ``now_ms``, ``sleep`` and ``stop`` are for tests.
    """
    stream = sys.stdout if out is None else out
    parser = _tail_parser()
    try:
        args = parser.parse_args(argv)
        since = None
        if args.since is not None:
            try:
                since = parse_when(args.since, now_ms=clock_ms() if now_ms is None else now_ms)
            except ValueError as exc:
                parser.error(f"--since: {exc}")
    except _ExitError as exc:
        return exc.status
    from .._store import resolve_store

    store = resolve_store(args.db)
    last = args.lines if args.lines is not None else (None if since is not None else _DEFAULT_LINES)
    reader = None
    try:
        reader = _wait_for_store(store, interval_s=args.interval, sleep=sleep, stop=stop)
        if reader is None:
            return 0
        layout = Layout(terminal_width(stream))
        if args.format == "table":
            print(layout.head(), file=stream)
        follow(
            Follower(reader, since_ms=since, last=last),
            stream,
            fmt=args.format,
            interval_s=args.interval,
            limit=args.limit,
            sleep=sleep,
            stop=stop,
            layout=layout,
        )
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        _silence(stream)
        return 0
    except ReportError as exc:
        print(f"fluxgate tail: {exc}", file=sys.stderr)
        return EXIT_NO_DATA
    finally:
        if reader is not None:
            reader.close()
    return 0
