"""PostgreSQL plumbing shared by the sink and the stores: URLs and connections (the schema: ``pg_schema``).

One ``postgresql://`` URL names the database. Its password never leaves this
module in a readable form: reprs, log lines and error messages show
:func:`mask_url`'s ``***``, and the text of every psycopg error is scrubbed
before it is put in one of ours (``StoreError``, raised with no chained
cause, so a traceback cannot show the original either).

psycopg 3 is an optional dependency (``fluxgate[postgres]``); it is imported
when a Postgres sink or store is built, never by ``import fluxgate``.
"""

from __future__ import annotations

import math
import os
import re
import select
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

import attrs

from .._errors import ConfigurationError, FluxgateError
from .._handoff import Handoff

if TYPE_CHECKING:
    from typing import TypeAlias

    import psycopg
    from psycopg.rows import TupleRow

    Conn: TypeAlias = psycopg.Connection[TupleRow]

__all__ = [
    "Connections",
    "StoreError",
    "StoreUnavailableError",
    "Target",
    "check_timeout",
    "is_postgres_url",
    "mask_url",
    "parse_target",
]

T = TypeVar("T")

MASK = "***"
_SCHEMES = ("postgresql://", "postgres://")
# password= and sslpassword= (the client key's passphrase) in a URL's query.
_SECRET_PARAM = re.compile(r"(?i)([?&][a-z_]*password=)([^&#]*)")
# pg_advisory_xact_lock key that serialises schema changes across processes.


class StoreError(FluxgateError):
    """A PostgreSQL operation failed and retrying will not help (permissions, bad data).

    The message names the masked URL and never the password.

    Attributes:
        sqlstate: PostgreSQL's error code, when the server sent one.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class StoreUnavailableError(StoreError):
    """PostgreSQL could not be reached in time, or asked for a retry (restart, timeout, deadlock)."""


def is_postgres_url(value: object) -> bool:
    """Whether ``value`` is a ``postgresql://`` (or ``postgres://``) URL: what selects the Postgres store."""
    return isinstance(value, str) and value.strip().lower().startswith(_SCHEMES)


def _split(url: str) -> tuple[str, str, str, str] | None:
    """``(scheme, userinfo, hosts and path, query)``.

    The user info ends at the *last* ``@``, so a raw ``@`` in a password stays in it.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    head, query = rest[:cut], rest[cut:]
    userinfo, at, hosts = head.rpartition("@")
    return scheme, userinfo if at else "", hosts if at else head, query


def mask_url(url: str) -> str:
    """``url`` with the password (after ``user:``, or a ``password=`` or ``sslpassword=`` parameter) as ``***``.

    >>> mask_url("postgresql://app:hunter2@db:5432/fluxgate")
    'postgresql://app:***@db:5432/fluxgate'
    """
    parts = _split(url)
    if parts is None:
        return MASK  # not a URL (perhaps "host=... password=..."): show none of it
    scheme, userinfo, hosts, query = parts
    user, colon, _ = userinfo.partition(":")
    auth = f"{user}:{MASK}@" if colon else f"{user}@" if userinfo else ""
    query = _SECRET_PARAM.sub(rf"\g<1>{MASK}", query)
    return f"{scheme}://{auth}{hosts}{query}"


def _secrets_in(url: str) -> set[str]:
    parts = _split(url)
    found: set[str] = set()
    if parts is not None:
        _, userinfo, _, query = parts
        found.add(userinfo.partition(":")[2])
        found.update(value for _, value in _SECRET_PARAM.findall(query))
    return {variant for raw in found if raw for variant in (raw, unquote(raw))}


@attrs.frozen
class Target:
    """One database: the URL to connect with (never shown) and how to show it."""

    url: str = attrs.field(repr=False)
    masked: str
    #: libpq ``options`` the URL set (a search_path, say); ours are appended.
    options: str = attrs.field(repr=False, default="")
    has_application_name: bool = attrs.field(repr=False, default=False)
    secrets: frozenset[str] = attrs.field(repr=False, factory=frozenset)

    def scrub(self, text: str) -> str:
        """``text`` with every spelling of the password replaced by ``***``."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


