"""``fluxgate doctor``: is fluxgate set up to record, and can it write where it records?

It prints fluxgate's version; the installed anthropic release and whether
fluxgate is tested with it; the SDK methods fluxgate patches on ``init()`` and
whether each one is in that release; and the store: its path (or its
``postgresql://`` URL, the password masked), where that came from, and
whether a test event can be written and read back there. The test event is
rolled back, so the store is left exactly as it was; on PostgreSQL the
schema the sink would create on its first write is created and rolled back
with it, so a role that may not create the table is found out too. It exits 1
when the store is unusable (or anthropic is missing), so a deploy script can
run it before the application starts.
"""

from __future__ import annotations

import os
import platform
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

import attrs

from .._version import __version__
from .args import _db_help, _ExitError, _Parser

if TYPE_CHECKING:
    from .._store.postgres import Conn

__all__ = ["TESTED_ANTHROPIC", "in_range", "main"]

#: The anthropic releases the test suite runs on (0.50.0 ... 2.x).
TESTED_ANTHROPIC: Final = ">=0.50,<3"
_CLAUSE: Final = re.compile(r"^\s*(>=|<=|==|<|>)\s*(\d+(?:\.\d+)*)\s*$")


def _release(text: str) -> tuple[int, ...]:
    """The numeric release of a version string: ``2.15.0rc1`` -> ``(2, 15, 0)``."""
    match = re.match(r"\d+(?:\.\d+)*", text.strip())
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def in_range(version: str, spec: str = TESTED_ANTHROPIC) -> bool:
    """Whether ``version`` meets every clause of ``spec`` (``>=0.50,<3``).

    >>> in_range("0.50.0"), in_range("2.15.0"), in_range("0.49.9"), in_range("3.0.0")
    (True, True, False, False)
    """
    release = _release(version)
    for clause in spec.split(","):
        match = _CLAUSE.match(clause)
        if match is None:
            msg = f"not a version clause: {clause!r}"
            raise ValueError(msg)
        op, bound = match.group(1), _release(match.group(2))
        size = max(len(release), len(bound))
        left, right = release + (0,) * (size - len(release)), bound + (0,) * (size - len(bound))
        ok = {
            ">=": left >= right,
            "<=": left <= right,
            "==": left == right,
            "<": left < right,
            ">": left > right,
        }[op]
        if not ok:
            return False
    return True


@attrs.frozen
class _Check:
    """One line of the report; ``problem`` makes ``doctor`` exit 1."""

    text: str
    problem: bool = False


def _anthropic() -> tuple[str | None, list[_Check]]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("anthropic")
    except PackageNotFoundError:
        return None, [_Check("anthropic: not installed; fluxgate has nothing to track (pip install anthropic)", True)]
    if in_range(found):
        return found, [_Check(f"anthropic: {found}, in the tested range ({TESTED_ANTHROPIC})")]
    return found, [_Check(f"anthropic: {found}, OUTSIDE the tested range ({TESTED_ANTHROPIC}); calls may go untracked")]


def _patches(release: str | None) -> list[_Check]:
    """The SDK methods fluxgate patches, and whether each is in the installed release."""
    from .._instrument import TARGETS, is_instrumented, resolve

    if is_instrumented():
        lines = [_Check("patches: installed in this process")]
    else:
        lines = [_Check("patches: none in this process (fluxgate patches anthropic when the application calls init())")]
    if release is None:
        return lines
    lines.append(_Check(f"  on anthropic {release}, init() patches:"))
    found = 0
    for module, cls, method, _ in TARGETS:
        owner = resolve(module, cls)
        name = f"{module}.{cls}.{method}"
        if owner is not None and method in owner.__dict__:
            lines.append(_Check(f"  yes  {name}"))
        elif owner is not None and hasattr(owner, method):
            lines.append(_Check(f"  yes  {name} (inherited: patched where it is defined)"))
        else:
            lines.append(_Check(f"  no   {name} (not in this release)"))
            continue
        found += 1
    lines.append(_Check(f"  {found} of {len(TARGETS)} are in this release; the others belong to older or newer ones"))
    return lines


