"""``fluxgate report``: arguments in, tables, JSON, CSV or HTML out.

The queries and the rendering live in ``_report``; this module parses
arguments, picks the output and turns every expected failure (no store, empty
store, an unreachable database, a bad flag) into one line on stderr and a
non-zero exit status, never a traceback. ``--db`` and ``$FLUXGATE_DB`` name a
SQLite file or a ``postgresql://`` URL; a URL is shown with its password
masked. ``fluxgate tail`` lives in ``tail``; ``tail_main``, ``follow`` and
``parse_when`` are re-exported here for the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import IO

import attrs

from .._ids import now_ms as clock_ms
from .._models import Status
from .._report import (
    GROUPS,
    SORTS,
    Filters,
    Printer,
    Reader,
    Report,
    ReportError,
    cache_json,
    economics_json,
    format_usd,
    open_reader,
    overview,
    report,
    report_json,
    waste_json,
    write_csv,
)
from .args import (
    EXIT_INTERRUPTED,
    EXIT_NO_DATA,
    _db_help,
    _ExitError,
    _Parser,
    _positive,
    _share,
    _silence,
    _split,
    parse_when,
    terminal_width,
)
from .tail import follow, tail_main

__all__ = ["follow", "main", "parse_when", "tail_main"]


def _report_parser() -> _Parser:
    parser = _Parser(
        prog="fluxgate report",
        description="Cost, calls, tokens, errors and latency from the store, grouped and filtered.",
    )
    parser.add_argument("--db", help=_db_help())
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
    parser.add_argument(
        "--html",
        type=Path,
        metavar="PATH",
        help="write the HTML report with charts to PATH (with tracked vs billed after `fluxgate reconcile --save`)",
    )
    return parser


@attrs.frozen(kw_only=True)
class _Options:
    store: str | Path
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
    from .._store import resolve_store

    return _Options(
        store=resolve_store(args.db),
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
        opts = _options(args, parser, clock_ms() if now_ms is None else now_ms)
    except _ExitError as exc:
        return exc.status
    try:
        reader = open_reader(opts.store)
    except ReportError as exc:
        print(f"fluxgate report: {exc}", file=sys.stderr)
        return EXIT_NO_DATA
    try:
        return _run(reader, opts, stream)
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
        reader.close()


def _run(reader: Reader, opts: _Options, out: IO[str]) -> int:
    if opts.fmt == "csv" and opts.html is None:
        rep = report(reader, group_by=opts.group_by, filters=opts.filters, sort=opts.sort, top=opts.top)
        if not _has_events(rep, opts, reader):
            return EXIT_NO_DATA
        write_csv(rep, out)
        return 0
    view = overview(
        reader,
        group_by=opts.group_by,
        filters=opts.filters,
        sort=opts.sort,
        top=opts.top,
        threshold=opts.threshold,
        now_ms=opts.now_ms,
        charts=opts.html is not None,
    )
    if not _has_events(view.report, opts, reader):
        return EXIT_NO_DATA
    if opts.html is not None:
        from .._reconcile import load_saved, render_html_section
        from .._report import render

        # A "Tracked vs billed" section when `fluxgate reconcile --save` left a result beside the store
        # (a file beside a SQLite file: a database has no "beside").
        saved = load_saved(opts.store) if isinstance(opts.store, Path) else None
        sections = () if saved is None else (render_html_section(saved),)
        opts.html.write_text(render(view, sections=sections), encoding="utf-8")
        totals = view.report.totals
        extra = "" if saved is None else ", with tracked vs billed"
        print(f"wrote {opts.html} ({totals.calls:,} calls, {format_usd(totals.cost_usd)}{extra})", file=out)
        return 0
    if opts.fmt == "json":
        data = {
            "store": reader.name,
            **report_json(view.report),
            "waste": waste_json(view.waste),
            "cache": cache_json(view.cache),
            "economics": economics_json(view.economics),
        }
        json.dump(data, out, indent=2)
        out.write("\n")
        return 0
    printer = Printer(out, width=terminal_width(out))
    printer.report(view.report, view.waste, view.cache, view.economics, store=reader.name)
    return 0


def _has_events(rep: Report, opts: _Options, reader: Reader) -> bool:
    if rep.totals.calls:
        return True
    f = opts.filters
    filtered = f != Filters()
    where = " matching the filters" if filtered else ""
    print(f"fluxgate report: no events{where} in {reader.name!r}.", file=sys.stderr)
    return False
