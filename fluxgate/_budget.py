"""Spend guards: budgets checked before a call is sent.

Before each tracked call the guard reserves the call's *worst-case* cost
against every budget that applies; a call whose reservation would cross a
limit is not sent (``BudgetExceeded``, and a BLOCKED event). When the call
ends, its reservation is settled at the real cost, which may be more (a
stream that ran past its estimate) or less.

Window budgets keep their state in a :class:`SpendStore`. The default one is
the local SQLite file, shared by every process on the host: a reservation is
one ``BEGIN IMMEDIATE`` transaction, so concurrent processes never both take
the last dollars. Scope budgets (``track_context(budget_usd=...)``) live with
the scope, in the process.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from ._errors import BudgetExceeded, ConfigurationError
from ._guard import logger
from ._models import ContextFrame

__all__ = [
    "Budget",
    "BudgetGuard",
    "MemorySpendStore",
    "Reservation",
    "SQLiteSpendStore",
    "ScopeBudget",
    "SpendStore",
    "estimate_input_tokens",
    "worst_case_usd",
]

_PICO = Decimal(10) ** 12
_GROUPINGS = ("global", "feature", "user", "session", "step")
_ENDLESS = "lifetime"


def _pusd(usd: Decimal) -> int:
    """USD as integer pico-dollars, rounded up (a budget never under-counts)."""
    value = usd * _PICO
    whole = int(value)
    return whole + 1 if value > whole else whole


def _parse_window(value: str) -> tuple[str, int]:
    """("day"|"month"|"hours"|"lifetime", hours) from "day", "month", "24h", "hour", "lifetime"."""
    text = value.strip().lower()
    if text in ("day", "daily"):
        return "day", 0
    if text in ("month", "monthly"):
        return "month", 0
    if text in ("hour", "hourly"):
        return "hours", 1
    if text in (_ENDLESS, "forever", "total"):
        return _ENDLESS, 0
    if text.endswith("h") and text[:-1].isdigit() and int(text[:-1]) > 0:
        return "hours", int(text[:-1])
    msg = f"Budget window must be 'day', 'month', 'hour', 'Nh' (rolling hours) or 'lifetime' (got {value!r})."
    raise ConfigurationError(msg)


def _zone(tz: str) -> dt.tzinfo:
    if tz.upper() == "UTC":
        return dt.timezone.utc
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        msg = f"Budget 'tz' must be an IANA time zone such as 'UTC' or 'Europe/Paris' (got {tz!r})."
        raise ConfigurationError(msg) from None


@attrs.frozen(init=False)
class Budget:
    """A spending limit over a window, for one grouping of calls.

    Args:
        limit_usd: The most that may be spent in one window, in USD.
        per: The window (``"day"``, ``"month"``, ``"hour"``, ``"6h"`` rolling
            hours, ``"lifetime"``) or the grouping (``"global"``, ``"feature"``,
            ``"user"``, ``"session"``, ``"step"``); ``scope`` takes the other.
            ``Budget(5, per="user", scope="day")`` and
            ``Budget(5, per="day", scope="user")`` are the same budget.
        scope: See ``per``. Defaults: window "day", grouping "global".
        tz: The time zone of calendar days and months (default UTC).
        where: Only calls whose context matches, e.g. ``{"feature": "agent"}``.
        warn_at: A fraction of the limit (0.8) at which ``on_warn`` is called
            and a warning logged, once per window and group.
        on_warn: ``on_warn(budget, key, spent_usd)``.
        on_unpriced: ``"block"`` (default: a call whose cost cannot be bounded
            is refused) or ``"allow"``.
        name: Identifies the budget's state in the store (default from its
            settings); two processes with the same budget share its spend.
        clock: Seconds since the epoch (tests inject one).

    Raises:
        ConfigurationError: An argument is invalid.

    >>> Budget(50, per="month", scope="user").window
    'month'
    """

    limit_usd: Decimal
    window: str
    hours: int
    grouping: str
    tz: str
    where: Mapping[str, str]
    warn_at: float | None
    on_warn: Callable[[Budget, str, Decimal], None] | None = attrs.field(eq=False)
    on_unpriced: str
    name: str
    clock: Callable[[], float] = attrs.field(eq=False, repr=False)
    _zone: dt.tzinfo = attrs.field(eq=False, repr=False)

    def __init__(
        self,
        limit_usd: float | int | str | Decimal,
        *,
        per: str | None = None,
        scope: str | None = None,
        tz: str = "UTC",
        where: Mapping[str, str] | None = None,
        warn_at: float | None = None,
        on_warn: Callable[[Budget, str, Decimal], None] | None = None,
        on_unpriced: str = "block",
        name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(limit_usd, bool) or not isinstance(limit_usd, (int, float, str, Decimal)):
            msg = f"Budget 'limit_usd' must be a number (got {limit_usd!r})."
            raise ConfigurationError(msg)
        try:
            limit = Decimal(str(limit_usd))
        except ArithmeticError:
            limit = Decimal("NaN")
        if not limit.is_finite() or limit < 0:
            msg = f"Budget 'limit_usd' must be a finite number >= 0 (got {limit_usd!r})."
            raise ConfigurationError(msg)
        window, grouping = "day", "global"
        window_set = grouping_set = False
        for label, value in (("per", per), ("scope", scope)):
            if value is None:
                continue
            if not isinstance(value, str):
                msg = f"Budget '{label}' must be a str (got {value!r})."
                raise ConfigurationError(msg)
            if value in _GROUPINGS:
                if grouping_set:
                    msg = f"Budget got two groupings ({grouping!r} and {value!r}); give one grouping and one window."
                    raise ConfigurationError(msg)
                grouping, grouping_set = value, True
            else:
                _parse_window(value)
                if window_set:
                    msg = f"Budget got two windows ({window!r} and {value!r}); give one grouping and one window."
                    raise ConfigurationError(msg)
                window, window_set = value, True
        kind, hours = _parse_window(window)
        zone = _zone(tz)
        clauses = dict(where or {})
        for key, value in clauses.items():
            if key not in _GROUPINGS[1:] or not isinstance(value, str):
                allowed = list(_GROUPINGS[1:])
                msg = f"Budget 'where' keys must be among {allowed} with str values (got {key!r}: {value!r})."
                raise ConfigurationError(msg)
        if warn_at is not None and (isinstance(warn_at, bool) or not 0 < warn_at < 1):
            msg = f"Budget 'warn_at' must be a fraction between 0 and 1 (got {warn_at!r})."
            raise ConfigurationError(msg)
        if on_unpriced not in ("block", "allow"):
            msg = f"Budget 'on_unpriced' must be 'block' or 'allow' (got {on_unpriced!r})."
            raise ConfigurationError(msg)
        if name is None:
            parts = [grouping, window if kind != "hours" else f"{hours}h", tz, str(limit)]
            parts += [f"{k}={v}" for k, v in sorted(clauses.items())]
            name = "|".join(parts)
        self.__attrs_init__(
            limit_usd=limit,
            window=kind,
            hours=hours,
            grouping=grouping,
            tz=tz,
            where=clauses,
            warn_at=warn_at,
            on_warn=on_warn,
            on_unpriced=on_unpriced,
            name=name,
            clock=clock,
            zone=zone,
        )

    def group_key(self, ctx: ContextFrame) -> str | None:
        """The group a call belongs to, or None if this budget does not apply."""
        for field, wanted in self.where.items():
            if _field(ctx, field) != wanted:
                return None
        if self.grouping == "global":
            return f"{self.name}#*"
        value = _field(ctx, self.grouping)
        return None if value is None else f"{self.name}#{value}"

    def window_bounds(self, now_s: float) -> tuple[int, int]:
        """(start, end) of the window containing ``now_s``, Unix ms; rolling: (now - N h, open)."""
        now_ms = int(now_s * 1000)
        if self.window == "hours":
            return now_ms - self.hours * 3_600_000, 2**62
        if self.window == _ENDLESS:
            return 0, 2**62
        local = dt.datetime.fromtimestamp(now_s, self._zone)
        if self.window == "day":
            start = local.replace(hour=0, minute=0, second=0, microsecond=0)
            end = start + dt.timedelta(days=1)
        else:
            start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            end = (start + dt.timedelta(days=32)).replace(day=1)
        # Wall-clock arithmetic in the zone: a day across a DST change is 23 or 25 hours.
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _field(ctx: ContextFrame, name: str) -> str | None:
    if name == "user":
        return ctx.user_id
    if name == "session":
        return ctx.session_id
    value = getattr(ctx, name, None)
    return value if isinstance(value, str) else None


# -- spend stores -------------------------------------------------------------


@runtime_checkable
class SpendStore(Protocol):
    """Where window budgets keep their spend; share one to share budgets.

    Implement it on Redis or Postgres to share budgets across hosts: the only
    requirement is that ``reserve`` is atomic (check and add in one step).
    """

    def reserve(self, claims: Iterable[tuple[str, int, int, int]], amount_pusd: int, now_ms: int) -> int | None:
        """Atomically add a reservation of ``amount_pusd`` to every claim, or to none.

        Each claim is ``(key, window_start_ms, window_end_ms, limit_pusd)``.
        Returns an id for ``settle``, or None when a limit would be crossed.
        """

    def settle(self, reservation_id: int, actual_pusd: int) -> None:
        """Replace the reservation by the real cost."""

    def spent(self, key: str, window_start_ms: int, window_end_ms: int) -> int:
        """Spent plus reserved in the window, pico-dollars."""


class MemorySpendStore:
    """A process-local store (tests, or a single-process service)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ledger: dict[int, tuple[tuple[str, ...], int, int]] = {}
        self._next = 1

    def reserve(self, claims: Iterable[tuple[str, int, int, int]], amount_pusd: int, now_ms: int) -> int | None:
        claims = list(claims)
        with self._lock:
            for key, start, end, limit in claims:
                if self._sum(key, start, end) + amount_pusd > limit:
                    return None
            rid = self._next
            self._next += 1
            self._ledger[rid] = (tuple(k for k, *_ in claims), now_ms, amount_pusd)
            return rid

    def settle(self, reservation_id: int, actual_pusd: int) -> None:
        with self._lock:
            keys, at, _ = self._ledger[reservation_id]
            self._ledger[reservation_id] = (keys, at, actual_pusd)

    def spent(self, key: str, window_start_ms: int, window_end_ms: int) -> int:
        with self._lock:
            return self._sum(key, window_start_ms, window_end_ms)

    def _sum(self, key: str, start: int, end: int) -> int:
        return sum(a for keys, at, a in self._ledger.values() if key in keys and start <= at < end)


