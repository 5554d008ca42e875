"""Formatting shared by the terminal, HTML, JSON and CSV reports: money, shares, times and untrusted text.

Feature names, user ids, steps and model ids come from the application, so
none of them is trusted. :func:`clean` escapes what a terminal would act on,
:func:`csv_cell` what a spreadsheet would run, and the HTML report escapes
markup itself. :func:`decimal_text` writes exact numbers without an exponent.
"""

from __future__ import annotations

import time
import unicodedata
from decimal import Decimal
from typing import Final

__all__ = [
    "clean",
    "clip",
    "csv_cell",
    "decimal_text",
    "format_count",
    "format_ms",
    "format_share",
    "format_time",
    "format_usd",
    "label",
]

#: What a spreadsheet treats as the start of a formula (OWASP, "CSV Injection").
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
#: Control, format (bidi overrides, zero-width) and line/paragraph separator characters.
_UNSAFE: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})


def format_usd(value: Decimal) -> str:
    """Dollars for people: cents from $1 up, four significant digits below (``$0.0045``)."""
    if value == 0:
        return "$0.00"
    sign, size = ("-" if value < 0 else ""), abs(value)
    if size >= 1:
        return f"{sign}${size:,.2f}"
    places = min(max(2, 3 - size.adjusted()), 10)
    text = f"{size:.{places}f}".rstrip("0")
    if len(text.partition(".")[2]) < 2:
        text = f"{size:.2f}"
    return f"{sign}${text}"


def format_share(value: float | Decimal | None) -> str:
    """A share as a percentage (``12.5%``); an em dash for ``None``."""
    if value is None:
        return "\N{EM DASH}"
    pct = float(value) * 100
    if pct == 0:
        return "0%"
    if pct < 0.01:
        return "<0.01%"
    if pct < 1:
        return f"{pct:.2g}%"
    return f"{pct:.1f}%" if pct < 10 else f"{pct:,.0f}%"


def format_ms(value: float | None) -> str:
    """A latency in whole milliseconds; an em dash for ``None``."""
    return "\N{EM DASH}" if value is None else f"{value:,.0f}"


def format_time(ms: int | None) -> str:
    """Unix ms as ``2026-11-03 14:05 UTC``."""
    if ms is None:
        return "\N{EM DASH}"
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))


def format_count(n: int, noun: str) -> str:
    """``1 call``, ``2,000 calls``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def label(value: str | None) -> str:
    """A group value for display; events with no value show as ``(none)``."""
    return "(none)" if value is None else value


def decimal_text(value: Decimal) -> str:
    """``value`` written out in full: no exponent, no trailing zeros (JSON and CSV money and ratios).

    >>> decimal_text(Decimal("0E+1")), decimal_text(Decimal("1E-7")), decimal_text(Decimal("2.50"))
    ('0', '0.0000001', '2.5')
    """
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def clean(value: object) -> str:
    """Text safe to print on a terminal: control and format characters escaped.

    Escape sequences (``ESC[2J``), OSC-8 links, newlines that would forge a
    row, bidi overrides and the C1 controls some terminals obey are all shown
    as Python escapes instead of acting.

    >>> clean("a\\x1b[2Jb\\nc")
    'a\\\\x1b[2Jb\\\\nc'
    """
    text = str(value)
    if text.isprintable():  # the common case: nothing to escape
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in _UNSAFE else ch for ch in text
    )


def clip(text: str, size: int) -> str:
    """``text`` cut to ``size`` characters, the cut shown with an ellipsis."""
    if len(text) <= size:
        return text
    return text[: max(size - 1, 0)] + "\N{HORIZONTAL ELLIPSIS}" if size > 0 else ""


def csv_cell(value: object) -> str:
    """A CSV text cell no spreadsheet will run: ``=HYPERLINK(...)`` becomes ``'=HYPERLINK(...)``.

    Only text from the store goes through here; numbers are written as they are.

    >>> csv_cell("=1+1"), csv_cell("-beta"), csv_cell(None), csv_cell("chat")
    ("'=1+1", "'-beta", '', 'chat')
    """
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text
