"""``fluxgate report`` and ``fluxgate tail``: arguments in, tables, JSON, CSV or HTML out.

The queries live in ``_report``; this module parses arguments, picks the
output and turns every expected failure (no store, empty store, a bad flag)
into one line on stderr and a non-zero exit status, never a traceback.
Terminal tables use ``rich`` when it is installed (``pip install
fluxgate[report]``) and plain aligned text otherwise.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, NoReturn

import attrs

from ._models import CostEvent, Status
from ._report import (
    GROUPS,
    SORTS,
    CacheEfficiency,
    Economics,
    Filters,
    Follower,
    Report,
    ReportError,
    Stats,
    Waste,
    connect,
    format_count,
    format_ms,
    format_share,
    format_time,
    format_usd,
    label,
    overview,
    report,
)

__all__ = ["follow", "main", "parse_when", "tail_main"]

#: Exit statuses: 1 when there is nothing to report, 2 for a bad command line, 130 on Ctrl-C.
EXIT_NO_DATA = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _ExitError(Exception):
    """Leave ``main`` with a status, instead of argparse's ``sys.exit``."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports a usage error in one line and returns instead of exiting."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise _ExitError(EXIT_USAGE)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message, end="", file=sys.stderr)
        raise _ExitError(status)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_when(text: str, *, now_ms: int) -> int:
    """Unix ms from ``7d``/``24h``/``30m``/``90s``/``2w`` ago, a UTC date ``2026-11-01`` or an ISO time.

    Raises:
        ValueError: ``text`` is none of these.

    >>> parse_when("1d", now_ms=86_400_000)
    0
    >>> parse_when("1970-01-02", now_ms=0)
    86400000
    """
    match = _DURATION.match(text)
    if match:
        return now_ms - int(Decimal(match.group(1)) * _UNITS_MS[match.group(2)])
    raw = text.strip()
    if raw == "now":
        return now_ms
    try:
        if _DATE.match(raw):
            moment = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        else:
            moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
    except ValueError:
        msg = f"expected a duration such as 7d, 24h or 30m, or a date such as 2026-11-01 (got {text!r})"
        raise ValueError(msg) from None
    return int(moment.timestamp() * 1000)