class SQLiteSpendStore:
    """Budget spend in a SQLite file, shared by every process on the host.

    One row per reservation and budget key; a reservation checks and inserts
    in a single ``BEGIN IMMEDIATE`` transaction, so no update is lost.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"SQLiteSpendStore({str(self.path)!r})"

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and self._pid == os.getpid():
            return conn
        self._pid = os.getpid()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS budget_ledger ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT, reservation INTEGER NOT NULL,"
            " key TEXT NOT NULL, at_ms INTEGER NOT NULL, amount_pusd INTEGER NOT NULL)"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS ix_budget_ledger_key ON budget_ledger (key, at_ms)")
        conn.execute("CREATE INDEX IF NOT EXISTS ix_budget_ledger_res ON budget_ledger (reservation)")
        self._local.conn = conn
        return conn

    def reserve(self, claims: Iterable[tuple[str, int, int, int]], amount_pusd: int, now_ms: int) -> int | None:
        claims = list(claims)
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for key, start, end, limit in claims:
                if self._sum(conn, key, start, end) + amount_pusd > limit:
                    conn.execute("ROLLBACK")
                    return None
            row = conn.execute("SELECT COALESCE(MAX(reservation), 0) + 1 FROM budget_ledger").fetchone()
            rid = int(row[0])
            conn.executemany(
                "INSERT INTO budget_ledger (reservation, key, at_ms, amount_pusd) VALUES (?, ?, ?, ?)",
                [(rid, key, now_ms, amount_pusd) for key, *_ in claims],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return rid

    def settle(self, reservation_id: int, actual_pusd: int) -> None:
        conn = self._conn()
        conn.execute("UPDATE budget_ledger SET amount_pusd = ? WHERE reservation = ?", (actual_pusd, reservation_id))

    def spent(self, key: str, window_start_ms: int, window_end_ms: int) -> int:
        return self._sum(self._conn(), key, window_start_ms, window_end_ms)

    @staticmethod
    def _sum(conn: sqlite3.Connection, key: str, start: int, end: int) -> int:
        row = conn.execute(
            "SELECT COALESCE(SUM(amount_pusd), 0) FROM budget_ledger WHERE key = ? AND at_ms >= ? AND at_ms < ?",
            (key, start, end),
        ).fetchone()
        return int(row[0])


# -- scope budgets ----------------------------------------------------------


class ScopeBudget:
    """The running spend of one ``track_context(budget_usd=...)`` entry."""

    __slots__ = ("_lock", "limit_pusd", "limit_usd", "spent_pusd")

    def __init__(self, limit_usd: Decimal) -> None:
        self.limit_usd = limit_usd
        self.limit_pusd = _pusd(limit_usd)
        self.spent_pusd = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ScopeBudget(limit_usd={self.limit_usd}, spent_usd={Decimal(self.spent_pusd) / _PICO})"

    @property
    def spent_usd(self) -> Decimal:
        """Spent, or reserved by calls still running."""
        return Decimal(self.spent_pusd) / _PICO

    def try_add(self, amount_pusd: int) -> bool:
        with self._lock:
            if self.spent_pusd + amount_pusd > self.limit_pusd:
                return False
            self.spent_pusd += amount_pusd
            return True

    def adjust(self, delta_pusd: int) -> None:
        with self._lock:
            self.spent_pusd += delta_pusd


# -- the guard ----------------------------------------------------------------


@attrs.define
class Reservation:
    """What one call holds against its budgets until it ends."""

    amount_pusd: int
    store_id: int | None
    store: SpendStore | None
    scopes: tuple[ScopeBudget, ...]
    settled: bool = False

    def settle(self, actual: Decimal | None) -> None:
        """Replace the worst case by the real cost (once)."""
        if self.settled:
            return
        self.settled = True
        actual_pusd = self.amount_pusd if actual is None else _pusd(actual)
        if self.store is not None and self.store_id is not None:
            self.store.settle(self.store_id, actual_pusd)
        for scope in self.scopes:
            scope.adjust(actual_pusd - self.amount_pusd)


def _utf8_len(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    return len(json.dumps(value, default=str, ensure_ascii=False).encode("utf-8"))


#: Tokens counted for each image or document block (images cost at most
#: ~1,600 tokens; a PDF page about as much): a deliberate over-count.
_MEDIA_BLOCK_TOKENS = 1_600
_MEDIA_PAGE_BYTES = 100_000


def _text_tokens(value: Any) -> int:
    return -(-_utf8_len(value) * 2 // 3) + 1


def estimate_input_tokens(request: Mapping[str, Any]) -> int:
    """A conservative count of a request's input tokens, without the network.

    Text is counted as one token per 1.5 UTF-8 bytes (English prose runs about
    4 bytes per token, code about 3, a CJK character is 3 bytes and about one
    token, hex and base64 strings nearer 1.5), plus 10 tokens per message and
    per request; images count 1,600 tokens each; documents 1,600 per 100 kB of
    payload; tool definitions add 1,000 tokens for the tool-use system prompt
    extended thinking 100 and structured outputs 300. It over-counts ordinary prose about 2.5 times;
    pass an exact count (the free ``count_tokens`` endpoint) where that matters.
    """
    total = 0
    media = 0

    def walk(node: Any) -> None:
        nonlocal total, media
        if isinstance(node, Mapping):
            kind = node.get("type")
            if kind in ("image", "document"):
                source = node.get("source")
                size = _utf8_len(source.get("data")) if isinstance(source, Mapping) else 0
                media += _MEDIA_BLOCK_TOKENS * max(1, -(-size // _MEDIA_PAGE_BYTES))
                return
            for key, value in node.items():
                if key in ("text", "content", "input", "name", "description", "thinking") and isinstance(value, str):
                    total += _text_tokens(value)
                else:
                    walk(value)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item)
        elif node is not None:
            total += _text_tokens(node)

    messages = request.get("messages")
    walk(messages)
    walk(request.get("system"))
    walk(request.get("tools"))
    count = len(messages) if isinstance(messages, (list, tuple)) else 1
    overhead = 10 * count + 10
    if request.get("tools"):
        overhead += 1_000
    if request.get("output_config") or request.get("output_format"):
        overhead += 300  # structured outputs add a schema system prompt
    thinking = request.get("thinking")
    if isinstance(thinking, Mapping) and thinking.get("type") not in (None, "disabled"):
        overhead += 100
    return total + media + overhead


def _has_cache_control(node: Any) -> bool:
    if isinstance(node, Mapping):
        return isinstance(node.get("cache_control"), Mapping) or any(_has_cache_control(v) for v in node.values())
    if isinstance(node, (list, tuple)):
        return any(_has_cache_control(v) for v in node)
    return False


def worst_case_usd(
    prices: Any, model: str | None, request: Mapping[str, Any], input_tokens: int | None = None
) -> Decimal | None:
    """The most a request can cost: all input at its dearest rate, plus ``max_tokens`` of output.

    Input is counted by :func:`estimate_input_tokens` unless ``input_tokens``
    is given (an exact ``count_tokens`` result). A request that asks for
    caching has all its input priced as 1-hour cache writes, the dearest
    input rate. None when the model has no price.
    """
    from ._models import Usage

    if model is None:
        return None
    tokens = estimate_input_tokens(request) if input_tokens is None else input_tokens
    max_tokens = request.get("max_tokens")
    output = max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else 0
    cached = _has_cache_control(request)
    speed = request.get("speed")
    geo = request.get("inference_geo")
    usage = Usage(
        input_tokens=0 if cached else tokens,
        output_tokens=output,
        cache_creation_input_tokens=tokens if cached else 0,
        cache_creation_5m_input_tokens=0 if cached else None,
        cache_creation_1h_input_tokens=tokens if cached else None,
        speed=speed if isinstance(speed, str) else None,
        inference_geo=geo if isinstance(geo, str) else None,
    )
    cost = prices.price(model, usage)
    total: Decimal | None = cost.total_usd
    return total


class BudgetGuard:
    """Checks every applicable budget before a call, and settles after it."""

    def __init__(self, budgets: Iterable[Budget], store: SpendStore) -> None:
        self.budgets = tuple(budgets)
        self.store = store
        self._warned: set[tuple[str, int]] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BudgetGuard({len(self.budgets)} budgets, {self.store!r})"

    def reserve(
        self,
        ctx: ContextFrame,
        scopes: tuple[ScopeBudget, ...],
        worst_usd: Decimal | None,
        model: str | None,
    ) -> Reservation | None:
        """Reserve ``worst_usd`` against every budget that applies.

        Returns None when no budget applies. Raises :class:`BudgetExceeded`
        when one would be crossed (nothing is reserved then).
        """
        now_s = time.time()
        applicable: list[tuple[Budget, str]] = []
        for budget in self.budgets:
            key = budget.group_key(ctx)
            if key is not None:
                applicable.append((budget, key))
        if not applicable and not scopes:
            return None
        if worst_usd is None:
            blocking = [b for b, _ in applicable if b.on_unpriced == "block"]
            if blocking or scopes:
                what = blocking[0].name if blocking else "the scope budget"
                msg = (
                    f"model {model!r} has no price, so its cost cannot be bounded; {what} refuses it. "
                    "Add the model with init(prices=...) or set Budget(..., on_unpriced='allow')."
                )
                raise BudgetExceeded(msg, budget=what, limit_usd=None, spent_usd=None, needed_usd=None)
            return None
        amount = _pusd(worst_usd)
        claims: list[tuple[str, int, int, int]] = []
        now_ms = int(now_s * 1000)
        for budget, key in applicable:
            start, end = budget.window_bounds(budget.clock())
            claims.append((key, start, end, _pusd(budget.limit_usd)))
            now_ms = int(budget.clock() * 1000)
        store_id: int | None = None
        if claims:
            store_id = self.store.reserve(claims, amount, now_ms)
            if store_id is None:
                self._raise_for(applicable, claims, amount)
        taken: list[ScopeBudget] = []
        for scope in scopes:
            if not scope.try_add(amount):
                for done in taken:
                    done.adjust(-amount)
                if store_id is not None:
                    self.store.settle(store_id, 0)
                raise BudgetExceeded(
                    f"this call could cost up to ${worst_usd:.6f}, which would cross the scope budget "
                    f"of ${scope.limit_usd} (${Decimal(scope.spent_pusd) / _PICO:.6f} spent or reserved).",
                    budget="track_context(budget_usd=...)",
                    limit_usd=scope.limit_usd,
                    spent_usd=Decimal(scope.spent_pusd) / _PICO,
                    needed_usd=worst_usd,
                )
            taken.append(scope)
        self._maybe_warn(applicable, claims)
        return Reservation(amount_pusd=amount, store_id=store_id, store=self.store if claims else None, scopes=scopes)

    def _raise_for(
        self, applicable: list[tuple[Budget, str]], claims: list[tuple[str, int, int, int]], amount: int
    ) -> None:
        for (budget, key), (_, start, end, limit) in zip(applicable, claims, strict=True):
            spent = self.store.spent(key, start, end)
            if spent + amount > limit:
                group = key.split("#", 1)[1]
                raise BudgetExceeded(
                    f"this call could cost up to ${Decimal(amount) / _PICO:.6f}, which would cross the budget "
                    f"{budget.name!r} for {budget.grouping} {group!r}: ${Decimal(spent) / _PICO:.6f} of "
                    f"${budget.limit_usd} already spent or reserved this {budget.window} window.",
                    budget=budget.name,
                    limit_usd=budget.limit_usd,
                    spent_usd=Decimal(spent) / _PICO,
                    needed_usd=Decimal(amount) / _PICO,
                )
        raise BudgetExceeded(  # a concurrent writer took the room between the two reads
            "a budget would be crossed", budget=applicable[0][0].name, limit_usd=None, spent_usd=None, needed_usd=None
        )

    def _maybe_warn(self, applicable: list[tuple[Budget, str]], claims: list[tuple[str, int, int, int]]) -> None:
        for (budget, key), (_, start, end, limit) in zip(applicable, claims, strict=True):
            if budget.warn_at is None:
                continue
            marker = (key, start)
            if marker in self._warned:
                continue
            spent = self.store.spent(key, start, end)
            if spent < budget.warn_at * limit:
                continue
            with self._lock:
                if marker in self._warned:
                    continue
                self._warned.add(marker)
            spent_usd = Decimal(spent) / _PICO
            logger.warning(
                "fluxgate: budget %r for %s reached %s of $%s ($%s spent or reserved)",
                budget.name,
                key.split("#", 1)[1],
                f"{budget.warn_at:.0%}",
                budget.limit_usd,
                f"{spent_usd:.6f}",
            )
            if budget.on_warn is not None:
                try:
                    budget.on_warn(budget, key.split("#", 1)[1], spent_usd)
                except Exception as exc:  # noqa: BLE001 - a user callback must not break the call
                    logger.error("fluxgate: budget on_warn callback failed: %s", exc)
