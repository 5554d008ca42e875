"""The PostgreSQL store as a report reads it: :class:`PostgresReader`.

``PostgresSink`` writes the events to ``fluxgate_events``: the columns of the
SQLite store's ``events`` (JSON as ``jsonb``, flags as ``boolean``) and the
cost as ``numeric`` beside the same integer pico-dollars in ``cost_pusd``. A
report sums ``cost_pusd`` as it does on SQLite, so both stores give the same
figures for the same events; PostgreSQL sums a bigint column as a numeric,
which cannot overflow, so one pass is always exact. Latency percentiles are
``percentile_disc``: the first value whose rank reaches p * n, which is the
nearest rank the SQLite pass computes.

Connections come from ``_store.postgres.Connections`` as read-only sessions
(``default_transaction_read_only``): a report cannot write, and an error names
the URL with its password masked and nothing from psycopg unscrubbed.
psycopg is imported only when a reader is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final, TypeVar

import attrs

from .._errors import ConfigurationError
from .._models import CostEvent
from .._store import EVENTS_TABLE, Connections, StoreError, parse_target
from .store import COST_SUMS, Dialect, NoStoreError, Reader, ReportError

if TYPE_CHECKING:
    from .._store.postgres import Conn

__all__ = ["PostgresReader"]

_T = TypeVar("_T")

#: Group-by name -> the expression it groups on; ``GROUPS`` in ``summary`` has
#: SQLite's. A day is the UTC day number, as on SQLite: bigint division truncates.
_GROUPS: Final[Mapping[str, str]] = {
    "feature": "feature",
    "user": "user_id",
    "step": "step",
    "model": "model",
    "session": "session_id",
    "conversation": "conversation_id",
    "day": "created_at / 86400000",
    "status": "status",
}
#: ``COST_SUMS`` here: SUM of a bigint is a numeric, exact at any size.
_SUMS: Final = "0, SUM(cost_pusd), COUNT(*) FILTER (WHERE cost_pusd IS NULL)"
_WHAT: Final = "reading the store"


def _pg(sql: str) -> str:
    """``sql`` with psycopg's placeholders; the report's queries hold no ``?`` or ``%`` inside a literal."""
    return sql.replace("%", "%%").replace("?", "%s")


def _columns(conn: Conn) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (EVENTS_TABLE,),
    ).fetchall()


class PostgresReader(Reader):
    """A PostgreSQL store, through a few read-only connections that threads share.

    Args:
        url: ``postgresql://user:password@host:5432/dbname``.
        connections: How many queries may run at once: ``overview`` runs its
            six parts side by side, and a seventh would wait for a connection.
        connect_timeout_s: Bound on opening a connection.
        statement_timeout_s: Bound on each query, set on the server.

    Raises:
        NoStoreError: The database has no ``fluxgate_events`` table yet.
        ReportError: The URL is not valid, psycopg is not installed, or the
            database cannot be reached or read.
    """

    def __init__(
        self,
        url: str,
        *,
        connections: int = 6,
        connect_timeout_s: float = 5.0,
        statement_timeout_s: float = 300.0,
    ) -> None:
        try:
            target = parse_target(url, owner="the store")
        except ConfigurationError as exc:
            raise ReportError(str(exc)) from None
        options = f"{target.options} -c default_transaction_read_only=on".strip()
        self._conns = Connections(
            attrs.evolve(target, options=options),
            max_size=connections,
            connect_timeout_s=connect_timeout_s,
            statement_timeout_s=statement_timeout_s,
        )
        self.name = target.masked
        try:
            columns = {str(row[0]) for row in self._run(_columns)}
        except ReportError:
            self._conns.close()
            raise
        if not columns:
            self._conns.close()
            msg = (
                f"no fluxgate store in {self.name}: it has no {EVENTS_TABLE!r} table yet "
                "(it is created when the first call is recorded)."
            )
            raise NoStoreError(msg)
        # A table made by an older fluxgate, or by hand, may lack the flag until a sink adds it.
        aborted = "COALESCE(aborted, FALSE)" if "aborted" in columns else "FALSE"
        self.dialect = Dialect(name="postgresql", table=EVENTS_TABLE, groups=_GROUPS, aborted=aborted)

    def __repr__(self) -> str:
        return f"PostgresReader({self.name!r})"

    def _run(self, work: Callable[[Conn], _T]) -> _T:
        try:
            return self._conns.run(work, what=_WHAT, transaction=False)
        except StoreError as exc:  # its message is scrubbed and names the URL masked
            raise ReportError(f"{exc}.") from None

    def rows(self, sql: str, params: Sequence[object]) -> list[tuple[object, ...]]:
        query, values = _pg(sql.replace(COST_SUMS, _SUMS)), list(params)
        return self._run(lambda conn: list(conn.execute(query, values).fetchall()))

    def records(self, sql: str, params: Sequence[object]) -> list[dict[str, object]]:
        from psycopg.rows import dict_row

        query, values = _pg(sql), list(params)

        def work(conn: Conn) -> list[dict[str, object]]:
            with conn.cursor(row_factory=dict_row) as cursor:
                return list(cursor.execute(query, values).fetchall())

        return self._run(work)

    def event(self, record: Mapping[str, object]) -> CostEvent:
        from .._store import pg_event_from_row as event_from_row

        return event_from_row(record)

    def percentiles(
        self, exprs: Sequence[str], where: str, params: Sequence[object], counts: Mapping[tuple[object, ...], int]
    ) -> tuple[dict[tuple[object, ...], list[float]], list[float]]:
        """Each group's and the overall percentiles in one query: ``GROUPING SETS`` adds the total as a row.

        ``percentile_disc(p)`` takes the value at rank ceil(p * n), the nearest
        rank. The double 0.95 is a shade under 0.95, so p * n never rounds up
        past a whole rank.
        """
        width = len(exprs)
        selected = ", ".join(exprs)
        sql = (
            f"SELECT {selected}, GROUPING({selected}), "
            "percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms), "
            "percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) "
            f"FROM {EVENTS_TABLE} WHERE ({where}) AND latency_ms IS NOT NULL "
            f"GROUP BY GROUPING SETS (({selected}), ())"
        )
        found: dict[tuple[object, ...], list[float]] = {}
        overall: list[float] = []
        for row in self.rows(sql, params):
            key, total, p50, p95 = tuple(row[:width]), row[width], row[width + 1], row[width + 2]
            if not isinstance(p50, float) or not isinstance(p95, float):
                continue
            if total:  # the grand total's row: every group column is rolled up
                overall = [p50, p95]
            elif counts.get(key):
                found[key] = [p50, p95]
        return found, overall

    @contextmanager
    def session(self) -> Iterator[Reader]:
        yield self  # the connections are shared safely between threads

    def close(self) -> None:
        self._conns.close()