def _writable_dir(directory: Path) -> str | None:
    """``None`` if a file can be created in ``directory`` (or the nearest folder that exists); else why not."""
    folder = directory
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{str(folder)!r} is not a directory"
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".fluxgate-doctor-")
    except OSError as exc:
        return f"cannot create a file in {str(folder)!r} ({exc.strerror or exc})"
    os.close(fd)
    Path(name).unlink(missing_ok=True)
    return None


def _probe(path: Path, *, has_table: bool) -> str | None:
    """Write a test event, read it back and roll it back; ``None`` when that worked, else the error.

    A store whose file exists but holds no table yet (the sink creates it on
    its first write) is probed with a scratch table, rolled back the same way.
    """
    from .._store import TABLE, connect, event_from_row

    tracking_id = f"fluxgate-doctor-{os.getpid()}-{time.time_ns()}"
    try:
        conn = connect(path, 2.0)
    except (sqlite3.Error, OSError) as exc:
        return str(exc)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not has_table:
                conn.execute("CREATE TABLE fluxgate_doctor_probe (tracking_id TEXT)")
                conn.execute("INSERT INTO fluxgate_doctor_probe VALUES (?)", (tracking_id,))
                found = conn.execute("SELECT tracking_id FROM fluxgate_doctor_probe").fetchone()
                return None if found == (tracking_id,) else "the test row could not be read back"
            conn.execute(
                f"INSERT INTO {TABLE} (tracking_id, created_at, status, cost_status, cost_usd, cost_pusd,"
                " cost_breakdown) VALUES (?, ?, 'SUCCESS', 'priced', '0', 0, '{}')",
                (tracking_id, time.time_ns() // 1_000_000),
            )
            conn.row_factory = sqlite3.Row
            row = conn.execute(f"SELECT * FROM {TABLE} WHERE tracking_id = ?", (tracking_id,)).fetchone()
            if row is None or event_from_row(row).tracking_id != tracking_id:
                return "the test event could not be read back"
        finally:
            conn.execute("ROLLBACK")  # leave the store exactly as it was
    except (sqlite3.Error, ValueError, TypeError, KeyError) as exc:
        return str(exc)
    finally:
        conn.close()
    return None


def _store(path: Path, source: str) -> list[_Check]:
    from .._report import NoStoreError, ReportError, connect, format_time

    lines = [_Check(f"store: {path} (from {source})")]
    if path.is_dir():
        return [*lines, _Check("  unusable: the path is a directory, not a file", True)]
    if not path.exists():
        why = _writable_dir(path.parent)
        if why is not None:
            return [*lines, _Check(f"  unusable: it does not exist and cannot be created: {why}", True)]
        return [*lines, _Check("  not created yet: it is created when the first call is recorded (folder writable)")]
    has_table = path.stat().st_size > 0
    if has_table:
        try:
            conn = connect(path)
        except NoStoreError:
            return [*lines, _Check("  unusable: an SQLite database, but not a fluxgate store (no events table)", True)]
        except ReportError as exc:
            return [*lines, _Check(f"  unusable: {exc}", True)]
        try:
            count, last = conn.execute("SELECT COUNT(*), MAX(created_at) FROM events").fetchone()
        finally:
            conn.close()
        lines.append(_Check(f"  events: {count:,}" + (f", the last at {format_time(int(last))}" if last else "")))
    else:
        lines.append(_Check("  events: none yet (an empty file: the events table is created on the first write)"))
    error = _probe(path, has_table=has_table)
    if error is not None:
        lines.append(_Check(f"  writable: NO: {error}", True))
        lines.append(_Check(f"last delivery error: {error} (from a test write just now)"))
    else:
        lines.append(_Check("  writable: yes (a test event was written, read back and rolled back)"))
        lines.append(_Check("last delivery error: none (a test write just now succeeded)"))
    return lines


def _pg_events(conn: Conn) -> tuple[int, int | None] | None:
    """The events and the time of the last; ``None`` when there is no events table yet."""
    from .._store import EVENTS_TABLE

    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (EVENTS_TABLE,)).fetchone()
    if found is None or not found[0]:
        return None
    row = conn.execute(f"SELECT COUNT(*), MAX(created_at) FROM {EVENTS_TABLE}").fetchone()
    return (0, None) if row is None else (int(row[0]), None if row[1] is None else int(row[1]))