def _require_psycopg(owner: str) -> None:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        msg = f"{owner} needs psycopg 3: install it with `pip install 'fluxgate[postgres]'`."
        raise ConfigurationError(msg) from None


def parse_target(url: object, *, owner: str) -> Target:
    """Check ``url`` and keep what connecting needs.

    Raises:
        ConfigurationError: ``url`` is not a valid ``postgresql://`` URL, or
            psycopg is not installed. The message shows the URL masked.
    """
    if not is_postgres_url(url):
        shown = mask_url(url) if isinstance(url, str) else f"{url!r} that is a {type(url).__name__}"
        msg = f"{owner} 'url' must be a postgresql://user:password@host:port/dbname URL (got {shown!r})."
        raise ConfigurationError(msg)
    assert isinstance(url, str)
    _require_psycopg(owner)
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    url = url.strip()
    secrets = _secrets_in(url)
    problem: str | None = None
    params: dict[str, Any] = {}
    try:
        params = conninfo_to_dict(url)
    except ProgrammingError as exc:
        problem = str(exc)
    if problem is not None:
        target = Target(url, mask_url(url), secrets=frozenset(secrets))
        msg = f"{owner} 'url' is not a valid PostgreSQL URL ({target.scrub(problem).strip()}): {target.masked!r}."
        raise ConfigurationError(msg)
    password = params.get("password")
    if isinstance(password, str) and password:
        secrets.add(password)
    if not all(port.strip().isdigit() for port in str(params.get("port") or "5432").split(",")):
        msg = f"{owner} 'url' must have a numeric port (got {mask_url(url)!r})."
        raise ConfigurationError(msg)
    return Target(
        url,
        mask_url(url),
        options=str(params.get("options") or ""),
        has_application_name="application_name" in params,
        secrets=frozenset(secrets),
    )


