"""UTC days: the unit both sides of a reconciliation are bucketed in.

``--since`` and ``--until`` take the forms ``fluxgate report`` takes (``7d``,
``24h``, ``2026-11-01``, an ISO time); both are then widened to whole UTC
days, because Anthropic's report has no smaller cost bucket than a day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from .._ids import parse_when

__all__ = ["DAY_MS", "day_of", "day_start_ms", "parse_rfc3339_day", "parse_when", "rfc3339", "since_day", "until_day"]

DAY_MS = 86_400_000
_EPOCH = date(1970, 1, 1)


def day_of(ms: int) -> date:
    """The UTC day a Unix-ms instant falls in.

    >>> day_of(DAY_MS + 1)
    datetime.date(1970, 1, 2)
    """
    return _EPOCH + timedelta(days=ms // DAY_MS)


def day_start_ms(day: date) -> int:
    """Unix ms of the midnight (UTC) that starts ``day``."""
    return (day - _EPOCH).days * DAY_MS


def since_day(ms: int) -> date:
    """The first whole day to compare: the day ``ms`` falls in."""
    return day_of(ms)


def until_day(ms: int) -> date:
    """The first day *not* compared: ``ms`` rounded up to a midnight.

    >>> until_day(DAY_MS), until_day(DAY_MS + 1)
    (datetime.date(1970, 1, 2), datetime.date(1970, 1, 3))
    """
    day = day_of(ms)
    return day if day_start_ms(day) == ms else day + timedelta(days=1)


def rfc3339(day: date) -> str:
    """Midnight UTC of ``day`` as the Admin API writes times.

    >>> rfc3339(date(2026, 11, 24))
    '2026-11-24T00:00:00Z'
    """
    return f"{day.isoformat()}T00:00:00Z"


def parse_rfc3339_day(text: str) -> date:
    """The UTC day a bucket's ``starting_at`` falls in.

    Raises:
        ValueError: ``text`` is not an RFC 3339 time.
    """
    raw = text.strip()
    moment = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).date()
