"""Budget spend in PostgreSQL: one budget shared by every process on every host.

The ledger is the SQLite store's, moved to Postgres: one row per
reservation and budget key, with the call's time and amount in integer
pico-dollars. A reservation takes a transaction-scoped advisory lock on each
of its budget keys, in one global order (so two reservations never deadlock),
then sums and inserts. Under READ COMMITTED every statement after the lock
sees all reservations committed before it, so N processes on N hosts under
one limit never take more than fits, and stop at the exact call.

A reservation that is never settled (its process crashed, its call was
cancelled without settling) stops counting ``reservation_ttl_s`` after it was
made, measured by the database's clock, which every host shares. When the
database cannot be reached, every method raises :class:`StoreUnavailableError`:
the budget guard turns that into a blocked call (fail closed).
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .._errors import ConfigurationError
from .pg_schema import ensure_schema
from .postgres import Connections, StoreUnavailableError, check_timeout, parse_target

if TYPE_CHECKING:
    from .postgres import Conn

__all__ = ["PostgresSpendStore", "StoreUnavailableError"]

_LEDGER = "fluxgate_budget_ledger"
_SEQUENCE = "fluxgate_budget_reservation_seq"
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"CREATE SEQUENCE IF NOT EXISTS {_SEQUENCE}",
        f"CREATE TABLE IF NOT EXISTS {_LEDGER} ("
        " id bigserial PRIMARY KEY, reservation bigint NOT NULL, key text NOT NULL,"
        " at_ms bigint NOT NULL, amount_pusd bigint NOT NULL,"
        # NULL once settled; until then the reservation counts only while this is in the future.
        " expires_at timestamptz)",
        f"CREATE INDEX IF NOT EXISTS ix_{_LEDGER}_key ON {_LEDGER} (key, at_ms)",
        f"CREATE INDEX IF NOT EXISTS ix_{_LEDGER}_reservation ON {_LEDGER} (reservation)",
    ),
)
# One sum per claim, in the claims' order; a reservation counts once settled,
# or while it has not expired.
_SUMS = (
    "SELECT (SELECT COALESCE(SUM(l.amount_pusd), 0) FROM " + _LEDGER + " AS l"
    " WHERE l.key = c.key AND l.at_ms >= c.start_ms AND l.at_ms < c.end_ms"
    " AND (l.expires_at IS NULL OR l.expires_at > now()))"
    " FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) WITH ORDINALITY AS c(key, start_ms, end_ms, n)"
    " ORDER BY c.n"
)
# A fresh reservation id and its rows in one statement.
_INSERT = (
    f"WITH r AS (SELECT nextval('{_SEQUENCE}') AS id)"
    f" INSERT INTO {_LEDGER} (reservation, key, at_ms, amount_pusd, expires_at)"
    " SELECT r.id, c.key, %s, %s, now() + make_interval(secs => %s)"
    " FROM r, unnest(%s::text[]) WITH ORDINALITY AS c(key, n) ORDER BY c.n"
    " RETURNING reservation"
)


def _next_id(conn: Conn) -> int:
    row = conn.execute(f"SELECT nextval('{_SEQUENCE}')").fetchone()
    assert row is not None
    return int(row[0])


def lock_id(key: str) -> int:
    """A signed 64-bit advisory-lock id for a budget key (collisions only serialise, never break)."""
    digest = hashlib.blake2b(f"fluxgate-budget:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresSpendStore:
    """Window-budget spend in PostgreSQL; pass it as ``init(budget_store=...)``.

    Implements the ``SpendStore`` protocol: ``reserve`` is atomic across
    processes and hosts.

    Args:
        url: ``postgresql://user:password@host:5432/dbname`` (the password is
            never shown; ``repr`` masks it).
        reservation_ttl_s: How long an unsettled reservation keeps counting.
            Make it longer than your slowest call (a long stream, say).
        connect_timeout_s: Bound on opening a connection (at least 2 s):
            how long a call waits before it is blocked when the database is down.
        statement_timeout_s: Bound on each statement, waiting for another
            process's reservation included.
        max_connections: Connections this process keeps open.

    Raises:
        ConfigurationError: A bad URL or option, or psycopg is not installed.

    >>> store = PostgresSpendStore("postgresql://app:secret@db:5432/fluxgate")
    >>> store
    PostgresSpendStore('postgresql://app:***@db:5432/fluxgate')
    """

    def __init__(
        self,
        url: str,
        *,
        reservation_ttl_s: float = 600.0,
        connect_timeout_s: float = 5.0,
        statement_timeout_s: float = 5.0,
        max_connections: int = 4,
    ) -> None:
        self._target = parse_target(url, owner="PostgresSpendStore")
        ttl = reservation_ttl_s
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not math.isfinite(ttl) or ttl < 0:
            msg = f"PostgresSpendStore 'reservation_ttl_s' must be a number of seconds >= 0 (got {ttl!r})."
            raise ConfigurationError(msg)
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            msg = f"PostgresSpendStore 'max_connections' must be an int >= 1 (got {max_connections!r})."
            raise ConfigurationError(msg)
        self.reservation_ttl_s = float(ttl)
        self._conns = Connections(
            self._target,
            max_size=max_connections,
            connect_timeout_s=check_timeout("PostgresSpendStore", "connect_timeout_s", connect_timeout_s),
            statement_timeout_s=check_timeout("PostgresSpendStore", "statement_timeout_s", statement_timeout_s),
        )
        self._ready = False
        self._ready_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresSpendStore({self._target.masked!r})"

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if not self._ready:
                self._conns.run(lambda conn: ensure_schema(conn, "budget", MIGRATIONS), what="budget schema")
                self._ready = True

    def reserve(self, claims: Iterable[tuple[str, int, int, int]], amount_pusd: int, now_ms: int) -> int | None:
        """Atomically add a reservation of ``amount_pusd`` to every claim, or to none.

        Each claim is ``(key, window_start_ms, window_end_ms, limit_pusd)``.
        Returns an id for ``settle``, or None when a limit would be crossed.

        Raises:
            StoreUnavailableError: The database cannot be reached (block the call).
        """
        claims = list(claims)
        self._ensure()
        if not claims:
            return self._conns.run(_next_id, what="budget reserve", transaction=False)
        locks = sorted({lock_id(key) for key, *_ in claims})
        keys = [key for key, *_ in claims]
        starts = [start for _, start, _, _ in claims]
        ends = [end for _, _, end, _ in claims]

        def work(conn: Conn) -> int | None:
            # unnest yields the ids in array order, so the locks are taken in
            # the same (sorted) order by everyone: no deadlock is possible.
            # The sums must be a later statement: under READ COMMITTED each
            # statement sees what was committed before it began.
            conn.execute("SELECT pg_advisory_xact_lock(id) FROM unnest(%s::bigint[]) AS id", (locks,))
            used = conn.execute(_SUMS, (keys, starts, ends)).fetchall()
            for (_, _, _, limit), (total,) in zip(claims, used, strict=True):
                if int(total) + amount_pusd > limit:
                    return None
            row = conn.execute(_INSERT, (now_ms, amount_pusd, self.reservation_ttl_s, keys)).fetchone()
            assert row is not None
            return int(row[0])

        return self._conns.run(work, what="budget reserve")

    def settle(self, reservation_id: int, actual_pusd: int) -> None:
        """Replace the reservation by the real cost, which then counts for good (even past the TTL)."""
        self._ensure()
        self._conns.run(
            lambda conn: conn.execute(
                f"UPDATE {_LEDGER} SET amount_pusd = %s, expires_at = NULL WHERE reservation = %s",
                (actual_pusd, reservation_id),
            ),
            what="budget settle",
            transaction=False,
        )

    def spent(self, key: str, window_start_ms: int, window_end_ms: int) -> int:
        """Spent plus still-counting reservations in the window, pico-dollars."""
        self._ensure()

        def work(conn: Conn) -> int:
            row = conn.execute(_SUMS, ([key], [window_start_ms], [window_end_ms])).fetchone()
            return 0 if row is None else int(row[0])

        return self._conns.run(work, what="budget spent", transaction=False)

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        self._conns.close()