def check_timeout(owner: str, name: str, value: object) -> float:
    """A positive, finite number of seconds, else a ConfigurationError naming the option."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        msg = f"{owner} '{name}' must be a number of seconds > 0 (got {value!r})."
        raise ConfigurationError(msg)
    return float(value)


class Connections:
    """A few open connections to one database, for one process.

    A connection is opened on the caller's thread when none is idle, so an
    outage surfaces within ``connect_timeout_s`` as :class:`StoreUnavailableError`;
    there are no background threads to stop, and a forked child starts with
    no connections (it must not use its parent's sockets). An idle
    connection whose socket turned readable (the server closed it, say on a
    restart) is discarded before use, at no round trip.

    Args:
        target: The database.
        max_size: Connections open at once; more callers wait up to
            ``connect_timeout_s`` for one.
        connect_timeout_s: Bound on opening a connection (libpq's minimum is 2 s).
        statement_timeout_s: Bound on each statement, lock waits included.
        handoff: The writer these connections work for, told of each wait for
            the server (see ``fluxgate._handoff``); None for other users.
    """

    def __init__(
        self,
        target: Target,
        *,
        max_size: int,
        connect_timeout_s: float,
        statement_timeout_s: float,
        handoff: Handoff | None = None,
    ) -> None:
        self.target = target
        self._handoff = handoff
        self._max_size = max_size
        self._connect_timeout_s = connect_timeout_s
        ms = max(1, round(statement_timeout_s * 1000))
        # A client that stalls inside a transaction must not hold its locks (a
        # budget's, say) for longer than a few statements would take.
        ours = f"-c statement_timeout={ms} -c idle_in_transaction_session_timeout={max(ms * 3, 10_000)}"
        self._options = f"{target.options} {ours}".strip()
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._idle: list[Conn] = []
        self._slots = threading.BoundedSemaphore(self._max_size)

    def run(self, work: Callable[[Conn], T], *, what: str, transaction: bool = True) -> T:
        """``work(conn)`` in one transaction, committed if it returns.

        With ``transaction=False`` it runs in autocommit mode, which saves the
        two round trips of BEGIN and COMMIT around a single statement. A
        deadlock or serialisation failure (rolled back whole) is retried twice.

        Raises:
            StoreUnavailableError: Unreachable, timed out, shutting down, or busy.
            StoreError: Any other database error.
        """
        import psycopg

        error: StoreError | None = None
        for attempt in range(3):
            try:
                return self._run_once(work, transaction)
            except psycopg.errors.TransactionRollback as exc:
                if attempt < 2:
                    continue
                error = self._error(exc, what)
            except psycopg.Error as exc:
                error = self._error(exc, what)
            break
        # Raised outside the except block, so the scrubbed error has no
        # __context__: psycopg's own exception never reaches a traceback.
        assert error is not None
        raise error

    def _run_once(self, work: Callable[[Conn], T], transaction: bool) -> T:
        conn = self._take()
        try:
            if not transaction:
                return work(conn)
            with conn.transaction():
                return work(conn)
        finally:
            self._give(conn)

    def _error(self, exc: BaseException, what: str) -> StoreError:
        import psycopg

        transient = isinstance(exc, (psycopg.OperationalError, psycopg.InternalError))
        sqlstate = getattr(exc, "sqlstate", None)
        code = f" [{sqlstate}]" if sqlstate else ""
        text = " ".join(self.target.scrub(str(exc)).split())
        message = f"{what} failed on {self.target.masked}: {type(exc).__name__}{code}: {text}"
        return (StoreUnavailableError if transient else StoreError)(message, sqlstate=sqlstate)

    def _take(self) -> Conn:
        with self._lock:
            if self._pid != os.getpid():
                self._reset()  # the parent's connections stay the parent's
            slots = self._slots
        if not slots.acquire(timeout=self._connect_timeout_s):
            wait = self._connect_timeout_s
            msg = f"all {self._max_size} connections to {self.target.masked} stayed busy for {wait} s"
            raise StoreUnavailableError(msg)
        try:
            while True:
                with self._lock:
                    conn = self._idle.pop() if self._idle else None
                if conn is None:
                    return self._connect()
                if _alive(conn):
                    return conn
                _close_quietly(conn)
        except BaseException:
            slots.release()
            raise

    def _connect(self) -> Conn:
        import psycopg

        extra: dict[str, Any] = {
            "connect_timeout": max(2, math.ceil(self._connect_timeout_s)),
            "options": self._options,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
        if not self.target.has_application_name:
            extra["application_name"] = "fluxgate"
        if self._handoff is None:
            return psycopg.connect(self.target.url, autocommit=True, **extra)
        from .pg_stepping import SteppingConnection

        conn = SteppingConnection.connect(self.target.url, autocommit=True, **extra)
        conn.handoff = self._handoff
        return conn

    def _give(self, conn: Conn) -> None:
        from psycopg.pq import TransactionStatus

        with self._lock:
            ours = self._pid == os.getpid()
            keep = (
                ours
                and not conn.closed
                and not conn.broken
                and conn.info.transaction_status == TransactionStatus.IDLE
                and len(self._idle) < self._max_size
            )
            if keep:
                self._idle.append(conn)
            slots = self._slots
        if not keep and ours:
            _close_quietly(conn)
        if ours:
            slots.release()

    def close(self) -> None:
        """Close the idle connections (a later ``run`` opens new ones)."""
        with self._lock:
            idle, self._idle = self._idle, []
            ours = self._pid == os.getpid()
        for conn in idle if ours else ():
            _close_quietly(conn)


def _alive(conn: Conn) -> bool:
    if conn.closed or conn.broken:
        return False
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError):
        return False
    # An idle connection has nothing to read unless the server said goodbye.
    return not readable


def _close_quietly(conn: Conn) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - it was broken already; there is nothing else to do
        return