def _pg_probe(conn: Conn) -> str | None:
    """What the sink does on its first write, then a test event read back: all rolled back."""
    from .._store import EVENTS_TABLE, ensure_events_schema

    tracking_id = f"fluxgate-doctor-{os.getpid()}-{time.time_ns()}"
    with conn.transaction(force_rollback=True):  # leave the store exactly as it was
        ensure_events_schema(conn)
        conn.execute(
            f"INSERT INTO {EVENTS_TABLE} (tracking_id, created_at, status, cost_status, cost_usd, cost_pusd,"
            " cost_breakdown) VALUES (%s, %s, 'SUCCESS', 'priced', 0, 0, '{}')",
            (tracking_id, time.time_ns() // 1_000_000),
        )
        row = conn.execute(f"SELECT tracking_id FROM {EVENTS_TABLE} WHERE tracking_id = %s", (tracking_id,)).fetchone()
    return None if row is not None and row[0] == tracking_id else "the test event could not be read back"


def _pg_store(url: str, source: str) -> list[_Check]:
    """The PostgreSQL store: reachable, its events, and a test write rolled back; the password never shown."""
    from .._errors import ConfigurationError
    from .._report import format_time
    from .._store import Connections, StoreError, mask_url, parse_target

    lines = [_Check(f"store: {mask_url(url)} (PostgreSQL, from {source})")]
    try:
        target = parse_target(url, owner="the store")
    except ConfigurationError as exc:
        return [*lines, _Check(f"  unusable: {exc}", True)]
    conns = Connections(target, max_size=1, connect_timeout_s=5.0, statement_timeout_s=30.0)
    try:
        try:
            events = conns.run(_pg_events, what="reading the store", transaction=False)
        except StoreError as exc:  # scrubbed: the URL masked, psycopg's text without the password
            return [*lines, _Check(f"  unusable: {exc}", True)]
        if events is None:
            lines.append(_Check("  events: none yet (the fluxgate_events table is created on the first write)"))
        else:
            count, last = events
            lines.append(_Check(f"  events: {count:,}" + (f", the last at {format_time(last)}" if last else "")))
        try:
            error = conns.run(_pg_probe, what="a test write", transaction=False)
        except StoreError as exc:
            error = str(exc)
    finally:
        conns.close()
    if error is not None:
        lines.append(_Check(f"  writable: NO: {error}", True))
        lines.append(_Check(f"last delivery error: {error} (from a test write just now)"))
    else:
        lines.append(_Check("  writable: yes (a test event was written, read back and rolled back)"))
        lines.append(_Check("last delivery error: none (a test write just now succeeded)"))
    return lines


def _environment(environ: Mapping[str, str]) -> list[_Check]:
    flags = [name for name in ("FLUXGATE_DISABLED", "FLUXGATE_DEBUG") if environ.get(name, "").strip()]
    return [_Check(f"environment: {name}={environ[name].strip()!r} is set") for name in flags]


def main(argv: Sequence[str], *, out: IO[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run ``fluxgate doctor``; returns 0 when fluxgate can record, 1 when it cannot."""
    stream = sys.stdout if out is None else out
    env = os.environ if environ is None else environ
    parser = _Parser(prog="fluxgate doctor", description="Check that fluxgate can track calls and write its store.")
    parser.add_argument("--db", help=_db_help())
    try:
        args = parser.parse_args(list(argv))
    except _ExitError as exc:
        return exc.status
    from .._store import default_db_path, is_postgres_url

    if args.db is not None:
        chosen, source = str(args.db), "--db"
    elif env.get("FLUXGATE_DB"):
        chosen, source = env["FLUXGATE_DB"], "$FLUXGATE_DB"
    else:
        chosen, source = str(default_db_path()), "the default path"
    pg = is_postgres_url(chosen)
    store = _pg_store(chosen.strip(), source) if pg else _store(Path(chosen).expanduser(), source)
    release, checks = _anthropic()
    checks = [
        _Check(f"fluxgate {__version__} (Python {platform.python_version()})"),
        *checks,
        *_environment(env),
        *_patches(release),
        *store,
    ]
    for check in checks:
        print(check.text, file=stream)
    problems = sum(check.problem for check in checks)
    print(f"\n{'no problems found' if not problems else f'{problems} problem(s): fluxgate cannot record'}", file=stream)
    return 1 if problems else 0
