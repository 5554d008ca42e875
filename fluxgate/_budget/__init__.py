"""Spending limits checked before a call is sent.

``guard`` holds :class:`Budget` and the guard that reserves a call's worst
case against every budget that applies; ``spend`` the ``SpendStore``
interface, the in-memory store and scope budgets; ``estimate`` the
worst-case cost of a request. The SQLite spend store lives in ``_store``.
"""

from __future__ import annotations

from .estimate import estimate_input_tokens
from .guard import Budget, BudgetGuard, Reservation, worst_case_usd
from .spend import PICO, MemorySpendStore, ScopeBudget, SpendStore, parse_usd, pusd

__all__ = [
    "PICO",
    "Budget",
    "BudgetGuard",
    "MemorySpendStore",
    "Reservation",
    "ScopeBudget",
    "SpendStore",
    "estimate_input_tokens",
    "parse_usd",
    "pusd",
    "worst_case_usd",
]
