"""Class-level wrapt patches of anthropic, and ``instrument()`` / ``uninstrument()``.

Every patch sits in ``TARGETS`` and ``uninstrument()`` walks the same table,
so each one has its undo. Patching classes (never clients) tracks clients made
before and after ``init()``. The wrappers read the active FluxGate on each
call: with none, they pass straight through.

Tracking works at two levels of the SDK, so that no path to Claude is missed
and none is counted twice:

1. **The HTTP request.** ``SyncAPIClient.request`` and ``AsyncAPIClient.request``
   see every API call of every client (first-party, Bedrock, Vertex, ...)
   exactly once; retries happen inside them. A request that ``_paths.route``
   calls billable (``POST /v1/messages``, ``/v1/complete``) is one call and
   gives one event; ``POST /v1/messages/batches`` stores the caller's context.
   This level alone already catches the paths that bypass ``create``:
   ``messages.stream()``, ``messages.parse()``, ``with_raw_response`` views
   built before ``init()``, method references kept from before.
2. **The public methods** (``create``, ``stream``, ``parse``, ``tool_runner``,
   ``batches.results`` and the platform classes' own references to them).
   They *announce* a call, with its ``api`` name, the caller's context and
   tracker, in the ``PENDING`` ContextVar; the request they send binds that
   call instead of making a new one. They also wrap what the SDK hands back
   lazily: stream managers send their request in ``__enter__``, tool runners
   on each step, batch results as they are read.

The user's call always runs outside ``guarded()``: its result or exception
reaches the user untouched; only fluxgate's own bookkeeping is guarded.
See ``docs/call-paths.md`` for every path and release.
"""

from __future__ import annotations

import importlib
import inspect
import json
import threading
from collections.abc import Callable
from typing import Any

import wrapt

from .._context import current_context, current_scopes
from .._fluxgate import FluxGate, active
from .._guard import env_flag, guarded, logger
from .._models import ContextFrame
from .._recording import ATTRIBUTE, PENDING, STEP, BodyRecorder, Call, attach, get, read_content
from .batches import ResultsRecorder, remember_batch
from .responses import TrackedAPIResponse, TrackedAsyncAPIResponse, TrackedLegacyResponse
from .routes import BATCH_CREATE, Route, label, platform_of, regional_of, route
from .streams import (
    RunnerScope,
    TrackedAsyncBatchResults,
    TrackedAsyncRunner,
    TrackedAsyncStreamManager,
    TrackedBatchResults,
    TrackedRunner,
    TrackedStreamManager,
    is_async_stream,
    is_stream,
    track_stream,
)

__all__ = ["ATTRIBUTE", "SUPPORTED_ANTHROPIC", "instrument", "is_instrumented", "uninstrument"]

#: The anthropic releases fluxgate supports (checked in CI at both ends and in between).
SUPPORTED_ANTHROPIC = ">=0.50"

_MARK = "_fluxgate_wrapper"

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def _marked(wrapper: Wrapper) -> Wrapper:
    setattr(wrapper, _MARK, True)
    return wrapper


# -- level 2: public methods announce their call ------------------------------------


def _announce(fg: FluxGate, api: str, resource: Any, kwargs: dict[str, Any]) -> Call | None:
    """A call for a public method of ``resource``, or None when an outer one already stands."""
    outer = PENDING.get()
    if outer is not None and not outer.bound:
        return None  # e.g. a helper that calls create() inside: the outer method names the call
    call = None
    with guarded():
        client = getattr(resource, "_client", None)
        platform = platform_of(client)
        call = Call(fg, api, platform=platform, model=kwargs.get("model"), regional=regional_of(client, platform))
    return call


