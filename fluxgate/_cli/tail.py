"""``fluxgate tail``: follow the store and print each new event as a table line or a JSON object.

Like ``fluxgate report``, every expected failure ends in one line on stderr
and a non-zero exit status; Ctrl-C and a closed pipe end it quietly.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .._ids import now_ms as clock_ms
from .._models import CostEvent
from .._report import Follower, ReportError, connect, format_usd, label
from .args import (
    EXIT_NO_DATA,
    _db_help,
    _ExitError,
    _Parser,
    _positive,
    _seconds,
    _silence,
    parse_when,
)

__all__ = ["event_line", "follow", "tail_main"]


def _tail_parser() -> _Parser:
    parser = _Parser(prog="fluxgate tail", description="Follow new events as they are written to the store.")
    parser.add_argument("--db", type=Path, help=_db_help())
    parser.add_argument("--since", help="also show stored events from this time on: 10m, 1h, 2026-11-01 ...")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="one line per event")
    parser.add_argument("--interval", type=_seconds, default=1.0, metavar="S", help="seconds between polls")
    parser.add_argument("--limit", type=_positive, metavar="N", help="stop after N events")
    return parser


_TAIL_HEAD = (
    f"{'time (UTC)':<19}  {'status':<14}  {'model':<26}  {'feature':<16}  {'user':<14}  {'cost':>10}"
    "  tokens in/out  latency"
)


def event_line(event: CostEvent) -> str:
    """One event as a line of the ``tail`` table."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event.created_at / 1000))
    cost = "unknown" if event.cost_usd is None else format_usd(event.cost_usd)
    tokens = f"{event.input_tokens:,}/{event.output_tokens:,}"
    latency = "" if event.latency_ms is None else f"{event.latency_ms:,.0f} ms"
    cells = (
        f"{when:<19}",
        f"{event.status.value:<14}",
        f"{_clip(event.model, 26):<26}",
        f"{_clip(event.feature, 16):<16}",
        f"{_clip(event.user_id, 14):<14}",
        f"{cost:>10}",
        f"{tokens:<13}",
        latency,
    )
    return "  ".join(cells).rstrip()


def _clip(value: str | None, size: int) -> str:
    text = label(value)
    return text if len(text) <= size else text[: size - 1] + "~"


def follow(
    follower: Follower,
    out: IO[str],
    *,
    fmt: str = "table",
    interval_s: float = 1.0,
    limit: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Print events as they arrive until ``limit`` events were shown or ``stop()`` is true; returns the count.

    ``sleep`` runs only after a poll that found nothing; ``stop`` is asked after every poll.
    """
    shown = 0
    skipped = 0
    while True:
        batch = follower.poll(limit=1000 if limit is None else min(1000, limit - shown))
        for event in batch:
            print(json.dumps(event.to_dict()) if fmt == "json" else event_line(event), file=out)
            shown += 1
        out.flush()
        if follower.skipped > skipped:
            print(f"fluxgate tail: skipped {follower.skipped - skipped} rows that could not be read", file=sys.stderr)
            skipped = follower.skipped
        if (limit is not None and shown >= limit) or stop():
            return shown
        if not batch:
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
    from .._store import default_db_path

    store = args.db if args.db is not None else default_db_path()
    try:
        conn = connect(store)
    except ReportError as exc:
        print(f"fluxgate tail: {exc}", file=sys.stderr)
        return EXIT_NO_DATA
    try:
        if args.format == "table":
            print(_TAIL_HEAD, file=stream)
        follow(
            Follower(conn, since_ms=since),
            stream,
            fmt=args.format,
            interval_s=args.interval,
            limit=args.limit,
            sleep=sleep,
            stop=stop,
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
        conn.close()
    return 0
