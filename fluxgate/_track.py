"""``track()`` and ``track_context()``: scopes on top of ``_context``.

Neither needs ``init()``: a scope is one ContextVar set, and a tracked call
made inside it reads the merged view. The wrapper for a decorated function is
chosen once, at decoration time, because ``contextlib.contextmanager`` used as
a decorator would leave the scope before an ``async def`` or a generator body
ever runs.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator, Mapping
from contextvars import Token
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from ._context import Scope, activate, current_scopes, extend, push, reset
from ._guard import guarded
from ._models import AiEventUser, ContextFrame

if TYPE_CHECKING:
    from ._budget import ScopeBudget

__all__ = ["bind_context", "track", "track_context"]

P = ParamSpec("P")
R = TypeVar("R")


def _budget_limit(value: object) -> Decimal | None:
    if value is None:
        return None
    from ._budget import parse_usd  # budgets load on first use: `import fluxgate` stays cheap

    return parse_usd("budget_usd", value)


def _new_budget(limit: Decimal | None) -> ScopeBudget | None:
    if limit is None:
        return None
    from ._budget import ScopeBudget

    return ScopeBudget(limit)


def _reset(token: Token[tuple[Scope, ...]]) -> None:
    # A token created in another Context raises ValueError on reset (a scope
    # entered in one task and left in another); that must not hit the user.
    with guarded():
        reset(token)


class track_context:  # noqa: N801 - used like a function, as contextlib's are
    """A scope of cost-tracking context, for ``with`` and ``async with``.

    Every field is optional and keyword-only. Nested scopes merge field by
    field (the inner one wins) and ``metadata`` merges key by key.

    Args:
        feature: The product feature the calls serve ("summarization").
        user: A user id, or an :class:`AiEventUser` with revenue for unit economics.
        step: The step of a multi-step pipeline ("rerank").
        session_id: Your session identifier.
        conversation_id: Your conversation or thread identifier.
        service_tier: One of default, standard, batch, flex, priority.
        metadata: Extra JSON-serialisable data stored with each event.
        budget_usd: Cap what the calls inside one entry of the scope may cost,
            in USD; a call that could cross it raises
            :class:`fluxgate.BudgetExceeded` and is not sent. Nested scopes
            each enforce their own. ``.spent_usd`` tells what was used.

    Raises:
        TypeError: A field has the wrong type (the message names it).
        ValueError: A field is empty, an unknown tier, or metadata is not JSON.

    >>> from fluxgate import current_context
    >>> with track_context(feature="search", step="rerank"):
    ...     current_context().step
    'rerank'
    """

    __slots__ = ("_entered", "budget", "budget_usd", "frame")

    def __init__(
        self,
        *,
        feature: str | None = None,
        user: str | int | AiEventUser | None = None,
        step: str | None = None,
        session_id: str | None = None,
        conversation_id: str | None = None,
        service_tier: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        budget_usd: float | Decimal | None = None,
    ) -> None:
        self.frame = ContextFrame.build(
            feature=feature,
            user=user,
            step=step,
            session_id=session_id,
            conversation_id=conversation_id,
            service_tier=service_tier,
            metadata=metadata,
        )
        self.budget_usd = _budget_limit(budget_usd)
        #: The budget of the latest entry (None without ``budget_usd``).
        self.budget: ScopeBudget | None = None
        # (token, stack it set) per entry still open: one instance may be
        # entered in several tasks at once, and each exit must undo its own.
        self._entered: list[tuple[Token[tuple[Scope, ...]], tuple[Scope, ...]]] = []

    def __repr__(self) -> str:
        return f"track_context({self.frame!r})"

    @property
    def spent_usd(self) -> Decimal | None:
        """What the latest entry's calls cost (or still hold reserved), with ``budget_usd``."""
        return None if self.budget is None else self.budget.spent_usd

    def __enter__(self) -> track_context:
        self.budget = _new_budget(self.budget_usd)
        token = push(self.frame, self.budget)
        self._entered.append((token, current_scopes()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        current = current_scopes()
        for i in range(len(self._entered) - 1, -1, -1):
            token, stack = self._entered[i]
            if stack is current:
                del self._entered[i]
                _reset(token)
                return
        if self._entered:  # exited in another context: undo the newest entry
            _reset(self._entered.pop()[0])

    async def __aenter__(self) -> track_context:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


@overload
def track(fn: Callable[P, R], /) -> Callable[P, R]: ...
@overload
def track(
    name: str | None = None,
    /,
    *,
    feature: str | None = None,
    user: str | int | AiEventUser | None = None,
    step: str | None = None,
    session_id: str | None = None,
    conversation_id: str | None = None,
    service_tier: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    budget_usd: float | Decimal | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def track(
    fn_or_name: Callable[..., Any] | str | None = None,
    /,
    *,
    feature: str | None = None,
    user: str | int | AiEventUser | None = None,
    step: str | None = None,
    session_id: str | None = None,
    conversation_id: str | None = None,
    service_tier: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    budget_usd: float | Decimal | None = None,
) -> Any:
    """Decorate a function so every call made inside it carries this context.

    Works on plain functions, ``async def`` functions, generators and async
    generators; for the last two the scope covers the whole iteration and is
    the one in force when the generator was created, even if it is iterated
    elsewhere (a streaming HTTP response, say). Fields are those of
    :class:`track_context` and are validated when the decorator is applied;
    with ``budget_usd`` each call (each generator) gets a budget of its own.

    Three spellings: ``@track(feature="summarization", step=...)``,
    ``@track("summarization")`` (the feature, positionally), and bare
    ``@track``, which tags calls with the function's name as the feature.

    >>> @track(feature="summarization")
    ... def summarize(doc: str) -> str | None:
    ...     return current_context().feature
    >>> summarize("...")
    'summarization'
    >>> @track
    ... def classify(doc: str) -> str | None:
    ...     return current_context().feature
    >>> classify("...")
    'classify'

    Raises:
        TypeError: The feature is given both positionally and by keyword, or
            a field has the wrong type.
        ValueError: A field is empty, an unknown tier, or metadata is not JSON.
    """
    if callable(fn_or_name):
        return track(feature=getattr(fn_or_name, "__name__", None) or None)(fn_or_name)
    if fn_or_name is not None:
        if feature is not None:
            msg = f"track() got the feature twice: {fn_or_name!r} positionally and feature={feature!r}."
            raise TypeError(msg)
        if not isinstance(fn_or_name, str):
            msg = f"track()'s positional argument is the feature, a str (got {fn_or_name!r})."
            raise TypeError(msg)
        feature = fn_or_name
    frame = ContextFrame.build(
        feature=feature,
        user=user,
        step=step,
        session_id=session_id,
        conversation_id=conversation_id,
        service_tier=service_tier,
        metadata=metadata,
    )
    limit = _budget_limit(budget_usd)

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        wrapped: Callable[..., Any]
        if inspect.isasyncgenfunction(fn):
            wrapped = _wrap_async_gen(fn, frame, limit)
        elif inspect.isgeneratorfunction(fn):
            wrapped = _wrap_gen(fn, frame, limit)
        elif inspect.iscoroutinefunction(fn):
            wrapped = _wrap_coroutine(fn, frame, limit)
        else:
            wrapped = _wrap_sync(fn, frame, limit)
        return functools.wraps(fn)(wrapped)

    return decorate


def _wrap_sync(fn: Callable[P, R], frame: ContextFrame, limit: Decimal | None) -> Callable[P, R]:
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = push(frame, _new_budget(limit))
        try:
            return fn(*args, **kwargs)
        finally:
            _reset(token)

    return wrapper


def _wrap_coroutine(
    fn: Callable[P, Coroutine[Any, Any, R]], frame: ContextFrame, limit: Decimal | None
) -> Callable[P, Coroutine[Any, Any, R]]:
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        token = push(frame, _new_budget(limit))
        try:
            return await fn(*args, **kwargs)
        finally:
            _reset(token)

    return wrapper


def _wrap_gen(
    fn: Callable[P, Generator[Any, Any, R]], frame: ContextFrame, limit: Decimal | None
) -> Callable[P, Generator[Any, Any, R]]:
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Generator[Any, Any, R]:
        stack = extend(current_scopes(), frame, _new_budget(limit))
        token = activate(stack)
        try:
            gen = fn(*args, **kwargs)
        finally:
            _reset(token)
        return _drive_gen(gen, stack)

    return wrapper


def _drive_gen(gen: Generator[Any, Any, R], stack: tuple[Scope, ...]) -> Generator[Any, Any, R]:
    """Run each step of ``gen`` inside ``stack``, leaving the consumer's context alone."""
    send: Any = None
    thrown: BaseException | None = None
    while True:
        token = activate(stack)
        try:
            item = gen.send(send) if thrown is None else gen.throw(thrown)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            thrown = None
            _reset(token)
        try:
            send = yield item
        except GeneratorExit:
            token = activate(stack)
            try:
                gen.close()
            finally:
                _reset(token)
            raise
        except BaseException as exc:  # noqa: BLE001 - forwarded into the generator
            thrown = exc
            send = None


def _wrap_async_gen(
    fn: Callable[P, AsyncGenerator[Any, Any]], frame: ContextFrame, limit: Decimal | None
) -> Callable[P, AsyncGenerator[Any, Any]]:
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[Any, Any]:
        stack = extend(current_scopes(), frame, _new_budget(limit))
        token = activate(stack)
        try:
            agen = fn(*args, **kwargs)
        finally:
            _reset(token)
        return _drive_async_gen(agen, stack)

    return wrapper


async def _drive_async_gen(agen: AsyncGenerator[Any, Any], stack: tuple[Scope, ...]) -> AsyncGenerator[Any, Any]:
    """The async twin of ``_drive_gen``."""
    send: Any = None
    thrown: BaseException | None = None
    while True:
        token = activate(stack)
        try:
            item = await (agen.asend(send) if thrown is None else agen.athrow(thrown))
        except StopAsyncIteration:
            return
        finally:
            thrown = None
            _reset(token)
        try:
            send = yield item
        except GeneratorExit:
            token = activate(stack)
            try:
                await agen.aclose()
            finally:
                _reset(token)
            raise
        except BaseException as exc:  # noqa: BLE001 - forwarded into the generator
            thrown = exc
            send = None


def bind_context(fn: Callable[P, R]) -> Callable[P, R]:
    """Carry the caller's context into another thread or an executor.

    Thread pools do not copy ContextVars, so a call submitted to one would be
    recorded without its feature or user. ``bind_context`` captures the whole
    current context now; each call of the returned function runs in a fresh
    copy of it, so it is safe to call from many threads at once.

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with track_context(feature="export"), ThreadPoolExecutor() as pool:
    ...     pool.submit(bind_context(lambda: current_context().feature)).result()
    'export'
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return run
