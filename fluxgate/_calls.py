"""One tracked API call, from its start to its one :class:`CostEvent`.

Nothing here patches anything or imports anthropic. ``_instrument`` decides
when a call starts and hands over what came back: a message, an exception, a
stream's events (``StreamRecorder``) or the bytes of a raw body the user reads
(``BodyRecorder``). This module prices that and records exactly one event per
call: every recorder finishes once, whichever of end, close, error or garbage
collection comes first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from ._budget import BudgetGuard, MemorySpendStore, Reservation, ScopeBudget, worst_case_usd
from ._context import current_scopes
from ._errors import BudgetExceeded
from ._extract import StreamAccumulator, event_type, get, usage_from
from ._guard import guarded, logger, swallow
from ._ids import new_tracking_id
from ._models import ContextFrame, CostEvent, CostTrackingResponse, Status, Usage
from ._runtime import FluxGate
from ._wire import EVENTSTREAM, SSE, EventStreamParser, SSEParser, body_kind

__all__ = [
    "ATTRIBUTE",
    "PENDING",
    "STEP",
    "BodyRecorder",
    "Call",
    "PendingEvent",
    "StepLog",
    "StreamRecorder",
    "announced",
    "attach",
    "header",
    "read_content",
]

#: The attribute fluxgate sets on returned messages, streams, responses and exceptions.
ATTRIBUTE = "fluxgate_cost_tracking_response"

STOP_STATUS = {
    "max_tokens": Status.MAX_TOKENS,
    "model_context_window_exceeded": Status.MAX_TOKENS,
    "refusal": Status.CONTENT_FILTER,
}
_MALFORMED = frozenset({400, 413, 422})
_EMPTY = ContextFrame()
_SENTINELS = frozenset({"NotGiven", "Omit"})
# Scope budgets alone still go through a guard; it has no window budgets.
_NO_BUDGETS = BudgetGuard((), MemorySpendStore())
_MAX_ERROR_CHARS = 1000
# A JSON body bigger than this is not a Message; stop buffering it.
_MAX_JSON_BYTES = 32 * 1024 * 1024
# On these platforms the id the caller sent names the price row better than
# the response's ``model`` (a Bedrock ``us.`` prefix means the regional rate).
_REQUEST_MODEL_WINS = frozenset({"bedrock", "vertex"})


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def header(response: Any, name: str = "request-id") -> str | None:
    """A header of an httpx response, or None."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    with guarded():
        return _str_or_none(headers.get(name))
    return None


def attach(obj: Any, response: CostTrackingResponse | None) -> None:
    """Hang ``response`` on ``obj`` as ``fluxgate_cost_tracking_response``, if it takes attributes."""
    # object.__setattr__ keeps it out of pydantic's model_dump(): the user's
    # serialised message stays exactly what anthropic returned.
    try:
        object.__setattr__(obj, ATTRIBUTE, response)
    except (AttributeError, TypeError):
        logger.debug("fluxgate: cannot attach %s to %s", ATTRIBUTE, type(obj).__name__)


def read_content(http: Any) -> bytes | None:
    """The body of an httpx response if it has been read (by anyone), else None; never reads it."""
    try:
        content = http.content
    except Exception:  # noqa: BLE001 - httpx raises ResponseNotRead; any failure means "not read"
        return None
    return content if isinstance(content, bytes) else None


