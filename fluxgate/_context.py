"""The ContextVar stack of scopes.

The stack is an immutable tuple kept in a single ContextVar, so asyncio tasks
inherit it (each task runs in a copy of its parent's context) and threads and
tasks never see each other's pushes. A mutable list in a ContextVar would be
shared by every copy of the context.

Each entry keeps its own frame and the merge of everything up to it, so a
tracked call reads the merged view with one ``ContextVar.get()``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

import attrs

from ._models import ContextFrame

if TYPE_CHECKING:
    from ._budget import ScopeBudget

__all__ = ["Scope", "activate", "current_budgets", "current_context", "current_scopes", "extend", "push", "reset"]


@attrs.frozen
class Scope:
    """One pushed frame, the merged context as of that frame, and the scope
    budgets in force there (its own last), so a tracked call reads all it
    needs from the top of the stack."""

    frame: ContextFrame
    merged: ContextFrame
    budgets: tuple[ScopeBudget, ...] = ()


_EMPTY = ContextFrame()
_STACK: ContextVar[tuple[Scope, ...]] = ContextVar("fluxgate_stack", default=())


def extend(stack: tuple[Scope, ...], frame: ContextFrame, budget: ScopeBudget | None = None) -> tuple[Scope, ...]:
    """``stack`` with ``frame`` (and its scope budget, if any) pushed on top (a new tuple)."""
    if not stack:
        return (Scope(frame, frame, () if budget is None else (budget,)),)
    top = stack[-1]
    budgets = top.budgets if budget is None else (*top.budgets, budget)
    return (*stack, Scope(frame, top.merged.merged_with(frame), budgets))


def push(frame: ContextFrame, budget: ScopeBudget | None = None) -> Token[tuple[Scope, ...]]:
    """Push ``frame`` on top of the current stack; undo with ``reset(token)``."""
    return _STACK.set(extend(_STACK.get(), frame, budget))


def activate(stack: tuple[Scope, ...]) -> Token[tuple[Scope, ...]]:
    """Make ``stack`` the current one (a stack captured earlier); undo with ``reset``."""
    return _STACK.set(stack)


def reset(token: Token[tuple[Scope, ...]]) -> None:
    """Restore the stack to what it was before the matching ``push``."""
    _STACK.reset(token)


#: The whole stack, outermost first: ``current_scopes()``. The ContextVar's own
#: method, not a function calling it: a tracked call reads it on the caller's thread.
current_scopes: Callable[[], tuple[Scope, ...]] = _STACK.get


def current_budgets() -> tuple[ScopeBudget, ...]:
    """The scope budgets in force, outermost first."""
    stack = _STACK.get()
    return stack[-1].budgets if stack else ()


def current_context() -> ContextFrame:
    """The merged, immutable view of every enclosing scope.

    Inner scopes win field by field; ``metadata`` merges key by key.

    >>> current_context().feature is None
    True
    """
    stack = _STACK.get()
    return stack[-1].merged if stack else _EMPTY