def _split(values: Sequence[str] | None) -> list[str]:
    """Repeated and comma-separated values, in order, without blanks."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def _share(text: str) -> Decimal:
    """``0.2`` or ``20%`` as the share ``Decimal('0.2')``."""
    raw = text.strip()
    try:
        value = Decimal(raw[:-1]) / 100 if raw.endswith("%") else Decimal(raw)
    except InvalidOperation:
        msg = f"expected a share such as 0.2 or 20% (got {text!r})"
        raise argparse.ArgumentTypeError(msg) from None
    if not value.is_finite() or value < 0:
        msg = f"expected a share >= 0 such as 0.2 (got {text!r})"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"expected a whole number >= 1 (got {text!r})"
        raise argparse.ArgumentTypeError(msg)
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        msg = f"expected a number of seconds > 0 (got {text!r})"
        raise argparse.ArgumentTypeError(msg)
    return value


def _db_help() -> str:
    return "the store (default: $FLUXGATE_DB, else ~/.local/share/fluxgate/events.db)"


def _report_parser() -> _Parser:
    parser = _Parser(
        prog="fluxgate report",
        description="Cost, calls, tokens, errors and latency from the local store, grouped and filtered.",
    )
    parser.add_argument("--db", type=Path, help=_db_help())
    parser.add_argument(
        "--by",
        action="append",
        metavar="GROUP",
        help=f"group by {', '.join(GROUPS)}; comma-separated or repeated (default: feature)",
    )
    parser.add_argument("--since", help="from this time: 7d, 24h, 30m, 2026-11-01 or an ISO time (UTC)")
    parser.add_argument("--until", help="before this time (same forms as --since; a date means its midnight UTC)")
    parser.add_argument("--feature", action="append", help="only this feature (repeatable)")
    parser.add_argument("--user", action="append", help="only this user id (repeatable)")
    parser.add_argument("--model", action="append", help="only this model id (repeatable)")
    parser.add_argument(
        "--status", action="append", help=f"only these statuses, comma-separated or repeated: {', '.join(Status)}"
    )
    parser.add_argument(
        "--sort",
        choices=SORTS,
        help="order of the rows, largest first except name (default: cost; name when grouping by day first)",
    )
    parser.add_argument("--top", type=_positive, metavar="N", help="show only the first N rows (totals cover all)")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output (default: table)")
    parser.add_argument(
        "--margin-alert",
        type=_share,
        metavar="SHARE",
        help="flag users whose 30-day AI spend exceeds this share of their monthly revenue (0.2 or 20%%)",
    )
    parser.add_argument("--html", type=Path, metavar="PATH", help="write the HTML report with charts to PATH")
    return parser


@attrs.frozen(kw_only=True)
class _Options:
    store: Path
    group_by: tuple[str, ...]
    filters: Filters
    sort: str
    top: int | None
    fmt: str
    threshold: Decimal | None
    html: Path | None
    now_ms: int


def _options(args: argparse.Namespace, parser: _Parser, now_ms: int) -> _Options:
    group_by = tuple(_split(args.by)) or ("feature",)
    for group in group_by:
        if group not in GROUPS:
            parser.error(f"unknown group-by {group!r}; choose from {', '.join(GROUPS)}")
    if len(set(group_by)) != len(group_by):
        parser.error(f"--by names a group twice ({', '.join(group_by)})")
    statuses = tuple(s.upper() for s in _split(args.status))
    for status in statuses:
        if status not in Status.__members__:
            parser.error(f"unknown status {status!r}; choose from {', '.join(Status)}")
    times: dict[str, int | None] = {}
    for flag in ("since", "until"):
        text = getattr(args, flag)
        try:
            times[flag] = None if text is None else parse_when(text, now_ms=now_ms)
        except ValueError as exc:
            parser.error(f"--{flag}: {exc}")
    since, until = times["since"], times["until"]
    if since is not None and until is not None and since >= until:
        parser.error("--since must be earlier than --until")
    from .sinks.sqlite import default_db_path

    return _Options(
        store=args.db if args.db is not None else default_db_path(),
        group_by=group_by,
        filters=Filters(
            since_ms=since,
            until_ms=until,
            features=tuple(args.feature or ()),
            users=tuple(args.user or ()),
            statuses=statuses,
            models=tuple(args.model or ()),
        ),
        sort=args.sort or ("name" if group_by[0] == "day" else "cost"),
        top=args.top,
        fmt=args.format,
        threshold=args.margin_alert,
        html=args.html,
        now_ms=now_ms,
    )


def main(argv: list[str], *, out: IO[str] | None = None, now_ms: int | None = None) -> int:
    """Run ``fluxgate report``; returns the exit status.

    ``out`` (default stdout) and ``now_ms`` (default the clock) are for tests.
    """
    stream = sys.stdout if out is None else out
    parser = _report_parser()
    try:
        args = parser.parse_args(argv)
        opts = _options(args, parser, _now_ms() if now_ms is None else now_ms)
    except _ExitError as exc:
        return exc.status
    try:
        conn = connect(opts.store)
    except ReportError as exc:
        print(f"fluxgate report: {exc}", file=sys.stderr)
        return EXIT_NO_DATA
    try:
        return _run(conn, opts, stream)
    except ReportError as exc:
        print(f"fluxgate report: {exc}", file=sys.stderr)
        return EXIT_NO_DATA
    except BrokenPipeError:  # `fluxgate report | head`
        _silence(stream)
        return 0
    except OSError as exc:  # the HTML file could not be written
        print(f"fluxgate report: {exc}", file=sys.stderr)
        return EXIT_NO_DATA
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        conn.close()


def _silence(stream: IO[str]) -> None:
    """Point stdout at /dev/null after its reader left, so the exit flush does not raise again."""
    if stream is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _run(conn: sqlite3.Connection, opts: _Options, out: IO[str]) -> int:
    if opts.fmt == "csv" and opts.html is None:
        rep = report(conn, group_by=opts.group_by, filters=opts.filters, sort=opts.sort, top=opts.top)
        if not _has_events(rep, opts):
            return EXIT_NO_DATA
        _write_csv(rep, out)
        return 0
    view = overview(
        opts.store,
        group_by=opts.group_by,
        filters=opts.filters,
        sort=opts.sort,
        top=opts.top,
        threshold=opts.threshold,
        now_ms=opts.now_ms,
        charts=opts.html is not None,
    )
    if not _has_events(view.report, opts):
        return EXIT_NO_DATA
    if opts.html is not None:
        from ._html import render

        opts.html.write_text(render(view), encoding="utf-8")
        totals = view.report.totals
        print(f"wrote {opts.html} ({totals.calls:,} calls, {format_usd(totals.cost_usd)})", file=out)
        return 0
    if opts.fmt == "json":
        data = {
            "store": str(opts.store),
            **report_json(view.report),
            "waste": waste_json(view.waste),
            "cache": cache_json(view.cache),
            "economics": economics_json(view.economics),
        }
        json.dump(data, out, indent=2)
        out.write("\n")
        return 0
    _Printer(out).report(view.report, view.waste, view.cache, view.economics, store=str(opts.store))
    return 0


def _has_events(rep: Report, opts: _Options) -> bool:
    if rep.totals.calls:
        return True
    f = opts.filters
    filtered = f != Filters()
    where = " matching the filters" if filtered else ""
    print(f"fluxgate report: no events{where} in {str(opts.store)!r}.", file=sys.stderr)
    return False


# --- JSON and CSV -------------------------------------------------------------------------


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_STAT_FIELDS = (
    "calls",
    "cost_usd",
    "unpriced_calls",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "failed_calls",
    "error_rate",
    "p50_latency_ms",
    "p95_latency_ms",
)


def stats_json(stats: Stats) -> dict[str, Any]:
    """A ``Stats`` as JSON-ready data; money as exact decimal strings."""
    out: dict[str, Any] = {}
    for name in _STAT_FIELDS:
        value = getattr(stats, name)
        out[name] = str(value) if isinstance(value, Decimal) else value
    out["first"], out["last"] = _iso(stats.first_ms), _iso(stats.last_ms)
    return out


def report_json(rep: Report) -> dict[str, Any]:
    """A ``Report`` as JSON-ready data: each row names its groups."""
    f = rep.filters
    return {
        "group_by": list(rep.group_by),
        "sort": rep.sort,
        "filters": {
            "since": _iso(f.since_ms),
            "until": _iso(f.until_ms),
            "features": list(f.features),
            "users": list(f.users),
            "statuses": list(f.statuses),
            "models": list(f.models),
        },
        "total_groups": rep.total_groups,
        "rows": [dict(zip(rep.group_by, row.key, strict=True)) | stats_json(row) for row in rep.rows],
        "totals": stats_json(rep.totals),
    }


def waste_json(w: Waste) -> dict[str, Any]:
    """A ``Waste`` as JSON-ready data."""
    out: dict[str, Any] = {
        kind: {"calls": s.calls, "cost_usd": str(s.cost_usd), "unpriced_calls": s.unpriced_calls}
        for kind, s in (("max_tokens", w.max_tokens), ("refusals", w.refusals), ("failed", w.failed), ("all", w.total))
    }
    out["wasted_usd"] = str(w.wasted_usd)
    out["share"] = w.share
    return out


def cache_json(c: CacheEfficiency) -> dict[str, Any]:
    """A ``CacheEfficiency`` as JSON-ready data."""
    return {
        "saved_usd": str(c.saved_usd),
        "write_cost_usd": str(c.write_cost_usd),
        "write_premium_usd": str(c.write_premium_usd),
        "net_usd": str(c.net_usd),
        "hit_rate": c.hit_rate,
        "read_tokens": c.read_tokens,
        "write_tokens": c.write_tokens,
        "unpriced_read_tokens": c.unpriced_read_tokens,
        "unpriced_write_tokens": c.unpriced_write_tokens,
        "models": [
            {
                "model": m.model,
                "priced": m.priced,
                "calls": m.calls,
                "read_tokens": m.read_tokens,
                "write_tokens": m.write_tokens,
                "saved_usd": str(m.saved_usd),
                "write_cost_usd": str(m.write_cost_usd),
                "write_premium_usd": str(m.write_premium_usd),
            }
            for m in c.models
        ],
    }


def economics_json(e: Economics) -> dict[str, Any]:
    """An ``Economics`` as JSON-ready data; ratios as decimal strings."""

    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "days": e.days,
        "since": _iso(e.since_ms),
        "until": _iso(e.until_ms),
        "threshold": text(e.threshold),
        "spend_usd": str(e.spend_usd),
        "revenue": str(e.revenue),
        "ratio": text(e.ratio),
        "users_with_revenue": e.users_with_revenue,
        "alerts": [u.user_id for u in e.alerts],
        "users": [
            {
                "user_id": u.user_id,
                "name": u.name,
                "monthly_revenue": text(u.monthly_revenue),
                "spend_usd": str(u.spend_usd),
                "ratio": text(u.ratio),
                "calls": u.calls,
                "unpriced_calls": u.unpriced_calls,
                "over_threshold": u.over_threshold,
            }
            for u in e.users
        ],
    }


def _write_csv(rep: Report, out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*rep.group_by, *_STAT_FIELDS])
    for row in rep.rows:
        data = stats_json(row)
        keys = ("" if k is None else k for k in row.key)
        writer.writerow([*keys, *("" if data[f] is None else data[f] for f in _STAT_FIELDS)])


# --- terminal tables ----------------------------------------------------------------------


@attrs.frozen
class _Table:
    title: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    footer: tuple[str, ...] | None = None
    text_cols: int = 1


class _Printer:
    """Sections of tables and notes, with rich when it is installed and plain text otherwise."""

    def __init__(self, out: IO[str], *, use_rich: bool | None = None) -> None:
        self.out = out
        self.console: Any = None
        if use_rich is not False:
            try:
                from rich.console import Console
            except ImportError:
                pass
            else:
                wide = None if out.isatty() else 200
                self.console = Console(file=out, width=wide, highlight=False, emoji=False, markup=False)
                # rich exits with status 1 when its reader goes away; let main() handle it like print() does.
                self.console.on_broken_pipe = _raise_broken_pipe

    def line(self, text: str = "") -> None:
        if self.console is not None:
            self.console.print(text, soft_wrap=True)
        else:
            print(text, file=self.out)

    def table(self, table: _Table) -> None:
        if self.console is not None:
            self._rich(table)
        else:
            self._plain(table)

    def _rich(self, table: _Table) -> None:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        grid = Table(title=table.title, title_justify="left", box=box.SIMPLE_HEAD, show_footer=table.footer is not None)
        for i, name in enumerate(table.head):
            foot = Text(table.footer[i]) if table.footer is not None else Text("")
            grid.add_column(Text(name), footer=foot, justify="left" if i < table.text_cols else "right")
        for row in table.rows:
            grid.add_row(*(Text(cell) for cell in row))
        self.console.print(grid)

    def _plain(self, table: _Table) -> None:
        every = [table.head, *table.rows, *([table.footer] if table.footer is not None else [])]
        widths = [max(len(r[i]) for r in every) for i in range(len(table.head))]

        def fmt(row: Sequence[str]) -> str:
            cells = [
                cell.ljust(widths[i]) if i < table.text_cols else cell.rjust(widths[i]) for i, cell in enumerate(row)
            ]
            return "  ".join(cells).rstrip()

        rule = "  ".join("-" * w for w in widths)
        lines = [table.title, fmt(table.head), rule, *(fmt(r) for r in table.rows)]
        if table.footer is not None:
            lines += [rule, fmt(table.footer)]
        print("\n".join(lines) + "\n", file=self.out)

    # --- the report's sections ---

    def report(self, rep: Report, spent: Waste, cache: CacheEfficiency, econ: Economics, *, store: str) -> None:
        totals = rep.totals
        since = rep.filters.since_ms if rep.filters.since_ms is not None else totals.first_ms
        until = rep.filters.until_ms if rep.filters.until_ms is not None else totals.last_ms
        self.line(f"fluxgate report: {store}, {format_time(since)} to {format_time(until)}, {totals.calls:,} calls")
        self.line()
        head = (*rep.group_by, "calls", "cost", "unknown cost", "input", "output", "reasoning")
        head += ("cache read", "cache write", "errors", "p50 ms", "p95 ms")
        rows = tuple((*(label(k) for k in r.key), *_cells(r)) for r in rep.rows)
        footer = ("total", *[""] * (len(rep.group_by) - 1), *_cells(totals))
        self.table(_Table(f"By {', '.join(rep.group_by)}", head, rows, footer, text_cols=len(rep.group_by)))
        if rep.total_groups > len(rep.rows):
            hidden = rep.total_groups - len(rep.rows)
            self.line(f"{format_count(hidden, 'more group')} not shown (--top {len(rep.rows)}).")
        if totals.unpriced_calls:
            self.line(
                f"{format_count(totals.unpriced_calls, 'call')} of unknown cost (models with no price): "
                "counted apart in the 'unknown cost' column, not as $0."
            )
        self.line()
        self._waste(spent)
        self._cache(cache)
        self._economics(econ)

    def _waste(self, w: Waste) -> None:
        rows = tuple(
            (name, f"{s.calls:,}", format_usd(s.cost_usd), f"{s.unpriced_calls:,}")
            for name, s in (("cut off at max_tokens", w.max_tokens), ("refused", w.refusals), ("failed", w.failed))
        )
        head = ("waste", "calls", "cost", "unknown cost")
        self.table(_Table("Waste", head, rows))
        self.line(
            f"{format_usd(w.wasted_usd)} of {format_usd(w.total.cost_usd)} ({format_share(w.share)}) "
            "bought no usable answer."
        )
        self.line()

    def _cache(self, c: CacheEfficiency) -> None:
        models = [m for m in c.models if m.read_tokens or m.write_tokens]
        if not models:
            self.line("Cache: no prompt caching in this range.")
            self.line()
            return
        rows = tuple(
            (
                label(m.model),
                f"{m.read_tokens:,}",
                format_usd(m.saved_usd) if m.priced else "unknown",
                f"{m.write_tokens:,}",
                format_usd(m.write_cost_usd) if m.priced else "unknown",
                format_usd(m.write_premium_usd) if m.priced else "unknown",
            )
            for m in models
        )
        head = ("model", "read tokens", "reads saved", "write tokens", "writes cost", "write premium")
        footer = (
            "total",
            f"{c.read_tokens:,}",
            format_usd(c.saved_usd),
            f"{c.write_tokens:,}",
            format_usd(c.write_cost_usd),
            format_usd(c.write_premium_usd),
        )
        self.table(_Table("Cache", head, rows, footer))
        self.line(
            f"Caching saved {format_usd(c.net_usd)} net (reads saved minus the write premium); "
            f"hit rate {format_share(c.hit_rate)} of prompt tokens."
        )
        if c.unpriced_read_tokens or c.unpriced_write_tokens:
            self.line("Models with no price are left out of the dollar figures.")
        self.line()

    def _economics(self, e: Economics, *, shown: int = 10) -> None:
        users = [u for u in e.users if u.monthly_revenue is not None]
        if not users:
            self.line(f"Unit economics: no user with a monthly_revenue made calls in the last {e.days} days.")
            return
        picked = users[:shown] + [u for u in users[shown:] if u.over_threshold]
        rows = tuple(
            (
                u.user_id,
                format_usd(u.monthly_revenue or Decimal(0)),
                format_usd(u.spend_usd),
                format_share(u.ratio),
                f"{u.calls:,}",
                "over" if u.over_threshold else "",
            )
            for u in picked
        )
        head = ("user", "revenue / month", f"AI spend {e.days}d", "ratio", "calls", "alert")
        self.table(_Table(f"Unit economics, last {e.days} days", head, rows))
        self.line(
            f"{format_count(e.users_with_revenue, 'user')} with a known revenue spent {format_usd(e.spend_usd)} "
            f"against {format_usd(e.revenue)} a month ({format_share(e.ratio)})."
        )
        if e.threshold is not None:
            alerts = e.alerts
            names = ", ".join(u.user_id for u in alerts[:10]) + (", ..." if len(alerts) > 10 else "")
            verb = "user spends" if len(alerts) == 1 else "users spend"
            self.line(
                f"{len(alerts):,} {verb} more than {format_share(e.threshold)} of their revenue"
                + (f": {names}" if alerts else ".")
            )


def _raise_broken_pipe() -> None:
    raise BrokenPipeError


def _cells(s: Stats) -> tuple[str, ...]:
    return (
        f"{s.calls:,}",
        format_usd(s.cost_usd),
        f"{s.unpriced_calls:,}",
        f"{s.input_tokens:,}",
        f"{s.output_tokens:,}",
        f"{s.reasoning_tokens:,}",
        f"{s.cache_read_tokens:,}",
        f"{s.cache_write_tokens:,}",
        format_share(s.error_rate),
        format_ms(s.p50_latency_ms),
        format_ms(s.p95_latency_ms),
    )


# --- tail ----------------------------------------------------------------------------------


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
                since = parse_when(args.since, now_ms=_now_ms() if now_ms is None else now_ms)
            except ValueError as exc:
                parser.error(f"--since: {exc}")
    except _ExitError as exc:
        return exc.status
    from .sinks.sqlite import default_db_path

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
