"""Class-level wrapt patches of anthropic's resources, and the stream proxies.

Every patch sits in ``_TARGETS`` and ``uninstrument()`` walks the same table,
so each one has its undo. Patching the class (not a client) tracks clients
made before and after ``init()``. The wrappers read the active FluxGate on
each call: with none, they pass straight through.

The user's call always runs outside ``guarded()``: its result or exception
reaches the user untouched; only fluxgate's own bookkeeping is guarded.
"""

from __future__ import annotations

import importlib
import os
import time
import uuid
import weakref
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import wrapt

from ._context import current_context
from ._extract import StreamAccumulator, get, usage_from
from ._guard import guarded, logger, swallow
from ._models import ContextFrame, CostEvent, CostTrackingResponse, Status, Usage
from ._runtime import FluxGate, active

__all__ = ["ATTRIBUTE", "SUPPORTED_ANTHROPIC", "instrument", "is_instrumented", "uninstrument"]

#: The attribute fluxgate sets on returned messages, streams and exceptions.
ATTRIBUTE = "fluxgate_cost_tracking_response"

#: The anthropic releases fluxgate supports (checked in CI at both ends).
SUPPORTED_ANTHROPIC = ">=0.50"

_MARK = "_fluxgate_wrapper"

_STOP_STATUS = {
    "max_tokens": Status.MAX_TOKENS,
    "model_context_window_exceeded": Status.MAX_TOKENS,
    "refusal": Status.CONTENT_FILTER,
}
_MALFORMED = frozenset({400, 413, 422})
_MAX_ERROR_CHARS = 1000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _platform(instance: Any) -> str:
    client = getattr(instance, "_client", None)
    name = type(client).__name__.lower()
    for platform in ("bedrock", "vertex", "foundry"):
        if platform in name:
            return platform
    return "anthropic"


class _Call:
    """One tracked API call, from its start to its event."""

    __slots__ = ("api", "context", "created_at", "fg", "model", "platform", "response", "started", "streamed")

    def __init__(self, fg: FluxGate, api: str, instance: Any, kwargs: dict[str, Any]) -> None:
        self.fg = fg
        self.api = api
        self.context: ContextFrame = current_context()
        self.started = time.perf_counter()
        self.created_at = _now_ms()
        model = kwargs.get("model")
        self.model = model if isinstance(model, str) else None
        self.streamed = kwargs.get("stream") is True
        self.platform = _platform(instance)
        self.response: CostTrackingResponse | None = None

    def event(
        self,
        *,
        status: Status,
        usage: Usage | None,
        model: str | None,
        stop_reason: str | None = None,
        request_id: str | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
        estimated: bool = False,
        ended: float | None = None,
        first_token: float | None = None,
        first_event: float | None = None,
    ) -> CostEvent:
        """Price ``usage``, build the event, queue it and keep its summary."""
        ended = time.perf_counter() if ended is None else ended
        model = model or self.model
        cost_usd: Decimal | None
        if usage is None:
            usage = Usage()
            cost_usd, cost_status, breakdown, version = (Decimal(0), "priced", {}, self.fg.prices.version)
            if status in (Status.SUCCESS, Status.MAX_TOKENS, Status.CONTENT_FILTER):
                # A success without usage: we cannot know what it cost.
                cost_usd, cost_status = None, "unpriced_model"
        else:
            cost = self.fg.prices.price(model, usage, at_ms=self.created_at)
            cost_usd, cost_status, breakdown, version = (cost.total_usd, cost.status, cost.breakdown, cost.price_version)
            if estimated and cost_usd is not None:
                cost_status = "estimated"
        ctx = self.context
        event = CostEvent(
            tracking_id=uuid.uuid4().hex,
            created_at=self.created_at,
            status=status,
            cost_usd=cost_usd,
            cost_status=cost_status,  # type: ignore[arg-type]
            cost_breakdown=breakdown,
            price_version=version,
            model=model,
            api=self.api,
            platform=self.platform,
            streamed=self.streamed,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            cache_creation_5m_input_tokens=usage.cache_creation_5m_input_tokens,
            cache_creation_1h_input_tokens=usage.cache_creation_1h_input_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
            web_search_requests=usage.web_search_requests,
            web_fetch_requests=usage.web_fetch_requests,
            stop_reason=stop_reason,
            latency_ms=(ended - self.started) * 1000,
            time_to_first_token_ms=None if first_token is None else (first_token - self.started) * 1000,
            stream_duration_ms=None if first_event is None else (ended - first_event) * 1000,
            request_id=request_id,
            error_type=error_type,
            error_message=error_message,
            feature=ctx.feature,
            user_id=ctx.user_id,
            user=ctx.user,
            step=ctx.step,
            session_id=ctx.session_id,
            conversation_id=ctx.conversation_id,
            service_tier=ctx.service_tier,
            metadata=ctx.metadata,
            usage_service_tier=usage.service_tier,
            speed=usage.speed,
            inference_geo=usage.inference_geo,
        )
        self.fg.record(event)
        self.response = event.tracking_response
        return event

    def fail(self, exc: BaseException, usage: Usage | None = None, model: str | None = None) -> None:
        """Record an API error; hang the summary on the exception."""
        code = getattr(exc, "status_code", None)
        body = getattr(exc, "body", None)
        error = get(body, "error")
        error_type = get(error, "type")
        message = get(error, "message")
        self.event(
            status=Status.MALFORMED_REQUEST if code in _MALFORMED else Status.ERROR,
            usage=usage,
            model=model,
            request_id=_str_or_none(getattr(exc, "request_id", None)) or _header(getattr(exc, "response", None)),
            error_type=error_type if isinstance(error_type, str) else type(exc).__name__,
            error_message=(message if isinstance(message, str) else str(exc))[:_MAX_ERROR_CHARS],
            estimated=usage is not None,
        )
        _attach(exc, self.response)

    def succeed(self, message: Any) -> None:
        """Record a complete message; hang the summary on it."""
        stop_reason = get(message, "stop_reason")
        stop_reason = stop_reason if isinstance(stop_reason, str) else None
        model = get(message, "model")
        self.event(
            status=_STOP_STATUS.get(stop_reason or "", Status.SUCCESS),
            usage=usage_from(get(message, "usage")),
            model=model if isinstance(model, str) else None,
            stop_reason=stop_reason,
            request_id=_str_or_none(getattr(message, "_request_id", None)),
        )
        _attach(message, self.response)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _header(response: Any) -> str | None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    with guarded():
        return _str_or_none(headers.get("request-id"))
    return None


