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
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from .._errors import BudgetExceeded, ConfigurationError
from .._guard import guarded, logger, warn_once
from .._models import ContextFrame
from .estimate import estimate_input_tokens, worst_case_usd
from .spend import PICO, MemorySpendStore, ScopeBudget, SpendStore, parse_usd, pusd

__all__ = [
    "Budget",
    "BudgetGuard",
    "MemorySpendStore",
    "Reservation",
    "ScopeBudget",
    "SpendStore",
    "estimate_input_tokens",
    "worst_case_usd",
]

_GROUPINGS = ("global", "feature", "user", "session", "step")
_ENDLESS = "lifetime"


def _parse_window(value: str) -> tuple[str, int]:
    """("day"|"month"|"hours"|"lifetime", hours) from "day", "month", "24h", "hour", "lifetime"."""
    text = value.strip().lower().replace(" ", "")
    for prefix in ("rolling:", "rolling_", "rolling-", "last_", "last-"):
        if text.startswith(prefix):  # "rolling_24h", "last-6h": the same rolling window
            text = text[len(prefix) :]
    hours = re.fullmatch(r"(\d+)(?:h|hr|hrs|hour|hours)", text)
    if hours is not None and 0 < int(hours[1]) <= _MAX_HOURS:
        return "hours", int(hours[1])
    if text in ("day", "daily"):
        return "day", 0
    if text in ("month", "monthly"):
        return "month", 0
    if text in ("hour", "hourly"):
        return "hours", 1
    if text in (_ENDLESS, "forever", "total"):
        return _ENDLESS, 0
    msg = (
        "Budget window must be 'day', 'month', 'hour', 'Nh' (rolling hours, at most 87840) or 'lifetime' "
        f"(got {value!r})."
    )
    raise ConfigurationError(msg)


#: The longest rolling window: ten years (a longer one is 'lifetime', or a typo).
_MAX_HOURS = 24 * 366 * 10


def _zone(tz: object) -> dt.tzinfo:
    if not isinstance(tz, str):
        msg = f"Budget 'tz' must be an IANA time zone name such as 'UTC' or 'Europe/Paris' (got {tz!r})."
        raise ConfigurationError(msg)
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
        scope: See ``per``. Defaults: window "day", grouping "global". A
            mapping here (``scope={"feature": "agent"}``) is a filter, as ``where``.
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
        try:
            limit = parse_usd("limit_usd", limit_usd)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"Budget {exc}") from None
        window, grouping = "day", "global"
        window_set = grouping_set = False
        if where is not None and not isinstance(where, Mapping):
            msg = f"Budget 'where' must be a mapping such as {{'feature': 'agent'}} (got {where!r})."
            raise ConfigurationError(msg)
        if name is not None and (not isinstance(name, str) or not name.strip()):
            msg = f"Budget 'name' must be a non-empty str (got {name!r})."
            raise ConfigurationError(msg)
        if on_warn is not None and not callable(on_warn):
            msg = f"Budget 'on_warn' must be a callable taking (budget, group, spent_usd) (got {on_warn!r})."
            raise ConfigurationError(msg)
        if not callable(clock):
            msg = f"Budget 'clock' must be a callable returning Unix seconds (got {clock!r})."
            raise ConfigurationError(msg)
        clauses = dict(where or {})
        for label, value in (("per", per), ("scope", scope)):
            if value is None:
                continue
            if isinstance(value, Mapping):  # scope={"feature": "agent"}: a filter, like where=
                clauses.update(value)
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
        for key, value in clauses.items():
            if key not in _GROUPINGS[1:] or not isinstance(value, str):
                allowed = list(_GROUPINGS[1:])
                msg = f"Budget 'where' keys must be among {allowed} with str values (got {key!r}: {value!r})."
                raise ConfigurationError(msg)
        if warn_at is not None and (
            isinstance(warn_at, bool) or not isinstance(warn_at, (int, float)) or not 0 < warn_at < 1
        ):
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


