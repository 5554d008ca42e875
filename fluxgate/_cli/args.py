"""Command-line plumbing shared by the subcommands.

The exit statuses; a parser that reports a usage error in one line and returns
instead of exiting; the argument types (times, shares, counts, seconds); the
width to fit tables to; and the quiet exit when the reader of stdout goes away.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import IO, NoReturn

from .._report import parse_when

__all__ = ["EXIT_INTERRUPTED", "EXIT_NO_DATA", "EXIT_USAGE", "parse_when", "terminal_width"]

#: Exit statuses: 1 when there is nothing to report, 2 for a bad command line, 130 on Ctrl-C.
EXIT_NO_DATA = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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
    return (
        "the store: a SQLite file or a postgresql://user:password@host/dbname URL "
        "(default: $FLUXGATE_DB, else ~/.local/share/fluxgate/events.db)"
    )


def _silence(stream: IO[str]) -> None:
    """Point stdout at /dev/null after its reader left, so the exit flush does not raise again."""
    if stream is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def terminal_width(stream: IO[str], environ: Mapping[str, str] | None = None) -> int | None:
    """The width to fit tables to: ``$COLUMNS`` when set, else the terminal's, else ``None`` (no limit).

    A pipe or a file has no width unless ``COLUMNS`` gives one, so
    ``fluxgate report > costs.txt`` keeps every column.
    """
    env = os.environ if environ is None else environ
    raw = env.get("COLUMNS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return max(int(raw), 20)
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        tty = False
    if not tty:
        return None
    return max(shutil.get_terminal_size().columns, 20)
