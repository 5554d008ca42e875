"""Tool runners: each step runs in the context the runner was made in.

``beta.messages.tool_runner()`` returns the SDK's runner, unchanged in type.
The runner drives its loop from a generator it makes in ``__init__`` with
its own ``__run__`` and keeps as ``_iterator``; fluxgate's patch of
``__run__`` hands it a generator that takes each step of the SDK's loop in
the scopes and for the tracker current when the runner was made (see
:class:`~.streams.Origin`), and hangs each step's summary on what the step
returns. The patch runs inside ``__init__``, below the caller's frame, so
the SDK's own warnings still point at the caller's line.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator
from typing import Any

from .._guard import guarded
from .._recording import ATTRIBUTE, STEP, StepLog, attach
from .hooks import Target, marked
from .streams import Origin

__all__ = ["TARGETS"]


def _tag(item: Any, log: StepLog) -> Any:
    """Hang the step's last call on what the step returned, if the SDK rebuilt the message."""
    with guarded():
        call = log.last
        if call is not None and call.response is not None and getattr(item, ATTRIBUTE, None) is None:
            attach(item, call.response)
    return item


def _steps(loop: Generator[Any, None, None], origin: Origin) -> Iterator[Any]:
    try:
        while True:
            log = StepLog()
            step = STEP.set(log)
            try:
                with origin.entered():
                    item = next(loop)
            except StopIteration:
                return
            finally:
                STEP.reset(step)
            yield _tag(item, log)
    finally:
        # The runner's close() closes this generator; the SDK's loop must
        # close too, at once, as it would without fluxgate (its spans end there).
        loop.close()


async def _asteps(loop: AsyncGenerator[Any, None], origin: Origin) -> AsyncIterator[Any]:
    try:
        while True:
            log = StepLog()
            step = STEP.set(log)
            try:
                with origin.entered():
                    item = await loop.__anext__()
            except StopAsyncIteration:
                return
            finally:
                STEP.reset(step)
            yield _tag(item, log)
    finally:
        await loop.aclose()


def _running(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A sync runner's ``__run__()``: its loop, stepped under the runner's origin."""
    loop = wrapped(*args, **kwargs)
    out = loop
    with guarded():
        origin = Origin.here()
        if origin is not None:
            out = _steps(loop, origin)
    return out


def _arunning(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """An async runner's ``__run__()``: the twin of ``_running`` (making the loop is synchronous)."""
    loop = wrapped(*args, **kwargs)
    out = loop
    with guarded():
        origin = Origin.here()
        if origin is not None:
            out = _asteps(loop, origin)
    return out


_RUNNERS = "anthropic.lib.tools._beta_runner"

TARGETS: tuple[Target, ...] = (
    (_RUNNERS, "BaseSyncToolRunner", "__run__", marked(_running)),
    (_RUNNERS, "BaseAsyncToolRunner", "__run__", marked(_arunning)),
)
