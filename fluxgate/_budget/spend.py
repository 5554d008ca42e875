"""Where budget spend lives: the SpendStore interface, its stores, and scope budgets.

A window budget's spend is a ledger of reservations: one row per call and
budget key, with the call's time and amount in integer pico-dollars (exact,
and summable by SQL). ``SQLiteSpendStore`` keeps it in the local SQLite file,
shared by every process of the host.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol, runtime_checkable

__all__ = ["PICO", "MemorySpendStore", "ScopeBudget", "SpendStore", "parse_usd", "pusd"]

PICO = Decimal(10) ** 12


def parse_usd(name: str, value: object) -> Decimal:
    """A spending limit as an exact Decimal, from a number or a numeric string.

    Raises:
        TypeError: ``value`` is not a number (a bool is not).
        ValueError: It is negative, infinite or NaN (a ``ConfigurationError``
            at the call sites that configure).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        msg = f"'{name}' must be a number (got {value!r} that is a {type(value).__name__})."
        raise TypeError(msg)
    try:
        limit = Decimal(str(value))
    except ArithmeticError:
        limit = Decimal("NaN")
    if not limit.is_finite() or limit < 0:
        msg = f"'{name}' must be a finite number >= 0 (got {value!r})."
        raise ValueError(msg)
    return limit


def pusd(usd: Decimal) -> int:
    """USD as integer pico-dollars, rounded up (a budget never under-counts)."""
    value = usd * PICO
    whole = int(value)
    return whole + 1 if value > whole else whole


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


class ScopeBudget:
    """The running spend of one ``track_context(budget_usd=...)`` entry."""

    __slots__ = ("_lock", "limit_pusd", "limit_usd", "spent_pusd")

    def __init__(self, limit_usd: Decimal) -> None:
        self.limit_usd = limit_usd
        self.limit_pusd = pusd(limit_usd)
        self.spent_pusd = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ScopeBudget(limit_usd={self.limit_usd}, spent_usd={Decimal(self.spent_pusd) / PICO})"

    @property
    def spent_usd(self) -> Decimal:
        """Spent, or reserved by calls still running."""
        return Decimal(self.spent_pusd) / PICO

    def try_add(self, amount_pusd: int) -> bool:
        with self._lock:
            if self.spent_pusd + amount_pusd > self.limit_pusd:
                return False
            self.spent_pusd += amount_pusd
            return True

    def adjust(self, delta_pusd: int) -> None:
        with self._lock:
            self.spent_pusd += delta_pusd