# -- the guard ----------------------------------------------------------------

_STORE_ALLOWS = (
    "fluxgate: the budget store %r failed (%s); budget_on_error='allow' lets calls through unchecked while it fails"
)


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
        actual_pusd = self.amount_pusd if actual is None else pusd(actual)
        if self.store is not None and self.store_id is not None:
            self.store.settle(self.store_id, actual_pusd)
        for scope in self.scopes:
            scope.adjust(actual_pusd - self.amount_pusd)


class BudgetGuard:
    """Checks every applicable budget before a call, and settles after it."""

    def __init__(self, budgets: Iterable[Budget], store: SpendStore, *, on_error: str = "block") -> None:
        self.budgets = tuple(budgets)
        self.store = store
        #: "block" (fail closed) or "allow" when the store can't be read or reserved.
        self.on_error = on_error
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
        amount = pusd(worst_usd)
        claims: list[tuple[str, int, int, int]] = []
        now_ms = int(now_s * 1000)
        for budget, key in applicable:
            start, end = budget.window_bounds(budget.clock())
            claims.append((key, start, end, pusd(budget.limit_usd)))
            now_ms = int(budget.clock() * 1000)
        store_id: int | None = None
        if claims:
            try:
                store_id = self.store.reserve(claims, amount, now_ms)
            except Exception as exc:  # noqa: BLE001 - a store fault decides the call, never escapes raw
                if self.on_error != "allow":
                    raise self._unavailable(applicable, exc) from None
                warn_once(f"budget-store:{type(exc).__name__}", _STORE_ALLOWS, self.store, type(exc).__name__)
                applicable, claims = [], []  # nothing reserved: nothing to warn about or settle
            else:
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
                    f"of ${scope.limit_usd} (${Decimal(scope.spent_pusd) / PICO:.6f} spent or reserved).",
                    budget="track_context(budget_usd=...)",
                    limit_usd=scope.limit_usd,
                    spent_usd=Decimal(scope.spent_pusd) / PICO,
                    needed_usd=worst_usd,
                )
            taken.append(scope)
        with guarded():  # a failed warning must not lose the reservation just made
            self._maybe_warn(applicable, claims)
        return Reservation(amount_pusd=amount, store_id=store_id, store=self.store if claims else None, scopes=scopes)

    def _unavailable(self, applicable: list[tuple[Budget, str]], exc: Exception) -> BudgetExceeded:
        # The error's type only: a store's message can carry a path or a URL.
        return BudgetExceeded(
            f"the budget store {self.store!r} could not be read or reserved ({type(exc).__name__}), so the "
            f"spend of budget {applicable[0][0].name!r} is unknown and the call is blocked. Fix the store, or "
            "pass init(budget_on_error='allow') to let calls through while it fails.",
            budget=applicable[0][0].name,
            limit_usd=applicable[0][0].limit_usd,
            spent_usd=None,
            needed_usd=None,
        )

    def _raise_for(
        self, applicable: list[tuple[Budget, str]], claims: list[tuple[str, int, int, int]], amount: int
    ) -> None:
        for (budget, key), (_, start, end, limit) in zip(applicable, claims, strict=True):
            spent = self.store.spent(key, start, end)
            if spent + amount > limit:
                group = key.split("#", 1)[1]
                raise BudgetExceeded(
                    f"this call could cost up to ${Decimal(amount) / PICO:.6f}, which would cross the budget "
                    f"{budget.name!r} for {budget.grouping} {group!r}: ${Decimal(spent) / PICO:.6f} of "
                    f"${budget.limit_usd} already spent or reserved this {budget.window} window.",
                    budget=budget.name,
                    limit_usd=budget.limit_usd,
                    spent_usd=Decimal(spent) / PICO,
                    needed_usd=Decimal(amount) / PICO,
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
            spent_usd = Decimal(spent) / PICO
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
