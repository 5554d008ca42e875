"""The npm package ``@fluxgate/anthropic`` in Python: :func:`create_anthropic_cost_tracker`.

Teams that also run TypeScript services know this shape::

    anthropic = create_anthropic_cost_tracker(Anthropic(), fg)
    message = anthropic.with_context(feature="summarization").messages.create(...)

It is a thin layer over the one mechanism ``fluxgate.init()`` uses: the
class-level patch of anthropic's resources (``fluxgate.instrument()``). A call
made through the tracked client pushes the session's context frame, routes the
call to ``fg`` (``_fluxgate.reporting_to``) and calls the SDK method; the global
patch records it. A call is therefore recorded once, whether or not a
``track_context`` encloses it, and the facade's fields win over the enclosing
ones (``metadata`` merges key by key, as nested scopes do).

Nothing here imports anthropic at run time: the SDK's classes are named only
for the type checker, so ``import fluxgate.anthropic`` stays cheap and the
tracked objects work with any client that has ``.messages`` (Bedrock, Vertex,
old SDK releases).

.. versionadded:: 0.1
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from contextvars import Token
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

import attrs

from ._context import Scope, push, reset
from ._fluxgate import FluxGate, reporting_to
from ._guard import guarded
from ._instrument import ScopedResource, instrument, is_instrumented
from ._models import CONTEXT_FIELDS, ContextFields, ContextFrame, SessionFields

if TYPE_CHECKING:
    from anthropic import Anthropic, AsyncAnthropic
    from anthropic.resources.beta import AsyncBeta, Beta
    from anthropic.resources.beta.messages import AsyncMessages as AsyncBetaMessages
    from anthropic.resources.beta.messages import Messages as BetaMessages
    from anthropic.resources.messages import AsyncMessages, Messages
    from typing_extensions import Unpack

__all__ = [
    "AsyncTrackedBeta",
    "AsyncTrackedBetaMessages",
    "AsyncTrackedMessages",
    "TrackedBeta",
    "TrackedBetaMessages",
    "TrackedClient",
    "TrackedMessages",
    "TrackedSession",
    "create_anthropic_cost_tracker",
]

MessagesT_co = TypeVar("MessagesT_co", covariant=True)
BetaT_co = TypeVar("BetaT_co", covariant=True)

_install_lock = threading.Lock()


def _ensure_instrumented() -> None:
    # The facade rides on the global patch. It is installed when the tracker
    # is created, and again if something removed it since (fluxgate.shutdown()
    # of the global tracker, capture_events() in a test): the facade's calls
    # belong to its own FluxGate, which that shutdown did not stop.
    if not is_instrumented():
        with _install_lock:
            if not is_instrumented():
                instrument()


def _reset(token: Token[tuple[Scope, ...]]) -> None:
    # A token made in another Context raises ValueError on reset; never the user's problem.
    with guarded():
        reset(token)


def _shallow_merge(base: ContextFrame, top: ContextFrame) -> ContextFrame:
    """``base`` with every field ``top`` sets replaced whole (the npm spread ``{...base, ...top}``)."""
    changes = {field.name: getattr(top, field.name) for field in attrs.fields(ContextFrame)}
    return attrs.evolve(base, **{name: value for name, value in changes.items() if value is not None})


@attrs.frozen
class _Scope:
    """Where a facade call reports (``fg``) and what it is tagged with (``frame``)."""

    fg: FluxGate
    frame: ContextFrame

    def wrap(self, owner: Any, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        """``owner.name`` run under this scope; keeps its name, docstring and signature.

        The method is looked up again on each call, after the patch is
        ensured: a bound method taken before ``instrument()`` would bypass it.
        """
        if inspect.iscoroutinefunction(method):

            async def run_async(*args: Any, **kwargs: Any) -> Any:
                # Set inside the awaiting task: a ContextVar set before the
                # coroutine runs is gone by the time the patched create reads it.
                _ensure_instrumented()
                token = push(self.frame)
                try:
                    with reporting_to(self.fg):
                        return await getattr(owner, name)(*args, **kwargs)
                finally:
                    _reset(token)

            return functools.wraps(method)(run_async)

        def run(*args: Any, **kwargs: Any) -> Any:
            _ensure_instrumented()
            token = push(self.frame)
            try:
                with reporting_to(self.fg):
                    result = getattr(owner, name)(*args, **kwargs)
            finally:
                _reset(token)
            if inspect.iscoroutine(result):
                # An async method we could not tell apart up front: the request
                # runs when the coroutine is awaited, so the scope must be set there.
                return self._await(result)
            if type(result).__name__ in _DEFERRED_MANAGERS:
                # with_streaming_response: the request is sent on __enter__.
                return _ScopedManager(result, self)
            return result

        return functools.wraps(method)(run)

    def resolve(self, owner: Any, name: str, value: Any) -> Any:
        """A method runs under this scope; a sub-resource is seen through it; data passes."""
        if callable(value) and not isinstance(value, type):
            return self.wrap(owner, name, value)
        if _is_sdk_object(value):
            kind = _TrackedMessages if name == "messages" else _TrackedResource
            return kind(value, self)
        return value

    def describe(self, owner: Any) -> str:
        """``<tracked Messages (feature='chat', user='u1')>``."""
        return f"<tracked {type(owner).__name__} {_describe(self.frame)}>"

    @contextmanager
    def active(self) -> Iterator[None]:
        """Within the block, tracked calls carry this scope and report to its FluxGate."""
        _ensure_instrumented()
        token = push(self.frame)
        try:
            with reporting_to(self.fg):
                yield
        finally:
            _reset(token)

    async def _await(self, pending: Coroutine[Any, Any, Any]) -> Any:
        token = push(self.frame)
        try:
            with reporting_to(self.fg):
                return await pending
        finally:
            _reset(token)


#: SDK context managers that send their request on entry, not when made.
_DEFERRED_MANAGERS = frozenset({"ResponseContextManager", "AsyncResponseContextManager"})


class _ScopedManager:
    """A ``with_streaming_response`` manager whose request, sent on entry, runs in the facade's scope."""

    __slots__ = ("_manager", "_scope")

    def __init__(self, manager: Any, scope: _Scope) -> None:
        self._manager = manager
        self._scope = scope

    def __getattr__(self, name: str) -> Any:
        if name in _ScopedManager.__slots__:
            raise AttributeError(name)
        return getattr(self._manager, name)

    def __enter__(self) -> Any:
        with self._scope.active():
            return self._manager.__enter__()

    def __exit__(self, *exc_info: Any) -> Any:
        return self._manager.__exit__(*exc_info)

    async def __aenter__(self) -> Any:
        with self._scope.active():
            return await self._manager.__aenter__()

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._manager.__aexit__(*exc_info)


