"""``fluxgate reconcile``: the store beside Anthropic's own usage and cost reports.

Every expected failure ends in one line on stderr and an exit status, never a
traceback: 0 compared, 1 coverage below ``--min-coverage``, 2 cannot run as
configured (bad flags, no admin key, the key refused, no store), 3 the
comparison could not be made (the Admin API unavailable after retries, or an
answer that is not a report), 130 interrupted. The admin key is read from the
environment and never printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, NoReturn

from .._store import describe_store, resolve_store
from .admin import DEFAULT_BASE_URL, AdminAPIError, AdminClient, AdminKeyRefusedError
from .compare import GROUPS, reconcile
from .output import percent, write_csv, write_json, write_table
from .period import day_of, parse_when, since_day, until_day
from .records import Reconciliation
from .store import StoreError, read_tracked

__all__ = [
    "EXIT_BELOW_MIN_COVERAGE",
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "KEY_VARIABLES",
    "load_saved",
    "main",
    "saved_path",
]

EXIT_BELOW_MIN_COVERAGE = 1
EXIT_CONFIG = 2
EXIT_FAILED = 3
EXIT_INTERRUPTED = 130
#: Where the admin key is read from, in order. Never ``ANTHROPIC_API_KEY``: a regular key cannot read reports.
KEY_VARIABLES = ("ANTHROPIC_ADMIN_KEY", "ANTHROPIC_ADMIN_API_KEY")
_PROG = "fluxgate reconcile"
_KEY_SHAPE = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces: anything else is not a key
_log = logging.getLogger("fluxgate.reconcile")


class _ExitError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """Report a usage error in one line and return, instead of exiting."""

    err: IO[str] = sys.stderr

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=self.err)
        raise _ExitError(EXIT_CONFIG)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message, end="", file=self.err)
        raise _ExitError(status)


def _share(text: str) -> Decimal:
    raw = text.strip()
    try:
        value = Decimal(raw[:-1]) / 100 if raw.endswith("%") else Decimal(raw)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or not 0 <= value <= 1:
        msg = f"expected a share from 0 to 1 such as 0.98 or 98% (got {text!r})"
        raise argparse.ArgumentTypeError(msg)
    return value


def _parser() -> _Parser:
    parser = _Parser(
        prog=_PROG,
        description="Compare the local store with Anthropic's usage and cost reports (Admin API), per UTC day "
        "and model. The admin key comes from ANTHROPIC_ADMIN_KEY or ANTHROPIC_ADMIN_API_KEY.",
    )
    parser.add_argument(
        "--since", default="7d", metavar="WHEN", help="from this UTC day: 7d or 2026-11-01 (default: 7d)"
    )
    parser.add_argument(
        "--until", metavar="DAY", help="up to this UTC day, exclusive: 2026-11-08 (default: today included)"
    )
    parser.add_argument("--by", action="append", metavar="KEYS", help=f"row key from {', '.join(GROUPS)} (day,model)")
    parser.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output (default: table)")
    parser.add_argument(
        "--db",
        metavar="PATH|URL",
        help="a SQLite file or a postgresql:// URL (default: $FLUXGATE_DB, else ~/.local/share/fluxgate/events.db)",
    )
    parser.add_argument(
        "--save",
        nargs="?",
        const=True,
        metavar="PATH",
        help="also save the result as JSON for `fluxgate report --html` (default path: <db>.reconcile.json)",
    )
    parser.add_argument("--min-coverage", type=_share, metavar="SHARE", help="exit 1 if coverage is below SHARE")
    parser.add_argument("--undated", action="store_true", help="compare model ids without their -YYYYMMDD suffix")
    parser.add_argument(
        "--workspace",
        action="append",
        metavar="ID",
        help="only the report's figures for this workspace (`default` for the default one); repeatable",
    )
    return parser


def main(
    argv: Sequence[str],
    *,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    now_ms: int | None = None,
    sleep: Callable[[float], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run ``fluxgate reconcile``; returns the exit status.

    ``out``/``err`` (default stdout/stderr), ``now_ms`` (the clock), ``sleep``
    (between retries) and ``environ`` (default ``os.environ``) are for tests.
    """
    stream = sys.stdout if out is None else out
    errors = sys.stderr if err is None else err
    env = os.environ if environ is None else environ
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    try:
        return _run(list(argv), out=stream, err=errors, env=env, now_ms=now, sleep=sleep or time.sleep)
    except _ExitError as exc:
        return exc.status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _fail(err: IO[str], message: str, status: int) -> NoReturn:
    print(f"{_PROG}: {message}", file=err)
    raise _ExitError(status)