def announcing(api: str) -> Wrapper:
    """A wrapper for a sync method that sends one request right away (``create``, ``parse``)."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fg = active()
        call = None if fg is None else _announce(fg, api, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = PENDING.set(call)
        try:
            return wrapped(*args, **kwargs)
        finally:
            PENDING.reset(token)

    return _marked(wrapper)


def announcing_async(api: str) -> Wrapper:
    """The async twin of ``announcing``: the call is announced inside the awaiting task."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fg = active()
        call = None if fg is None else _announce(fg, api, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        token = PENDING.set(call)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            PENDING.reset(token)

    return _marked(wrapper)


def streaming(api: str) -> Wrapper:
    """A wrapper for ``stream()``: its manager sends the request on ``__enter__``, as this call."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fg = active()
        call = None if fg is None else _announce(fg, api, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        token = PENDING.set(call)  # in case a release sends the request right here
        try:
            manager = wrapped(*args, **kwargs)
        finally:
            PENDING.reset(token)
        out = manager
        with guarded():
            if hasattr(type(manager), "__aenter__") and not hasattr(type(manager), "__enter__"):
                out = TrackedAsyncStreamManager(manager, call)
            elif hasattr(type(manager), "__enter__"):
                out = TrackedStreamManager(manager, call)
        return out

    return _marked(wrapper)


def running(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``tool_runner()``: each step runs in the context (and for the tracker) the runner was made in."""
    fg = active()
    runner = wrapped(*args, **kwargs)
    if fg is None:
        return runner
    out = runner
    with guarded():
        scope = RunnerScope(current_scopes(), fg)
        if hasattr(type(runner), "__anext__"):
            out = TrackedAsyncRunner(runner, scope)
        elif hasattr(type(runner), "__next__"):
            out = TrackedRunner(runner, scope)
    return out


_marked(running)


def _results_recorder(fg: FluxGate, api: str, resource: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    batch_id = kwargs.get("message_batch_id", args[0] if args else None)
    if not isinstance(batch_id, str):
        return None
    return ResultsRecorder(fg, batch_id=batch_id, api=api, platform=platform_of(getattr(resource, "_client", None)))


def reading_results(api: str) -> Wrapper:
    """``batches.results()``: each result read becomes one event, once."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fg = active()
        decoder = wrapped(*args, **kwargs)
        if fg is None:
            return decoder
        out = decoder
        with guarded():
            recorder = _results_recorder(fg, api, instance, args, kwargs)
            if recorder is not None and hasattr(type(decoder), "__next__"):
                out = TrackedBatchResults(decoder, recorder)
        return out

    return _marked(wrapper)


def reading_results_async(api: str) -> Wrapper:
    """The async twin of ``reading_results``."""

    async def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fg = active()
        decoder = await wrapped(*args, **kwargs)
        if fg is None:
            return decoder
        out = decoder
        with guarded():
            recorder = _results_recorder(fg, api, instance, args, kwargs)
            if recorder is not None and hasattr(type(decoder), "__anext__"):
                out = TrackedAsyncBatchResults(decoder, recorder)
        return out

    return _marked(wrapper)


# -- level 1: the HTTP request -------------------------------------------------------


class _BatchCreation:
    """``POST /v1/messages/batches``: not billed itself; keeps the caller's context."""

    __slots__ = ("api", "body", "context", "fg", "platform")

    def __init__(self, fg: FluxGate, api: str, platform: str, body: Any, context: ContextFrame) -> None:
        self.fg, self.api, self.platform, self.body, self.context = fg, api, platform, body, context

    def fail(self, exc: BaseException) -> None:
        """A batch that was not created costs nothing and needs no context."""

    def settle(self, result: Any) -> Any:
        batch = result
        if _is_raw(result):  # with_raw_response: the batch is the JSON body, read already
            content = read_content(result.http_response)
            batch = None if content is None else json.loads(content)
        remember_batch(self.fg, batch=batch, body=self.body, api=self.api, platform=self.platform, context=self.context)
        return result


def _bind(found: Route, client: Any, options: Any, kwargs: dict[str, Any]) -> Call | _BatchCreation | None:
    """The call this request belongs to: the one announced for it, or a new one."""
    body = getattr(options, "json_data", None)
    if found.kind == BATCH_CREATE:
        fg = active()
        if fg is None:
            return None
        return _BatchCreation(fg, label(found, options), platform_of(client), body, current_context())
    call = PENDING.get()
    if call is None or call.bound:
        fg = active()
        if fg is None:
            return None
        platform = platform_of(client)
        api = label(found, options)
        call = Call(fg, api, platform=platform, model=get(body, "model"), regional=regional_of(client, platform))
    call.start(model=get(body, "model"), streamed=kwargs.get("stream") is True)
    return call


def _is_raw(result: Any) -> bool:
    """An ``APIResponse`` / ``LegacyAPIResponse`` (``with_raw_response``, ``with_streaming_response``)."""
    return _kind(result) == _RAW


def _track_raw(call: Call, response: Any) -> Any:
    """A raw response: record now if its body was read, else as the user reads it."""
    body = BodyRecorder(call, response.http_response)
    if inspect.iscoroutinefunction(getattr(type(response), "parse", None)):
        proxy: Any = TrackedAsyncAPIResponse(response, body)
    elif hasattr(response, "iter_bytes"):
        proxy = TrackedAPIResponse(response, body)
    else:
        proxy = TrackedLegacyResponse(response, body)
    content = body.read_content()
    if content is not None:  # with_raw_response without stream=True: the SDK read it already
        body.complete(content)
        attach(response, call.response)
    return proxy


_MODEL, _STREAM, _RAW = 0, 1, 2
_KINDS: dict[type, int] = {}


def _kind(result: Any) -> int:
    """What the SDK returned, by class (looked up once per class: hasattr on pydantic is slow)."""
    cls = type(result)
    kind = _KINDS.get(cls)
    if kind is None:
        if is_stream(result) or is_async_stream(result):
            kind = _STREAM
        elif hasattr(result, "http_response") and hasattr(result, "parse"):
            kind = _RAW
        else:
            kind = _MODEL
        _KINDS[cls] = kind
    return kind


def _settle(call: Call | _BatchCreation, result: Any) -> Any:
    """What the user gets back: the result, or a proxy that records it when it is read."""
    if isinstance(call, _BatchCreation):
        return call.settle(result)
    log = STEP.get()
    if log is not None:
        log.last = call
    kind = _kind(result)
    if kind == _STREAM:
        return track_stream(call, result)
    if kind == _RAW:
        return _track_raw(call, result)
    call.succeed(result)
    return result


_COUNTED_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def _count_body(call: Call, options: Any) -> dict[str, Any] | None:
    body = getattr(options, "json_data", None)
    if not call.tracker.budget_count_tokens or not isinstance(body, dict) or call.platform != "anthropic":
        return None
    if not str(getattr(options, "url", "")).startswith("/v1/messages"):
        return None
    return {k: body[k] for k in _COUNTED_FIELDS if k in body}


def _counted(response: Any) -> int | None:
    tokens = get(response, "input_tokens")
    return tokens if isinstance(tokens, int) else None


def _input_counter(call: Call, client: Any, options: Any) -> Callable[[], int | None] | None:
    """With ``budget_count_tokens``: ask the free count_tokens endpoint for the exact input."""
    body = _count_body(call, options)
    if body is None:
        return None

    def count() -> int | None:
        try:
            return _counted(client.post("/v1/messages/count_tokens", body=body, cast_to=object))
        except Exception:  # noqa: BLE001 - fall back to the estimate
            return None

    return count


async def _async_input_count(call: Call, client: Any, options: Any) -> Callable[[], int | None] | None:
    """The async twin of ``_input_counter`` (the count is fetched before the check)."""
    body = _count_body(call, options)
    if body is None:
        return None
    try:
        tokens = _counted(await client.post("/v1/messages/count_tokens", body=body, cast_to=object))
    except Exception:  # noqa: BLE001 - fall back to the estimate
        tokens = None
    return lambda: tokens


def _options(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return args[1] if len(args) > 1 else kwargs.get("options")


def _request(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``SyncAPIClient.request``: one billable request, one call."""
    options = _options(args, kwargs)
    found = route(options)
    if found is None:
        return wrapped(*args, **kwargs)
    call = None
    with guarded():
        call = _bind(found, instance, options, kwargs)
    if call is None:
        return wrapped(*args, **kwargs)
    if isinstance(call, Call) and call.budgeted:
        call.reserve(getattr(options, "json_data", None), _input_counter(call, instance, options))
    try:
        result = wrapped(*args, **kwargs)
    except Exception as exc:
        with guarded():
            call.fail(exc)
        raise
    out = result
    with guarded():
        out = _settle(call, result)
    return out


async def _arequest(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``AsyncAPIClient.request``: the async twin of ``_request``."""
    options = _options(args, kwargs)
    found = route(options)
    if found is None:
        return await wrapped(*args, **kwargs)
    call = None
    with guarded():
        call = _bind(found, instance, options, kwargs)
    if call is None:
        return await wrapped(*args, **kwargs)
    if isinstance(call, Call) and call.budgeted:
        call.reserve(getattr(options, "json_data", None), await _async_input_count(call, instance, options))
    try:
        result = await wrapped(*args, **kwargs)
    except Exception as exc:
        with guarded():
            call.fail(exc)
        raise
    out = result
    with guarded():
        out = _settle(call, result)
    return out


_marked(_request)
_marked(_arequest)


# -- the table -------------------------------------------------------------------------

_MESSAGES = "anthropic.resources.messages.messages"
_BETA = "anthropic.resources.beta.messages.messages"
_BATCHES = "anthropic.resources.messages.batches"
_BETA_BATCHES = "anthropic.resources.beta.messages.batches"
_BEDROCK_BETA = "anthropic.lib.bedrock._beta_messages"
_VERTEX_BETA = "anthropic.lib.vertex._beta_messages"


def _messages_targets(module: str, prefix: str) -> tuple[tuple[str, str, str, Wrapper], ...]:
    return (
        (module, "Messages", "create", announcing(f"{prefix}.create")),
        (module, "AsyncMessages", "create", announcing_async(f"{prefix}.create")),
        (module, "Messages", "stream", streaming(f"{prefix}.stream")),
        (module, "AsyncMessages", "stream", streaming(f"{prefix}.stream")),
        (module, "Messages", "parse", announcing(f"{prefix}.parse")),
        (module, "AsyncMessages", "parse", announcing_async(f"{prefix}.parse")),
        (module, "Messages", "tool_runner", running),
        (module, "AsyncMessages", "tool_runner", running),
    )


def _results_targets(module: str, prefix: str) -> tuple[tuple[str, str, str, Wrapper], ...]:
    return (
        (module, "Batches", "results", reading_results(f"{prefix}.results")),
        (module, "AsyncBatches", "results", reading_results_async(f"{prefix}.results")),
    )


#: (module, class, method, wrapper). The one table ``instrument`` and
#: ``uninstrument`` both walk. A target missing from the installed SDK (a
#: method a release does not have) is skipped; so is a class that does not
#: define the method itself (it inherits the patched one).
TARGETS: tuple[tuple[str, str, str, Wrapper], ...] = (
    ("anthropic._base_client", "SyncAPIClient", "request", _request),
    ("anthropic._base_client", "AsyncAPIClient", "request", _arequest),
    *_messages_targets(_MESSAGES, "messages"),
    *_messages_targets(_BETA, "beta.messages"),
    # Bedrock's and Vertex's beta resources copy the first-party functions into
    # their own class dicts (``create = FirstPartyMessagesAPI.create``).
    *_messages_targets(_BEDROCK_BETA, "beta.messages"),
    *_messages_targets(_VERTEX_BETA, "beta.messages"),
    *_results_targets(_BATCHES, "messages.batches"),
    *_results_targets(_BETA_BATCHES, "beta.messages.batches"),
    # Legacy text completions (anthropic < 1.0): the request level names them
    # already; the patch keeps ``completions.create`` in the table like its peers.
    ("anthropic.resources.completions", "Completions", "create", announcing("completions.create")),
    ("anthropic.resources.completions", "AsyncCompletions", "create", announcing_async("completions.create")),
)

_installed: list[tuple[type, str]] = []
_install_lock = threading.Lock()


def resolve(module: str, cls: str) -> type | None:
    try:
        owner = getattr(importlib.import_module(module), cls, None)
    except ImportError:
        return None
    return owner if isinstance(owner, type) else None


def _wrapped_by_us(owner: type, method: str) -> bool:
    current = owner.__dict__.get(method)
    return isinstance(current, wrapt.FunctionWrapper) and getattr(current._self_wrapper, _MARK, False)


def instrument(*, force: bool = False) -> bool:
    """Patch anthropic's classes. Safe to call again: never double-wraps.

    Does nothing while ``FLUXGATE_DISABLED`` is set, unless ``force`` (what
    ``capture_events()`` asks: a test that captures events needs them).
    Returns True if anything was patched by this call.
    """
    if not force and env_flag("FLUXGATE_DISABLED"):
        return False
    patched = False
    # Import every module first: a platform module imported after the
    # first-party class is patched would copy our wrapper into its own class.
    owners = [(resolve(module, cls), method, wrapper) for module, cls, method, wrapper in TARGETS]
    # init() and the facade may both install at once: check-and-wrap must be
    # atomic, or a method could be wrapped twice and its calls counted twice.
    with _install_lock:
        for owner, method, wrapper in owners:
            if owner is None or method not in owner.__dict__ or _wrapped_by_us(owner, method):
                continue
            wrapt.wrap_function_wrapper(owner, method, wrapper)
            _installed.append((owner, method))
            patched = True
    return patched


def uninstrument() -> None:
    """Remove every patch ``instrument()`` installed, restoring the originals."""
    with _install_lock:
        _uninstall()


def _uninstall() -> None:
    while _installed:
        owner, method = _installed.pop()
        if _wrapped_by_us(owner, method):
            setattr(owner, method, owner.__dict__[method].__wrapped__)
        else:  # someone wrapped on top of us; pulling ours out would drop theirs
            logger.warning("fluxgate: %s.%s was re-patched by another library; left in place", owner.__name__, method)


def is_instrumented() -> bool:
    """True while fluxgate's patches are installed."""
    return bool(_installed)
