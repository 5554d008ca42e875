"""Carry the caller's scope into thread pools: ``init(propagate_context=True)``.

``ThreadPoolExecutor`` runs work in threads that do not inherit ContextVars,
so ``pool.map(classify, docs)`` inside ``@track("classify")`` used to record
every call with no feature. As Sentry's threading integration does, the pool's
``submit`` is wrapped to capture the submitter's scope stack and run the work
under it. ``Executor.map`` and ``loop.run_in_executor`` both go through
``submit``, so one patch covers them; ``asyncio.to_thread`` already copies
the whole context.

Only fluxgate's own stack moves, nothing else of the caller's context, and
nothing at all when no scope is open. ``stop()`` puts the original back.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ._context import activate, current_scopes, reset

__all__ = ["is_propagating", "propagate", "stop"]

_lock = threading.Lock()
_original: Callable[..., Future[Any]] | None = None


def _in_scope(stack: tuple[Any, ...], fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        token = activate(stack)
        try:
            return fn(*args, **kwargs)
        finally:
            reset(token)

    return run


def _submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
    original = _original or _unpatched
    stack = current_scopes()
    if stack:
        fn = _in_scope(stack, fn)
    return original(self, fn, *args, **kwargs)


_unpatched = ThreadPoolExecutor.submit
_submit.__wrapped__ = _unpatched  # type: ignore[attr-defined]
_submit.__doc__ = _unpatched.__doc__


def propagate() -> bool:
    """Wrap ``ThreadPoolExecutor.submit``; False if it already was."""
    global _original  # noqa: PLW0603 - the one patch, as its undo needs it
    with _lock:
        if ThreadPoolExecutor.__dict__.get("submit") is _submit:
            return False
        _original = ThreadPoolExecutor.__dict__["submit"]
        ThreadPoolExecutor.submit = _submit  # type: ignore[method-assign, assignment]
        return True


def stop() -> None:
    """Put the original ``submit`` back (if ours is still the one installed)."""
    global _original  # noqa: PLW0603
    with _lock:
        if ThreadPoolExecutor.__dict__.get("submit") is _submit and _original is not None:
            ThreadPoolExecutor.submit = _original  # type: ignore[method-assign]
        _original = None


def is_propagating() -> bool:
    """Whether thread pools carry the caller's scope now."""
    return ThreadPoolExecutor.__dict__.get("submit") is _submit
