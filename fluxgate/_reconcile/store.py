"""The tracked side: what the store recorded, summed per UTC day, model and service tier.

The store is a SQLite file, opened read-only with the stdlib, or a PostgreSQL
database (a ``postgresql://`` URL), read in read-only sessions; the same SQL
runs on both. Costs are summed in SQL as the integer pico-dollars of the
``cost_pusd`` column (in two parts, so no sum overflows SQLite), so the sums
are exact. Web-search fees are then moved out of each model's figure (the
cost report bills them on a row of their own) using the ``web_search`` entry
of each event's cost breakdown.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import ConfigurationError, FluxgateError
from .._store import is_postgres_url, mask_url
from .period import day_of, day_start_ms
from .records import Tokens, Uncompared

if TYPE_CHECKING:
    from .._store.postgres import Conn

#: Runs one query of ``_read``: SQL with ``?`` placeholders and its parameters.
_Run = Callable[[str, Sequence[object]], list[tuple[Any, ...]]]

__all__ = ["StoreError", "Tracked", "TrackedGroup", "default_db_path", "pusd_to_usd", "read_tracked"]

_TABLE = "events"
_PICO = Decimal(10) ** 12
#: Costs are summed in two integer parts (whole millidollars and the rest), so a sum
#: cannot pass SQLite's 64-bit limit (about $9.2 million in pico-dollars) and stays exact.
_SPLIT = 1_000_000_000
#: Columns an older store may lack, and the value to read in their place.
_OPTIONAL = {
    "platform": "'anthropic'",
    "usage_service_tier": "NULL",
    "cache_creation_input_tokens": "0",
    "cache_read_input_tokens": "0",
    "web_search_requests": "0",
    "cost_breakdown": "NULL",
    "status": "NULL",
}


class StoreError(FluxgateError):
    """The store is missing, unreadable or not a fluxgate store."""


@attrs.frozen(kw_only=True)
class TrackedGroup:
    """What the store holds for one UTC day, model and service tier (Anthropic platform only)."""

    day: date
    model: str | None
    service_tier: str
    calls: int
    unpriced_calls: int
    cost_pusd: int
    tokens: Tokens
    web_search_pusd: int = 0


@attrs.frozen(kw_only=True)
class Tracked:
    """The tracked side of a reconciliation.

    Attributes:
        groups: Anthropic-platform events per day, model and tier; each
            group's ``web_search_pusd`` is the part of ``cost_pusd`` spent on web searches.
        other_platforms: Bedrock, Vertex and other platforms in the same days.
        first_event_ms, last_event_ms: The store's whole range (every
            platform, every day), ``None`` when it holds no events.
    """

    groups: tuple[TrackedGroup, ...]
    other_platforms: tuple[Uncompared, ...]
    first_event_ms: int | None
    last_event_ms: int | None


def default_db_path() -> Path:
    """``$FLUXGATE_DB``, else ``$XDG_DATA_HOME/fluxgate/events.db`` (``~/.local/share/...``).

    The same rule as ``fluxgate.sinks.sqlite.default_db_path``, kept in step by hand.
    """
    env = os.environ.get("FLUXGATE_DB")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fluxgate" / "events.db"


def pusd_to_usd(pusd: int) -> Decimal:
    """Pico-dollars to dollars, exactly.

    >>> pusd_to_usd(1_500_000_000_000)
    Decimal('1.500000000000')
    """
    return Decimal(pusd).scaleb(-12)


def read_tracked(path: Path | str, *, since: date, until: date) -> Tracked:
    """Sum the store's events from midnight of ``since`` to midnight of ``until`` (exclusive).

    ``path`` is a SQLite file or a ``postgresql://`` URL.

    Raises:
        StoreError: No store at ``path``, not a fluxgate store, or a database
            that cannot be reached (named with its password masked).
    """
    if is_postgres_url(path):
        return _read_postgres(str(path), day_start_ms(since), day_start_ms(until))
    path = Path(path)
    conn = _connect(path)
    try:
        present = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({_TABLE})")}
        return _read(
            lambda sql, params: conn.execute(sql, params).fetchall(),
            _TABLE,
            present,
            day_start_ms(since),
            day_start_ms(until),
        )
    except sqlite3.DatabaseError as exc:
        msg = f"{str(path)!r} could not be read ({exc})."
        raise StoreError(msg) from None
    finally:
        conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    if str(path).lower().startswith(("postgresql:/", "postgres:/")):
        # A URL read as a path (pathlib folds its "//"): name it masked, never as a file.
        shown = mask_url(str(path).replace(":/", "://", 1))
        msg = f"{shown!r} names a PostgreSQL store, which this command cannot read yet: pass --db PATH of a SQLite one."
        raise StoreError(msg)
    store = path.expanduser()
    if not store.is_file():
        msg = f"no fluxgate store at {str(store)!r}: pass --db PATH or set FLUXGATE_DB."
        raise StoreError(msg)
    try:
        conn = sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True)
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_TABLE,)).fetchone()
    except sqlite3.DatabaseError as exc:
        msg = f"{str(store)!r} is not a fluxgate store ({exc})."
        raise StoreError(msg) from None
    if found is None:
        conn.close()
        msg = f"{str(store)!r} is not a fluxgate store (it has no {_TABLE!r} table)."
        raise StoreError(msg)
    return conn


def _read_postgres(url: str, since_ms: int, until_ms: int) -> Tracked:
    """The same sums from ``fluxgate_events``, in one read-only session."""
    from .._store import EVENTS_TABLE, Connections, parse_target
    from .._store import StoreError as DatabaseError

    try:
        target = parse_target(url, owner="the store")
    except ConfigurationError as exc:
        raise StoreError(str(exc)) from None
    options = f"{target.options} -c default_transaction_read_only=on".strip()
    conns = Connections(
        attrs.evolve(target, options=options), max_size=1, connect_timeout_s=5.0, statement_timeout_s=300.0
    )

    def read(conn: Conn) -> Tracked | None:
        def run(sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
            # psycopg's placeholders; these queries hold no ``?`` or ``%`` inside a literal.
            return list(conn.execute(sql.replace("%", "%%").replace("?", "%s"), list(params)).fetchall())

        present = {
            str(row[0])
            for row in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
                (EVENTS_TABLE,),
            )
        }
        return _read(run, EVENTS_TABLE, present, since_ms, until_ms) if present else None

    try:
        tracked = conns.run(read, what="reading the store")
    except DatabaseError as exc:  # scrubbed: the URL masked, psycopg's text without the password
        raise StoreError(f"{exc}.") from None
    finally:
        conns.close()
    if tracked is None:
        msg = f"no fluxgate store in {target.masked}: it has no {EVENTS_TABLE!r} table."
        raise StoreError(msg)
    return tracked


def _read(run: _Run, table: str, present: set[str], since_ms: int, until_ms: int) -> Tracked:
    def col(name: str) -> str:
        return name if name in present or name not in _OPTIONAL else _OPTIONAL[name]

    platform = f"COALESCE({col('platform')}, 'anthropic')"
    # BLOCKED calls were stopped by a budget before they were sent: Anthropic never saw them.
    sent = f"COALESCE({col('status')}, '') != 'BLOCKED'"
    where = f"created_at >= ? AND created_at < ? AND {sent}"
    tier = f"COALESCE({col('usage_service_tier')}, 'standard')"
    unpriced_sql = "COALESCE(SUM(CASE WHEN cost_pusd IS NULL THEN 1 ELSE 0 END), 0)"  # no SUM(boolean) in PostgreSQL
    rows = run(
        f"""SELECT created_at / 86400000 AS day, model, {tier} AS tier, COUNT(*),
                   {unpriced_sql},
                   COALESCE(SUM(cost_pusd / {_SPLIT}), 0), COALESCE(SUM(cost_pusd % {_SPLIT}), 0),
                   COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
                   COALESCE(SUM({col("cache_read_input_tokens")}), 0),
                   COALESCE(SUM({col("cache_creation_input_tokens")}), 0),
                   COALESCE(SUM({col("web_search_requests")}), 0)
            FROM {table} WHERE {platform} = 'anthropic' AND {where}
            GROUP BY day, model, tier""",
        (since_ms, until_ms),
    )
    searches = _web_search_pusd(
        run, table=table, col=col, platform=platform, tier=tier, where=where, since_ms=since_ms, until_ms=until_ms
    )
    groups = []
    for day, model, tier_name, calls, unpriced, high, low, inp, out, cread, cwrite, web in rows:
        key = (int(day), model, str(tier_name))
        groups.append(
            TrackedGroup(
                day=day_of(int(day) * 86_400_000),
                model=None if model is None else str(model),
                service_tier=str(tier_name),
                calls=int(calls),
                unpriced_calls=int(unpriced),
                cost_pusd=int(high) * _SPLIT + int(low),
                tokens=Tokens(
                    input_tokens=int(inp),
                    output_tokens=int(out),
                    cache_read_input_tokens=int(cread),
                    cache_creation_input_tokens=int(cwrite),
                    web_search_requests=int(web),
                ),
                web_search_pusd=searches.get(key, 0),
            )
        )
    others = run(
        f"""SELECT {platform} AS p, COUNT(*), {unpriced_sql},
                   COALESCE(SUM(cost_pusd / {_SPLIT}), 0), COALESCE(SUM(cost_pusd % {_SPLIT}), 0)
            FROM {table} WHERE {platform} != 'anthropic' AND {where} GROUP BY p ORDER BY p""",
        (since_ms, until_ms),
    )
    [(first, last)] = run(f"SELECT MIN(created_at), MAX(created_at) FROM {table}", ())
    return Tracked(
        groups=tuple(groups),
        other_platforms=tuple(
            Uncompared(
                name=str(p), calls=int(n), unpriced_calls=int(u), cost_usd=pusd_to_usd(int(h) * _SPLIT + int(lo))
            )
            for p, n, u, h, lo in others
        ),
        first_event_ms=None if first is None else int(first),
        last_event_ms=None if last is None else int(last),
    )


def _web_search_pusd(
    run: _Run,
    *,
    table: str,
    col: Callable[[str], str],
    platform: str,
    tier: str,
    where: str,
    since_ms: int,
    until_ms: int,
) -> dict[tuple[int, str | None, str], int]:
    """The web-search part of each group's cost, from the events that made searches.

    The breakdown is JSON (text in SQLite, ``jsonb`` that psycopg reads as a
    dict in PostgreSQL), so it is summed here in Python rather than in SQL,
    where its decimal strings would turn into floats.
    """
    totals: dict[tuple[int, str | None, str], int] = defaultdict(int)
    query = f"""SELECT created_at / 86400000, model, {tier}, {col("cost_breakdown")} FROM {table}
                WHERE {platform} = 'anthropic' AND {where} AND {col("web_search_requests")} > 0
                AND cost_pusd IS NOT NULL"""
    for day, model, tier_name, breakdown in run(query, (since_ms, until_ms)):
        try:
            parts = breakdown if isinstance(breakdown, dict) else json.loads(str(breakdown or "{}"))
            part = parts.get("web_search")
            usd = Decimal(str(part)) if part is not None else None
        except (ValueError, AttributeError, InvalidOperation):
            usd = None
        if usd is not None and usd.is_finite():
            # The same conversion SQLiteSink applies to cost_usd, so the parts stay exact.
            totals[(int(day), None if model is None else str(model), str(tier_name))] += int(
                (usd * _PICO).to_integral_value()
            )
    return dict(totals)