def _attach(obj: Any, response: CostTrackingResponse | None) -> None:
    # object.__setattr__ keeps it out of pydantic's model_dump(): the user's
    # serialised message stays exactly what anthropic returned.
    try:
        object.__setattr__(obj, ATTRIBUTE, response)
    except (AttributeError, TypeError):
        logger.debug("fluxgate: cannot attach %s to %s", ATTRIBUTE, type(obj).__name__)


# -- streams ----------------------------------------------------------------


class _StreamRecorder:
    """The state of one streamed call; never holds the stream itself."""

    __slots__ = ("acc", "call", "done", "first_event", "first_token", "request_id")

    def __init__(self, call: _Call, stream: Any) -> None:
        self.call = call
        self.acc = StreamAccumulator()
        self.done = False
        self.first_event: float | None = None
        self.first_token: float | None = None
        self.request_id = _header(getattr(stream, "response", None))

    def feed(self, event: Any) -> None:
        try:
            if self.first_event is None:
                self.first_event = time.perf_counter()
            if self.first_token is None and get(event, "type") == "content_block_delta":
                self.first_token = time.perf_counter()
            self.acc.feed(event)
        except Exception as exc:
            swallow(exc)

    def finish(self, how: str, exc: BaseException | None = None) -> None:
        """Record the event once: at the end, on close, on error or when abandoned."""
        if self.done:
            return
        self.done = True
        with guarded():
            acc = self.acc
            complete = acc.finished or (acc.saw_delta and how == "end")
            if exc is not None:
                self.call.fail(exc, usage=acc.usage(), model=acc.model)
                return
            stop = acc.stop_reason
            self.call.event(
                status=_STOP_STATUS.get(stop or "", Status.SUCCESS),
                usage=acc.usage(),
                model=acc.model,
                stop_reason=stop,
                request_id=self.request_id,
                estimated=not complete,
                first_token=self.first_token,
                first_event=self.first_event,
            )
            if how == "abandoned":
                logger.debug("fluxgate: a stream was dropped before its end; recorded the tokens seen")


class _TrackedStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """A sync ``Stream`` that records its call when it ends, once."""

    def __init__(self, stream: Any, recorder: _StreamRecorder) -> None:
        super().__init__(stream)
        self._self_recorder = recorder
        self._self_finalizer = weakref.finalize(self, recorder.finish, "abandoned")

    @property
    def fluxgate_cost_tracking_response(self) -> CostTrackingResponse | None:
        return self._self_recorder.call.response

    def __iter__(self) -> _TrackedStream:
        return self

    def __next__(self) -> Any:
        try:
            event = self.__wrapped__.__next__()
        except StopIteration:
            self._self_finalize("end")
            raise
        except Exception as exc:
            self._self_finalize("error", exc)
            raise
        self._self_recorder.feed(event)
        return event

    def _self_finalize(self, how: str, exc: BaseException | None = None) -> None:
        self._self_finalizer.detach()
        self._self_recorder.finish(how, exc)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_finalize("closed")

    def __enter__(self) -> _TrackedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_finalize("closed")