def _run(
    argv: list[str], *, out: IO[str], err: IO[str], env: Mapping[str, str], now_ms: int, sleep: Callable[[float], None]
) -> int:
    parser = _parser()
    parser.err = err
    args = parser.parse_args(argv)
    by = tuple(part.strip() for value in args.by or ("day,model",) for part in value.split(",") if part.strip())
    for name in by:
        if name not in GROUPS:
            parser.error(f"--by: unknown key {name!r}; choose from {', '.join(GROUPS)}")
    if len(set(by)) != len(by):
        parser.error(f"--by names a key twice ({', '.join(by)})")
    try:
        since = since_day(parse_when(args.since, now_ms=now_ms))
        until = None if args.until is None else until_day(parse_when(args.until, now_ms=now_ms))
    except ValueError as exc:
        parser.error(f"--since/--until: {exc}")
    today = day_of(now_ms)
    if since > today:
        parser.error(f"--since {since} is in the future")
    if until is not None and since >= until:
        parser.error("--since must be earlier than --until")
    if until is not None and until > today + timedelta(days=1):
        until = today + timedelta(days=1)  # no report holds tomorrow; the API may refuse a future ending_at
    workspaces = [part.strip() for value in args.workspace or () for part in value.split(",") if part.strip()]

    key = next((env[name].strip() for name in KEY_VARIABLES if env.get(name, "").strip()), "")
    if not key:
        _fail(err, "no admin key: set ANTHROPIC_ADMIN_KEY to an Admin API key (sk-ant-admin...).", EXIT_CONFIG)
    if not _KEY_SHAPE.match(key):
        _fail(err, "the admin key in the environment is malformed (spaces or control characters).", EXIT_CONFIG)
    base_url = env.get("ANTHROPIC_BASE_URL", "").strip() or DEFAULT_BASE_URL
    if not base_url.startswith(("https://", "http://")):
        _fail(err, "ANTHROPIC_BASE_URL must start with https:// (or http://).", EXIT_CONFIG)

    store = resolve_store(args.db)
    if args.save is True and isinstance(store, str):
        _fail(err, "--save needs a file for a database store: give --save PATH.", EXIT_CONFIG)
    last = until if until is not None else today + timedelta(days=1)
    try:
        tracked = read_tracked(store, since=since, until=last)
    except StoreError as exc:
        _fail(err, str(exc), EXIT_CONFIG)
    client = AdminClient(api_key=key, base_url=base_url, sleep=sleep, user_agent=_user_agent())
    try:
        usage = client.usage(since=since, until=until, group_by=("model", "service_tier", "workspace_id"))
        cost = client.cost(since=since, until=until, group_by=("description", "workspace_id"))
    except AdminKeyRefusedError as exc:
        _fail(err, f"{exc}. Use an Admin API key (sk-ant-admin...) of the organisation.", EXIT_CONFIG)
    except AdminAPIError as exc:
        _fail(err, str(exc), EXIT_FAILED)
    result = reconcile(
        tracked=tracked,
        usage=usage,
        cost=cost,
        since=since,
        until=last,
        now_ms=now_ms,
        by=by,
        undated=args.undated,
        workspaces=workspaces or None,
        reported_through=client.reported_through,
        store=describe_store(store),
    )
    try:
        {"json": write_json, "csv": write_csv}.get(args.format, write_table)(result, out)
        out.flush()
    except BrokenPipeError:  # `fluxgate reconcile | head`
        return 0
    if args.save is not None:
        target = saved_path(store) if args.save is True and isinstance(store, Path) else Path(str(args.save))
        try:
            _save(result, target)
        except OSError as exc:
            _fail(err, f"could not save the result ({exc}).", EXIT_FAILED)
        print(f"{_PROG}: saved to {target}", file=err)
    floor = args.min_coverage
    total = result.total
    # Compared exactly (no division): 0.97999... is below 0.98 even if it prints as 98.00%.
    if floor is not None and total.tracked_cost_usd < floor * total.reported_cost_usd:
        shown = percent(floor)
        _fail(err, f"coverage {percent(total.coverage)} is below --min-coverage {shown}.", EXIT_BELOW_MIN_COVERAGE)
    return 0


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"fluxgate/{version('fluxgate')} (reconcile)"
    except PackageNotFoundError:
        return "fluxgate (reconcile)"


def saved_path(db_path: str | os.PathLike[str]) -> Path:
    """Where ``--save`` puts the result for the store at ``db_path``: ``<db>.reconcile.json``."""
    path = Path(db_path).expanduser()
    return path.with_name(path.name + ".reconcile.json")


def _save(result: Reconciliation, target: Path) -> None:
    """Write atomically, readable by the owner only (as the store is)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(result.to_json(), handle, indent=2)
            handle.write("\n")
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_saved(db_path: str | os.PathLike[str]) -> Reconciliation | None:
    """The result ``fluxgate reconcile --save`` left beside the store at ``db_path``, if any.

    Returns ``None`` (and logs why) when there is none or it cannot be read,
    so the HTML report can call it unconditionally.

    >>> load_saved("/nonexistent/events.db") is None
    True
    """
    path = saved_path(db_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        _log.warning("cannot read the saved reconcile result %s: %s", path, exc)
        return None
    try:
        return Reconciliation.from_json(json.loads(text))
    except ValueError as exc:
        _log.warning("ignoring the saved reconcile result %s: %s", path, exc)
        return None
