"""Command-line plumbing shared by ``fluxgate report`` and ``fluxgate tail``.

The exit statuses; a parser that reports a usage error in one line and returns
instead of exiting; the argument types (times, shares, counts, seconds); and
the quiet exit when the reader of stdout goes away.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import IO, NoReturn

__all__ = ["EXIT_INTERRUPTED", "EXIT_NO_DATA", "EXIT_USAGE", "parse_when"]

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


def _silence(stream: IO[str]) -> None:
    """Point stdout at /dev/null after its reader left, so the exit flush does not raise again."""
    if stream is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