class _TrackedAsyncStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """The async twin of ``_TrackedStream``."""

    def __init__(self, stream: Any, recorder: _StreamRecorder) -> None:
        super().__init__(stream)
        self._self_recorder = recorder
        self._self_finalizer = weakref.finalize(self, recorder.finish, "abandoned")

    @property
    def fluxgate_cost_tracking_response(self) -> CostTrackingResponse | None:
        return self._self_recorder.call.response

    def __aiter__(self) -> _TrackedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            event = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_finalize("end")
            raise
        except Exception as exc:
            self._self_finalize("error", exc)
            raise
        self._self_recorder.feed(event)
        return event

    def _self_finalize(self, how: str, exc: BaseException | None = None) -> None:
        self._self_finalizer.detach()
        self._self_recorder.finish(how, exc)

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_finalize("closed")

    async def __aenter__(self) -> _TrackedAsyncStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_finalize("closed")


def _is_stream(result: Any) -> bool:
    return hasattr(result, "__next__") and hasattr(result, "response")


def _is_async_stream(result: Any) -> bool:
    return hasattr(result, "__anext__") and hasattr(result, "response")


# -- wrappers ---------------------------------------------------------------

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


def _start(api: str, instance: Any, kwargs: dict[str, Any]) -> _Call | None:
    fg = active()
    if fg is None:
        return None
    call = None
    with guarded():
        call = _Call(fg, api, instance, kwargs)
    return call


def _finish(call: _Call, result: Any) -> Any:
    """What the user gets back: the result, a tracked stream, or the result as is."""
    if _is_stream(result):
        return _TrackedStream(result, _StreamRecorder(call, result))
    if _is_async_stream(result):
        return _TrackedAsyncStream(result, _StreamRecorder(call, result))
    if get(result, "usage") is not None or get(result, "type") == "message":
        call.succeed(result)
    return result


def sync_wrapper(api: str) -> Wrapper:
    """A wrapt wrapper for a sync resource method that sends one request."""

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        call = _start(api, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except Exception as exc:
            with guarded():
                call.fail(exc)
            raise
        out = result
        with guarded():
            out = _finish(call, result)
        return out

    setattr(wrapper, _MARK, True)
    return wrapper


def async_wrapper(api: str) -> Wrapper:
    """A wrapt wrapper for an async resource method that sends one request."""

    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _start(api, instance, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except Exception as exc:
            with guarded():
                call.fail(exc)
            raise
        out = result
        with guarded():
            out = _finish(call, result)
        return out

    setattr(wrapper, _MARK, True)
    return wrapper


#: (module, class, method, wrapper). The one table ``instrument`` and
#: ``uninstrument`` both walk. Targets missing from the installed SDK are skipped.
_TARGETS: tuple[tuple[str, str, str, Wrapper], ...] = (
    ("anthropic.resources.messages.messages", "Messages", "create", sync_wrapper("messages.create")),
    ("anthropic.resources.messages.messages", "AsyncMessages", "create", async_wrapper("messages.create")),
)

_installed: list[tuple[type, str]] = []


def _resolve(module: str, cls: str) -> type | None:
    try:
        owner = getattr(importlib.import_module(module), cls, None)
    except ImportError:
        return None
    return owner if isinstance(owner, type) else None


def _wrapped_by_us(owner: type, method: str) -> bool:
    current = owner.__dict__.get(method)
    return isinstance(current, wrapt.FunctionWrapper) and getattr(current._self_wrapper, _MARK, False)


def instrument() -> bool:
    """Patch anthropic's resource classes. Safe to call again: never double-wraps.

    Returns True if anything was patched by this call.
    """
    if os.environ.get("FLUXGATE_DISABLED", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    patched = False
    for module, cls, method, wrapper in _TARGETS:
        owner = _resolve(module, cls)
        if owner is None or method not in owner.__dict__ or _wrapped_by_us(owner, method):
            continue
        wrapt.wrap_function_wrapper(owner, method, wrapper)
        _installed.append((owner, method))
        patched = True
    return patched


def uninstrument() -> None:
    """Remove every patch ``instrument()`` installed, restoring the originals."""
    while _installed:
        owner, method = _installed.pop()
        if _wrapped_by_us(owner, method):
            setattr(owner, method, owner.__dict__[method].__wrapped__)
        else:  # someone wrapped on top of us; pulling ours out would drop theirs
            logger.warning("fluxgate: %s.%s was re-patched by another library; left in place", owner.__name__, method)


def is_instrumented() -> bool:
    """True while fluxgate's patches are installed."""
    return bool(_installed)
