"""``flush_after``: deliver a serverless handler's events before it returns.

AWS Lambda, Cloud Functions and Cloud Run freeze the process as soon as a
handler returns: the flusher's threads stop mid-batch, and a frozen process
may never thaw. Flushing before returning is the only reliable point.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, Protocol, TypeVar, overload

from ._guard import guarded
from ._runtime import active

__all__ = ["flush_after"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class _Decorator(Protocol):
    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, T]], /) -> Callable[P, Coroutine[Any, Any, T]]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def flush_after(fn: Callable[P, Coroutine[Any, Any, T]], /) -> Callable[P, Coroutine[Any, Any, T]]: ...
@overload
def flush_after(fn: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def flush_after(fn: None = None, /, *, timeout_s: float = 5.0) -> _Decorator: ...
def flush_after(fn: Callable[..., Any] | None = None, /, *, timeout_s: float = 5.0) -> Any:
    """Flush fluxgate's events when the decorated handler returns or raises.

    Works on plain and ``async`` functions; the async form flushes in a worker
    thread, so the event loop keeps running. The flush waits at most
    ``timeout_s``, never raises, and the handler's own result or exception
    comes back unchanged.

    Args:
        fn: The handler (the bare ``@flush_after`` form).
        timeout_s: The most time spent flushing per invocation.

    >>> import fluxgate
    >>> @fluxgate.flush_after(timeout_s=2)
    ... def handler(event, context):
    ...     return {"statusCode": 200}
    >>> handler({}, None)
    {'statusCode': 200}
    """
    if fn is None:
        return functools.partial(_wrap, timeout_s=timeout_s)
    return _wrap(fn, timeout_s=timeout_s)


def _flush(timeout_s: float) -> None:
    with guarded():
        fg = active()
        if fg is not None:
            fg.flush(timeout_s)


def _wrap(fn: Callable[..., Any], *, timeout_s: float) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            finally:
                await asyncio.to_thread(_flush, timeout_s)

        return run_async

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        finally:
            _flush(timeout_s)

    return run
