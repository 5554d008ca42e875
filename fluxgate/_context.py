"""The ContextVar stack of scopes.

The stack is an immutable tuple kept in a single ContextVar, so asyncio tasks
inherit it (each task runs in a copy of its parent's context) and threads and
tasks never see each other's pushes. A mutable list in a ContextVar would be
shared by every copy of the context.

Each entry keeps its own frame and the merge of everything up to it, so a
tracked call reads the merged view with one ``ContextVar.get()``.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

import attrs

from ._models import ContextFrame

__all__ = ["Scope", "activate", "current_context", "current_scopes", "extend", "push", "reset"]


@attrs.frozen
class Scope:
    """One pushed frame and the merged context as of that frame."""

    frame: ContextFrame
    merged: ContextFrame


_EMPTY = ContextFrame()
_STACK: ContextVar[tuple[Scope, ...]] = ContextVar("fluxgate_stack", default=())


def extend(stack: tuple[Scope, ...], frame: ContextFrame) -> tuple[Scope, ...]:
    """``stack`` with ``frame`` pushed on top (a new tuple)."""
    merged = stack[-1].merged.merged_with(frame) if stack else frame
    return (*stack, Scope(frame, merged))


def push(frame: ContextFrame) -> Token[tuple[Scope, ...]]:
    """Push ``frame`` on top of the current stack; undo with ``reset(token)``."""
    return _STACK.set(extend(_STACK.get(), frame))


def activate(stack: tuple[Scope, ...]) -> Token[tuple[Scope, ...]]:
    """Make ``stack`` the current one (a stack captured earlier); undo with ``reset``."""
    return _STACK.set(stack)


def reset(token: Token[tuple[Scope, ...]]) -> None:
    """Restore the stack to what it was before the matching ``push``."""
    _STACK.reset(token)


def current_scopes() -> tuple[Scope, ...]:
    """The whole stack, outermost first."""
    return _STACK.get()


def current_context() -> ContextFrame:
    """The merged, immutable view of every enclosing scope.

    Inner scopes win field by field; ``metadata`` merges key by key.

    >>> current_context().feature is None
    True
    """
    stack = _STACK.get()
    return stack[-1].merged if stack else _EMPTY