def _is_sdk_object(value: object) -> bool:
    """A sub-resource (``batches``, ``with_raw_response``...) rather than data or a method."""
    if callable(value):
        return False
    return type(value).__module__.split(".", 1)[0] == "anthropic"


class _TrackedResource(ScopedResource):
    """An SDK resource whose methods run under a scope; ``isinstance`` and every attribute stay the SDK's."""


class _TrackedMessages(_TrackedResource):
    """``messages`` or ``beta.messages``: a tracked resource with ``with_tracking``."""

    def with_tracking(self, **fields: Unpack[ContextFields]) -> _TrackedMessages:
        """These messages with some fields replaced, for one call; the session is untouched.

        Takes the context fields (``feature``, ``user``, ``step``,
        ``session_id``, ``conversation_id``, ``service_tier``, ``metadata``).
        The fields given replace the session's whole (a shallow merge, as the
        npm package's ``withTracking``): ``metadata={"turn": 3}`` replaces the
        session's metadata rather than adding a key.

        Raises:
            TypeError: A field has the wrong type, or is not a context field (the message names it).
            ValueError: A field is empty, an unknown tier, or metadata is not JSON.
        """
        fork = ContextFrame.build(**_context_fields("with_tracking", fields))
        scope = cast("_Scope", self._self_scope)
        scope = attrs.evolve(scope, frame=_shallow_merge(scope.frame, fork))
        return _TrackedMessages(self.__wrapped__, scope)


def _context_fields(where: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(CONTEXT_FIELDS))
    if unknown:
        msg = f"{where}() got unexpected keyword {unknown[0]!r}; the context fields are {', '.join(CONTEXT_FIELDS)}."
        raise TypeError(msg)
    return dict(fields)


def _describe(frame: ContextFrame) -> str:
    # The user's id only, and metadata's keys only: a repr ends up in logs.
    fields = [
        f"{field.name}={getattr(frame, field.name)!r}"
        for field in attrs.fields(ContextFrame)
        if field.name not in ("user", "metadata") and getattr(frame, field.name) is not None
    ]
    if frame.user is not None:
        fields.insert(1, f"user={frame.user.id!r}")
    if frame.metadata is not None:
        fields.append(f"metadata keys={sorted(frame.metadata)!r}")
    return f"({', '.join(fields)})" if fields else "(no context)"