class Call:
    """One tracked API call: who made it (context), where (platform) and what it cost.

    ``context`` is taken when the call object is made, on the caller's thread.
    ``start()`` reads the clocks; ``_instrument`` calls it when the HTTP request
    is made, which for ``messages.stream()`` is the ``with`` block's entry.
    """

    __slots__ = (
        "api",
        "batch",
        "batch_id",
        "bound",
        "context",
        "created_at",
        "custom_id",
        "fg",
        "model",
        "platform",
        "regional",
        "reservation",
        "response",
        "scope_budgets",
        "started",
        "streamed",
        "timed",
    )

    def __init__(
        self,
        fg: FluxGate,
        api: str,
        *,
        platform: str = "anthropic",
        model: object = None,
        regional: bool | None = None,
        context: ContextFrame | None = None,
        streamed: bool = False,
    ) -> None:
        self.fg = fg
        self.api = api
        self.platform = platform
        self.model = model if isinstance(model, str) else None
        self.regional = regional
        stack = current_scopes()
        top = stack[-1] if stack else None
        self.context: ContextFrame = (_EMPTY if top is None else top.merged) if context is None else context
        #: Budgets of the enclosing track_context(budget_usd=...) scopes.
        self.scope_budgets: tuple[ScopeBudget, ...] = () if top is None else top.budgets
        #: What this call holds against its budgets until its event settles it.
        self.reservation: Reservation | None = None
        self.streamed = streamed
        #: False for calls whose latency fluxgate did not see (batch results).
        self.timed = True
        self.batch = False
        self.batch_id: str | None = None
        self.custom_id: str | None = None
        #: True once an HTTP request belongs to this call (it then makes no other).
        self.bound = False
        self.started = 0.0
        self.created_at = 0
        self.response: CostTrackingResponse | None = None

    def reserve(self, body: Any, count_input: Callable[[], int | None] | None = None) -> None:
        """Hold this call's worst-case cost against every budget that applies, before it is sent.

        Raises:
            BudgetExceeded: After recording a BLOCKED event (cost 0) for it.
        """
        guard = self.fg.budget_guard
        if guard is None and not self.scope_budgets:
            return
        # The SDK leaves its NotGiven/Omit sentinels in the body it will encode.
        request = (
            {k: v for k, v in body.items() if type(v).__name__ not in _SENTINELS} if isinstance(body, Mapping) else {}
        )
        try:
            exact = None if count_input is None else count_input()
            worst = worst_case_usd(self.fg.prices, self.model, request, input_tokens=exact)
            self.reservation = (guard or _NO_BUDGETS).reserve(self.context, self.scope_budgets, worst, self.model)
        except BudgetExceeded as stop:
            self.bound = True
            self.created_at = _now_ms()
            self.started = time.perf_counter()
            self.event(
                status=Status.BLOCKED,
                usage=None,
                model=self.model,
                error_type="budget_exceeded",
                error_message=str(stop),
            )
            attach(stop, self.response)
            raise
        except Exception as exc:  # noqa: BLE001 - a fault in fluxgate must not stop the user's call
            swallow(exc)

    def start(self) -> None:
        """The request is being sent now."""
        self.bound = True
        self.started = time.perf_counter()
        self.created_at = _now_ms()

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
    ) -> None:
        """Queue this call's event and keep its summary in ``self.response``.

        Only the facts are gathered here, on the caller's thread: pricing and
        building the :class:`CostEvent` happen on the flusher's thread (see
        :class:`PendingEvent`), unless a budget needs the cost now.
        """
        ended = time.perf_counter() if ended is None else ended
        if self.model is not None and (model is None or self.platform in _REQUEST_MODEL_WINS):
            model = self.model
        pending = PendingEvent(
            self,
            new_tracking_id(),
            status,
            usage,
            model,
            stop_reason,
            request_id,
            error_type,
            error_message,
            estimated,
            (ended - self.started) * 1000 if self.timed else None,
            None if first_token is None else (first_token - self.started) * 1000,
            None if first_event is None else (ended - first_event) * 1000,
        )
        if self.reservation is not None:
            with guarded():
                self.reservation.settle(pending.cost()[0])
        self.response = CostTrackingResponse(
            status=status,
            tracking_id=pending.tracking_id,
            created_at=self.created_at,
            error_message=error_message,
            price=pending.cost_float,
        )
        self.fg.record(pending)

    def error(
        self,
        error_type: str,
        message: str,
        *,
        status: Status = Status.ERROR,
        usage: Usage | None = None,
        model: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """Record a failed call (an API error, a stream's error event, an errored batch request)."""
        self.event(
            status=status,
            usage=usage,
            model=model,
            request_id=request_id,
            error_type=error_type,
            error_message=message[:_MAX_ERROR_CHARS],
            estimated=usage is not None,
        )

    def fail(self, exc: BaseException, usage: Usage | None = None, model: str | None = None) -> None:
        """Record the exception the SDK raised; hang the summary on it."""
        code = getattr(exc, "status_code", None)
        error = get(getattr(exc, "body", None), "error")
        error_type = get(error, "type")
        message = get(error, "message")
        self.error(
            error_type if isinstance(error_type, str) else type(exc).__name__,
            message if isinstance(message, str) else str(exc),
            status=Status.MALFORMED_REQUEST if code in _MALFORMED else Status.ERROR,
            usage=usage,
            model=model,
            request_id=_str_or_none(getattr(exc, "request_id", None)) or header(getattr(exc, "response", None)),
        )
        attach(exc, self.response)

    def succeed(self, message: Any, request_id: str | None = None) -> None:
        """Record a complete response (a message, a completion, or its JSON); hang the summary on it."""
        stop_reason = _str_or_none(get(message, "stop_reason"))
        self.event(
            status=STOP_STATUS.get(stop_reason or "", Status.SUCCESS),
            usage=usage_from(get(message, "usage")),
            model=_str_or_none(get(message, "model")),
            stop_reason=stop_reason,
            request_id=request_id or _str_or_none(getattr(message, "_request_id", None)),
        )
        if not isinstance(message, dict):
            attach(message, self.response)


_Priced = tuple[Decimal | None, str, Mapping[str, Decimal], str]


class PendingEvent:
    """A finished call's facts, turned into its :class:`CostEvent` off the caller's thread.

    Pricing and building the event take longer than everything else fluxgate
    does during a call, so the flusher's thread does them (``materialize``).
    The cost is worked out at most once, by whoever needs it first: the
    flusher, a budget settling its reservation, or the user reading
    ``fluxgate_cost_tracking_response.cost``.
    """

    __slots__ = (
        "_priced",
        "call",
        "error_message",
        "error_type",
        "estimated",
        "first_token_ms",
        "latency_ms",
        "model",
        "request_id",
        "status",
        "stop_reason",
        "stream_ms",
        "tracking_id",
        "usage",
    )

    def __init__(  # noqa: PLR0917 - built in one place, from Call.event's keywords
        self,
        call: Call,
        tracking_id: str,
        status: Status,
        usage: Usage | None,
        model: str | None,
        stop_reason: str | None,
        request_id: str | None,
        error_type: str | None,
        error_message: str | None,
        estimated: bool,
        latency_ms: float | None,
        first_token_ms: float | None,
        stream_ms: float | None,
    ) -> None:
        self.call = call
        self.tracking_id = tracking_id
        self.status = status
        self.usage = usage
        self.model = model
        self.stop_reason = stop_reason
        self.request_id = request_id
        self.error_type = error_type
        self.error_message = error_message
        self.estimated = estimated
        self.latency_ms = latency_ms
        self.first_token_ms = first_token_ms
        self.stream_ms = stream_ms
        self._priced: _Priced | None = None

    def cost(self) -> _Priced:
        """(cost_usd, cost_status, breakdown, price_version), computed once."""
        priced = self._priced
        if priced is None:
            priced = self._priced = self._price()
        return priced

    def cost_float(self) -> float | None:
        """The cost as the npm-shaped summary reports it: a float, or None."""
        try:
            cost_usd = self.cost()[0]
        except Exception as exc:  # noqa: BLE001 - reading a summary must never raise
            swallow(exc)
            return None
        return None if cost_usd is None else float(cost_usd)

    def _price(self) -> _Priced:
        call, usage, status = self.call, self.usage, self.status
        prices = call.fg.prices
        if usage is None:
            if status in (Status.SUCCESS, Status.MAX_TOKENS, Status.CONTENT_FILTER):
                # A success without usage (legacy completions, a body never
                # read): it was billed, but we cannot know what it cost.
                return None, "unpriced_model", {}, prices.version
            return Decimal(0), "priced", {}, prices.version
        try:
            cost = prices.price(self.model, usage, at_ms=call.created_at, batch=call.batch, regional=call.regional)
        except Exception as exc:  # noqa: BLE001 - keep the call on record even if pricing fails
            swallow(exc)
            return None, "unpriced_model", {}, prices.version
        status_of_cost = "estimated" if self.estimated and cost.total_usd is not None else cost.status
        return cost.total_usd, status_of_cost, cost.breakdown, cost.price_version

    def materialize(self) -> CostEvent:
        """The event, priced."""
        cost_usd, cost_status, breakdown, version = self.cost()
        call, ctx = self.call, self.call.context
        usage = self.usage if self.usage is not None else _NO_USAGE
        return CostEvent(
            tracking_id=self.tracking_id,
            created_at=call.created_at,
            status=self.status,
            cost_usd=cost_usd,
            cost_status=cost_status,  # type: ignore[arg-type]
            cost_breakdown=breakdown,
            price_version=version,
            model=self.model,
            api=call.api,
            platform=call.platform,
            streamed=call.streamed,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens,
            cache_creation_5m_input_tokens=usage.cache_creation_5m_input_tokens,
            cache_creation_1h_input_tokens=usage.cache_creation_1h_input_tokens,
            cache_read_input_tokens=usage.cache_read_input_tokens,
            web_search_requests=usage.web_search_requests,
            web_fetch_requests=usage.web_fetch_requests,
            stop_reason=self.stop_reason,
            latency_ms=self.latency_ms,
            time_to_first_token_ms=self.first_token_ms,
            stream_duration_ms=self.stream_ms,
            request_id=self.request_id,
            error_type=self.error_type,
            error_message=self.error_message,
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
            batch_id=call.batch_id,
            custom_id=call.custom_id,
        )


_NO_USAGE = Usage()


#: The call a public method announced, for the HTTP request it is about to
#: send. The request hook binds it (``Call.start``) instead of making a new
#: one, so a call seen at both levels is counted once. Holds one call object,
#: never a shared container (see ``_context``).
PENDING: ContextVar[Call | None] = ContextVar("fluxgate_pending_call", default=None)


@contextmanager
def announced(call: Call) -> Iterator[None]:
    """Within the block, the next request in this thread or task belongs to ``call``."""
    token = PENDING.set(call)
    try:
        yield
    finally:
        PENDING.reset(token)


class StepLog:
    """The last call made during one step of a tool runner (to tag what the step returns)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: Call | None = None


#: Set while a tool runner takes a step; the request level notes its call here.
STEP: ContextVar[StepLog | None] = ContextVar("fluxgate_runner_step", default=None)


class StreamRecorder:
    """The state of one streamed call; never holds the stream itself."""

    __slots__ = ("acc", "call", "done", "first_event", "first_token", "request_id")

    def __init__(self, call: Call, request_id: str | None = None) -> None:
        self.call = call
        self.acc = StreamAccumulator()
        self.done = False
        self.first_event: float | None = None
        self.first_token: float | None = None
        self.request_id = request_id

    def feed(self, event: Any) -> None:
        """Take one event (an SDK model or a dict); never raises."""
        try:
            if self.first_event is None:
                self.first_event = time.perf_counter()
            kind = event_type(event)
            if kind == "content_block_delta":  # most events: nothing to fold in
                if self.first_token is None:
                    self.first_token = time.perf_counter()
                return
            if kind == "completion" and self.first_token is None:
                self.first_token = time.perf_counter()
            self.acc.feed(event, kind)
        except Exception as exc:  # noqa: BLE001 - swallow() reports it (or re-raises in debug mode)
            swallow(exc)

    def finish(self, how: str, exc: BaseException | None = None) -> None:
        """Record the event once: at the end, on close, on error or when abandoned."""
        if self.done:
            return
        self.done = True
        with guarded():
            acc = self.acc
            if exc is not None:
                self.call.fail(exc, usage=acc.usage(), model=acc.model)
                return
            complete = acc.finished or (acc.saw_delta and how == "end")
            stop = acc.stop_reason
            self.call.event(
                status=STOP_STATUS.get(stop or "", Status.SUCCESS),
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

    def error_event(self, event: Any) -> None:
        """An ``error`` event inside a stream read as bytes (the SDK would have raised)."""
        if self.done:
            return
        self.done = True
        with guarded():
            error = get(event, "error")
            self.call.error(
                _str_or_none(get(error, "type")) or "error",
                _str_or_none(get(error, "message")) or "",
                usage=self.acc.usage(),
                model=self.acc.model,
                request_id=self.request_id,
            )


class BodyRecorder:
    """Records a raw-response call from the body bytes the user reads.

    ``parse()`` may hand the same state a decoded stream instead (``stream``),
    so however the user reads the body, the call is recorded once.
    """

    __slots__ = ("_buffer", "_fed", "_parser", "call", "http", "kind", "stream")

    def __init__(self, call: Call, http: Any) -> None:
        self.call = call
        self.http = http
        self.kind = body_kind(header(http, "content-type"))
        self.stream = StreamRecorder(call, header(http))
        self._fed = False
        self._parser: SSEParser | EventStreamParser | None = None
        if self.kind == SSE:
            self._parser = SSEParser()
        elif self.kind == EVENTSTREAM:
            self._parser = EventStreamParser()
        self._buffer: bytearray | None = bytearray()

    @property
    def done(self) -> bool:
        """True once the call is recorded."""
        return self.stream.done

    def read_content(self) -> bytes | None:
        """The whole body if the HTTP response has been read (by any means), else None."""
        return read_content(self.http)

    def feed(self, chunk: bytes) -> None:
        """Bytes the user just read (decoded, in order); never raises."""
        if self.stream.done:
            return
        self._fed = True
        try:
            if self._parser is not None:
                self._dispatch(self._parser.feed(chunk))
            elif self._buffer is not None:
                self._buffer += chunk
                if len(self._buffer) > _MAX_JSON_BYTES:
                    self._buffer = None
        except Exception as exc:  # noqa: BLE001 - swallow() reports it (or re-raises in debug mode)
            swallow(exc)

    def _dispatch(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if event.get("type") == "error":
                self.stream.error_event(event)
                return
            self.stream.feed(event)

    def complete(self, content: bytes) -> None:
        """The whole body, read at once (``read()``, ``json()``...): record from it."""
        if self.stream.done:
            return
        self._fed = True
        if self._parser is not None:
            self.feed(content)
        else:
            self._buffer = bytearray(content)
        self.finish("end")

    def finish(self, how: str) -> None:
        """Record the call once, from whatever was read."""
        if self.stream.done:
            return
        if not self._fed:
            # Read some way we did not see (LegacyAPIResponse.content, http_response.read()...).
            content = self.read_content()
            if content is not None:
                self.complete(content)
                return
        if self._parser is not None:
            with guarded():
                self._dispatch(self._parser.end())
            self.stream.finish(how)
            return
        body: Any = None
        if self._buffer:
            with guarded():
                body = json.loads(bytes(self._buffer))
        self._buffer = None
        self.stream.done = True
        with guarded():
            if isinstance(body, dict) and body.get("type") == "error":
                error = body.get("error")
                self.call.error(
                    str(get(error, "type") or "error"),
                    str(get(error, "message") or ""),
                    request_id=self.stream.request_id,
                )
            elif isinstance(body, dict):
                self.call.succeed(body, request_id=self.stream.request_id)
            else:
                # Closed before the body was read: billed, but the usage is unknown.
                self.call.event(status=Status.SUCCESS, usage=None, model=None, request_id=self.stream.request_id)

    def succeed(self, message: Any) -> None:
        """``parse()`` decoded the JSON body into ``message``."""
        if self.stream.done:
            return
        self.stream.done = True
        with guarded():
            self.call.succeed(message, request_id=self.stream.request_id)
