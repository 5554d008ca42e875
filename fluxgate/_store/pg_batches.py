"""Message Batches contexts in PostgreSQL: results read on any host are attributed once.

The same two tables as the SQLite ``BatchStore``, in Postgres: the creator's
context per batch, and one row per request whose ``counted_at`` marks a
result as counted. ``claim`` sets the mark with ``UPDATE ... WHERE
counted_at IS NULL RETURNING``, and claims results nobody announced with
``INSERT ... ON CONFLICT DO NOTHING RETURNING``: when two readers race for
one result, the second waits for the first to commit, then finds it
counted. Rows are locked in ``custom_id`` order, so overlapping readers
queue instead of deadlocking.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from .._models import ContextFrame
from .batches import Claim, context_from_dict, context_to_dict
from .pg_schema import ensure_schema
from .postgres import Connections, StoreUnavailableError, check_timeout, parse_target

if TYPE_CHECKING:
    from .postgres import Conn

__all__ = ["Claim", "PostgresBatchStore", "StoreUnavailableError"]

_BATCHES = "fluxgate_batches"
_REQUESTS = "fluxgate_batch_requests"
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"CREATE TABLE IF NOT EXISTS {_BATCHES} ("
        " batch_id text PRIMARY KEY, created_at bigint NOT NULL, api text NOT NULL,"
        " platform text NOT NULL, context jsonb NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {_REQUESTS} ("
        " batch_id text NOT NULL, custom_id text NOT NULL, model text, counted_at bigint,"
        " PRIMARY KEY (batch_id, custom_id))",
    ),
)


class PostgresBatchStore:
    """The batch-context tables in PostgreSQL, shared by every process on every host.

    Same methods as the SQLite ``BatchStore``.

    Args:
        url: ``postgresql://user:password@host:5432/dbname`` (masked in ``repr``).
        connect_timeout_s: Bound on opening a connection (at least 2 s).
        statement_timeout_s: Bound on each statement.
        max_connections: Connections this process keeps open.

    Raises:
        ConfigurationError: A bad URL or option, or psycopg is not installed.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 5.0,
        statement_timeout_s: float = 10.0,
        max_connections: int = 2,
    ) -> None:
        self._target = parse_target(url, owner="PostgresBatchStore")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            msg = f"PostgresBatchStore 'max_connections' must be an int >= 1 (got {max_connections!r})."
            raise ConfigurationError(msg)
        self._conns = Connections(
            self._target,
            max_size=max_connections,
            connect_timeout_s=check_timeout("PostgresBatchStore", "connect_timeout_s", connect_timeout_s),
            statement_timeout_s=check_timeout("PostgresBatchStore", "statement_timeout_s", statement_timeout_s),
        )
        self._ready = False
        self._ready_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PostgresBatchStore({self._target.masked!r})"

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if not self._ready:
                self._conns.run(lambda conn: ensure_schema(conn, "batches", MIGRATIONS), what="batch schema")
                self._ready = True

    def remember(
        self,
        batch_id: str,
        *,
        api: str,
        platform: str,
        created_at: int,
        context: ContextFrame,
        requests: Sequence[tuple[str, str | None]],
    ) -> None:
        """Keep the context of a new batch and its ``(custom_id, model)`` requests.

        Raises:
            StoreUnavailableError: The database cannot be reached.
            StoreError: It refused the write.
        """
        from psycopg.types.json import Jsonb

        self._ensure()
        custom_ids = [custom_id for custom_id, _ in requests]
        models = [model for _, model in requests]

        def work(conn: Conn) -> None:
            conn.execute(
                f"INSERT INTO {_BATCHES} (batch_id, created_at, api, platform, context)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (batch_id, created_at, api, platform, Jsonb(context_to_dict(context))),
            )
            conn.execute(
                f"INSERT INTO {_REQUESTS} (batch_id, custom_id, model)"
                " SELECT %s, c, m FROM unnest(%s::text[], %s::text[]) AS r(c, m) ON CONFLICT DO NOTHING",
                (batch_id, custom_ids, models),
            )

        self._conns.run(work, what="batch remember")

    def claim(self, batch_id: str, custom_ids: Sequence[str], now_ms: int | None = None) -> dict[str, Claim]:
        """Mark these results counted; return those nobody had counted before, with their context.

        One transaction, so two readers (threads, processes or hosts) never
        both get the same ``custom_id``. Results of a batch this store never
        saw are claimed too (with no context), so they also count once.

        Raises:
            StoreUnavailableError: The database cannot be reached.
            StoreError: It refused the write.
        """
        now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        wanted = list(dict.fromkeys(custom_ids))
        if not wanted:
            return {}
        ordered = sorted(wanted)
        self._ensure()

        def work(conn: Conn) -> tuple[tuple[Any, ...] | None, dict[str, str | None], set[str]]:
            batch = conn.execute(
                f"SELECT created_at, platform, context FROM {_BATCHES} WHERE batch_id = %s", (batch_id,)
            ).fetchone()
            conn.execute(
                f"SELECT 1 FROM {_REQUESTS} WHERE batch_id = %s AND custom_id = ANY(%s) ORDER BY custom_id FOR UPDATE",
                (batch_id, ordered),
            )
            marked = conn.execute(
                f"UPDATE {_REQUESTS} SET counted_at = %s"
                " WHERE batch_id = %s AND custom_id = ANY(%s) AND counted_at IS NULL RETURNING custom_id, model",
                (now_ms, batch_id, ordered),
            ).fetchall()
            fresh = conn.execute(
                f"INSERT INTO {_REQUESTS} (batch_id, custom_id, model, counted_at)"
                " SELECT %s, c, NULL, %s FROM unnest(%s::text[]) WITH ORDINALITY AS r(c, n) ORDER BY n"
                " ON CONFLICT DO NOTHING RETURNING custom_id",
                (batch_id, now_ms, ordered),
            ).fetchall()
            return batch, {str(cid): model for cid, model in marked}, {str(cid) for (cid,) in fresh}

        batch, marked, fresh = self._conns.run(work, what="batch claim")
        context = None if batch is None else context_from_dict(batch[2])
        created_at = None if batch is None else int(batch[0])
        platform = None if batch is None else str(batch[1])
        out: dict[str, Claim] = {}
        for cid in wanted:
            if cid in marked:
                out[cid] = Claim(context=context, created_at=created_at, model=marked[cid], platform=platform)
            elif cid in fresh:
                out[cid] = Claim(context=context, created_at=created_at, model=None, platform=platform)
        return out

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        self._conns.close()