def _resource(kind: type[_TrackedResource], target: Any, scope: _Scope) -> Any:
    # The SDK boundary: the proxy stands in for the SDK resource it wraps, and
    # the type checker is told so by the public ``Tracked*`` names below.
    return kind(target, scope)


class TrackedSession(Generic[MessagesT_co, BetaT_co]):
    """A tracked client bound to one context; immutable, so keep and share it freely.

    Made by :meth:`TrackedClient.with_context` (or :attr:`TrackedClient.client`
    for no context). Every call through ``messages``, ``beta.messages`` and
    ``completions`` is tracked with the session's fields, in any thread or task.
    """

    __slots__ = ("_client", "_scope")

    def __init__(self, client: Any, scope: _Scope) -> None:
        self._client = client
        self._scope = scope

    def __repr__(self) -> str:
        return f"<TrackedSession {_describe(self._scope.frame)}>"

    @property
    def context(self) -> ContextFrame:
        """The fields this session's calls are tagged with."""
        return self._scope.frame

    @property
    def messages(self) -> MessagesT_co:
        """``client.messages``, tracked: ``create``, ``stream``, ``count_tokens``... and ``with_tracking``."""
        return cast("MessagesT_co", _resource(_TrackedMessages, self._client.messages, self._scope))

    @property
    def beta(self) -> BetaT_co:
        """``client.beta``, tracked; ``beta.messages`` has ``with_tracking``."""
        return cast("BetaT_co", _resource(_TrackedResource, self._client.beta, self._scope))

    @property
    def completions(self) -> Any:
        """``client.completions`` (the legacy Text Completions API), tracked.

        Raises:
            AttributeError: The installed anthropic has no legacy completions
                (only releases up to 0.125 have them).
        """
        target = getattr(self._client, "completions", None)
        if target is None:
            version = getattr(sys.modules.get("anthropic"), "__version__", "unknown")
            msg = (
                f"'completions' is not available: the installed anthropic release ({version}) has no legacy "
                "Text Completions API (the last release with client.completions is 0.125). "
                "Use messages.create instead."
            )
            raise AttributeError(msg)
        return _resource(_TrackedResource, target, self._scope)


class TrackedClient(Generic[MessagesT_co, BetaT_co]):
    """An anthropic client whose calls are recorded to one :class:`~fluxgate.FluxGate`.

    Made by :func:`create_anthropic_cost_tracker`. Tag calls with
    :meth:`with_context`; use :attr:`client` (or ``messages``, ``beta`` and
    ``completions`` directly) for tracked calls with no feature tag.
    """

    __slots__ = ("_client", "_fg", "_untagged")

    def __init__(self, client: Any, fg: FluxGate) -> None:
        self._client = client
        self._fg = fg
        self._untagged: TrackedSession[MessagesT_co, BetaT_co] = TrackedSession(client, _Scope(fg, ContextFrame()))

    def __repr__(self) -> str:
        return f"<TrackedClient {type(self._client).__name__} -> {self._fg!r}>"

    def with_context(self, **fields: Unpack[SessionFields]) -> TrackedSession[MessagesT_co, BetaT_co]:
        """A session whose calls carry these fields; this client is unchanged.

        Args:
            feature: The product feature the calls serve ("summarization"); required.
            user: A user id, or an :class:`~fluxgate.AiEventUser` with revenue.
            step: The step of a multi-step pipeline.
            session_id: Your session identifier.
            conversation_id: Your conversation or thread identifier.
            service_tier: One of default, standard, batch, flex, priority.
            metadata: Extra JSON-serialisable data stored with each event.

        Raises:
            TypeError: ``feature`` is missing, or a field has the wrong type.
            ValueError: A field is empty, an unknown tier, or metadata is not JSON.

        >>> session = tracked.with_context(feature="chat", user="user-123")  # doctest: +SKIP
        >>> session.messages.create(model=..., max_tokens=..., messages=[...])  # doctest: +SKIP
        """
        values = _context_fields("with_context", fields)
        if values.get("feature") is None:
            msg = "with_context() requires 'feature', a non-empty str (got None)."
            raise TypeError(msg)
        frame = ContextFrame.build(**values)
        return TrackedSession(self._client, _Scope(self._fg, frame))

    @property
    def client(self) -> TrackedSession[MessagesT_co, BetaT_co]:
        """Tracked calls with no feature tag (health checks, internal jobs)."""
        return self._untagged

    @property
    def messages(self) -> MessagesT_co:
        """Same as ``client.messages``: tracked, with no feature tag."""
        return self._untagged.messages

    @property
    def beta(self) -> BetaT_co:
        """Same as ``client.beta``: tracked, with no feature tag."""
        return self._untagged.beta

    @property
    def completions(self) -> Any:
        """Same as ``client.completions``; AttributeError where the SDK has none."""
        return self._untagged.completions


# The public resource types. For the type checker each is the SDK's own
# resource class plus ``with_tracking``, so editors show anthropic's exact
# signatures and overloads (``create(stream=True)`` returns a Stream). At run
# time they are the proxies above.
if TYPE_CHECKING:

    class TrackedMessages(Messages):
        """``client.messages``, tracked."""

        def with_tracking(self, **fields: Unpack[ContextFields]) -> TrackedMessages: ...

    class AsyncTrackedMessages(AsyncMessages):
        """``async_client.messages``, tracked."""

        def with_tracking(self, **fields: Unpack[ContextFields]) -> AsyncTrackedMessages: ...

    class TrackedBetaMessages(BetaMessages):
        """``client.beta.messages``, tracked."""

        def with_tracking(self, **fields: Unpack[ContextFields]) -> TrackedBetaMessages: ...

    class AsyncTrackedBetaMessages(AsyncBetaMessages):
        """``async_client.beta.messages``, tracked."""

        def with_tracking(self, **fields: Unpack[ContextFields]) -> AsyncTrackedBetaMessages: ...

    class TrackedBeta(Beta):
        """``client.beta``, tracked."""

        @property
        def messages(self) -> TrackedBetaMessages: ...

    class AsyncTrackedBeta(AsyncBeta):
        """``async_client.beta``, tracked."""

        @property
        def messages(self) -> AsyncTrackedBetaMessages: ...

else:
    TrackedMessages = AsyncTrackedMessages = TrackedBetaMessages = AsyncTrackedBetaMessages = _TrackedMessages
    TrackedBeta = AsyncTrackedBeta = _TrackedResource


@overload
def create_anthropic_cost_tracker(client: Anthropic, fg: FluxGate) -> TrackedClient[TrackedMessages, TrackedBeta]: ...
@overload
def create_anthropic_cost_tracker(
    client: AsyncAnthropic, fg: FluxGate
) -> TrackedClient[AsyncTrackedMessages, AsyncTrackedBeta]: ...
@overload
def create_anthropic_cost_tracker(client: object, fg: FluxGate) -> TrackedClient[Any, Any]: ...
def create_anthropic_cost_tracker(client: object, fg: FluxGate) -> TrackedClient[Any, Any]:
    """Wrap an anthropic client so its calls are recorded to ``fg``.

    Works with ``Anthropic``, ``AsyncAnthropic`` and the platform clients
    (Bedrock, Vertex...). The client itself is not modified: calls made on it
    directly are tracked only as ``fluxgate.init()`` arranges. The patch
    fluxgate installs for ``init()`` is installed here too (once; it is a
    no-op when no tracker is active), unless ``FLUXGATE_DISABLED`` is set, in
    which case calls pass straight through.

    Args:
        client: An anthropic client.
        fg: Where the events go: what :func:`fluxgate.init` returns, or a
            :class:`~fluxgate.FluxGate` you built.

    Raises:
        TypeError: ``client`` is not an anthropic client or ``fg`` is not a FluxGate.

    >>> import fluxgate
    >>> from fluxgate.testing import FakeAnthropicAPI, MemorySink
    >>> fg = fluxgate.FluxGate(sinks=[MemorySink()])
    >>> anthropic = create_anthropic_cost_tracker(FakeAnthropicAPI().client(), fg)
    >>> message = anthropic.with_context(feature="summarization").messages.create(
    ...     model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
    >>> message.fluxgate_cost_tracking_response.status
    <Status.SUCCESS: 'SUCCESS'>
    >>> fg.shutdown()
    True
    """
    if not isinstance(fg, FluxGate):
        msg = (
            f"'fg' must be a fluxgate.FluxGate (got {fg!r} that is a {type(fg).__name__}); "
            "pass what fluxgate.init() returns, or fluxgate.FluxGate(...)."
        )
        raise TypeError(msg)
    if isinstance(client, (TrackedClient, TrackedSession)) or not hasattr(client, "messages"):
        msg = (
            f"'client' must be an anthropic client such as anthropic.Anthropic() "
            f"(got {client!r} that is a {type(client).__name__})."
        )
        raise TypeError(msg)
    _ensure_instrumented()
    return TrackedClient(client, fg)
