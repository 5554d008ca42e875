"""One tracked API call, from its start to its one :class:`CostEvent`.

Nothing here patches anything or imports anthropic. ``_instrument`` decides
when a call starts and hands over what came back: a message, an exception
(or an interruption: a cancelled task, Ctrl-C), a stream's events
(``StreamRecorder``) or the bytes of a raw body the user reads
(``BodyRecorder``); the recorders live in ``readers``. A :class:`Call` turns
what it is given into exactly one event, priced later (``event``).

A call owns its state: what it knows is given to its constructor, which
``_instrument`` calls as the HTTP request is sent (the clocks start then).
A call *is* the :class:`PendingEvent` the flusher's thread receives:
``event()`` writes the outcome into it and hands it over, once, and nothing
the flusher reads changes after that. (Copying two dozen facts
into a second object was about 6 % of the request wrapper's instructions.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from time import perf_counter as _perf_counter
from time import time_ns as _time_ns
from typing import TYPE_CHECKING, Any, Protocol

from .._budget import BudgetGuard, MemorySpendStore, Reservation, ScopeBudget, estimate_input_tokens, worst_case_usd
from .._context import current_scopes as _scopes
from .._errors import BudgetExceeded
from .._guard import guarded, logger, swallow
from .._ids import tracking_serial
from .._models import TRACKING_ATTRIBUTE, ContextFrame, CostTrackingResponse, Status, Usage
from .event import EventSummary, PendingEvent
from .outcome import STOP_STATUS, SUCCESS, header, str_or_none
from .usage import detached, fields, get

if TYPE_CHECKING:
    from .._pricing import PriceTable

__all__ = ["ATTRIBUTE", "STEP", "Call", "StepLog", "Tracker", "attach"]

#: The attribute fluxgate sets on returned messages, streams, responses and exceptions.
ATTRIBUTE = TRACKING_ATTRIBUTE

_MALFORMED = frozenset({400, 413, 422})
_EMPTY = ContextFrame()
_SENTINELS = frozenset({"NotGiven", "Omit"})
# Scope budgets alone still go through a guard; it has no window budgets.
_NO_BUDGETS = BudgetGuard((), MemorySpendStore())
_MAX_ERROR_CHARS = 1000
# On these platforms the id the caller sent names the price row better than
# the response's ``model`` (a Bedrock ``us.`` prefix means the regional rate).
_REQUEST_MODEL_WINS = frozenset({"bedrock", "vertex"})
_INTERRUPTED = "the call was interrupted before its response arrived"


def attach(obj: Any, response: CostTrackingResponse | None) -> None:
    """Hang ``response`` on ``obj`` as ``fluxgate_cost_tracking_response``, if it takes attributes."""
    # object.__setattr__ keeps it out of pydantic's model_dump(): the user's
    # serialised message stays exactly what anthropic returned.
    try:
        object.__setattr__(obj, ATTRIBUTE, response)
    except (AttributeError, TypeError):
        logger.debug("fluxgate: cannot attach %s to %s", ATTRIBUTE, type(obj).__name__)


class Tracker(Protocol):
    """What a call reports to: a :class:`fluxgate.FluxGate`, seen from below."""

    @property
    def prices(self) -> PriceTable:
        """The price table events are priced with."""

    @property
    def budget_guard(self) -> BudgetGuard | None:
        """The window budgets checked before each call, if any."""

    @property
    def budget_count_tokens(self) -> bool:
        """Whether a budgeted call's input is counted by the ``count_tokens`` endpoint."""

    def record(self, event: PendingEvent) -> bool:
        """Queue a finished call's event; False if it had to be dropped."""


class Call(PendingEvent):
    """One tracked API call: who made it (context), where (platform) and what it cost.

    A call is made as its HTTP request is sent (for ``messages.stream()``, at
    the ``with`` block's entry), on the caller's thread: its context is taken
    and its clocks start then.
    A batch result is a call too (``batch_id``, ``custom_id``): billed at the
    batch rate, dated when its batch was created, with no latency of its own.

    Until ``event()``, ``model`` is the model the request named (None if it
    named none) and ``status`` is None; from then on they are the event's.
    """

    # The facts (api, platform, context, model, ...) are PendingEvent's slots.
    __slots__ = ("body", "budgeted", "reservation", "scope_budgets", "started", "tracker")

    def __init__(  # noqa: PLR0917 - positional on the request path (see _instrument.patches._bind)
        self,
        tracker: Tracker,
        api: str,
        platform: str = "anthropic",
        model: object = None,
        regional: bool | None = None,
        streamed: bool = False,
        body: Any = None,
        *,
        context: ContextFrame | None = None,
        batch_id: str | None = None,
        custom_id: str | None = None,
        created_at: int | None = None,
    ) -> None:
        self.tracker = tracker
        self.api = api
        self.platform = platform
        self.model = model if isinstance(model, str) else None
        self.regional = regional
        self.streamed = streamed
        #: The request body, kept (never copied, never recorded) to estimate the
        #: prompt of a call interrupted before its usage arrived.
        self.body = body
        stack = _scopes()
        top = stack[-1] if stack else None
        self.context: ContextFrame = (_EMPTY if top is None else top.merged) if context is None else context
        #: Budgets of the enclosing track_context(budget_usd=...) scopes.
        budgets: tuple[ScopeBudget, ...] = () if top is None else top.budgets
        self.scope_budgets = budgets
        #: Whether any budget applies to this call (window or scope).
        self.budgeted = budgets != () or tracker.budget_guard is not None
        #: What this call holds against its budgets until its event settles it.
        self.reservation: Reservation | None = None
        #: Batch results: billed at the batch rate; their latency fluxgate did not see.
        self.batch_id = batch_id
        self.custom_id = custom_id
        #: The tracing context current when the call was made (an OTelSink asked
        #: for it: PendingEvent.current_trace is set only while one is open).
        capture = PendingEvent.current_trace
        self.trace_parent: Any = None if capture is None else capture()
        #: None until the event is recorded (see ``response``).
        self.status = None  # type: ignore[assignment]
        self._exact = self._priced = self._event = None
        # A batch result is dated when its batch was created.
        self.created_at = _time_ns() // 1_000_000 if created_at is None else created_at
        self.started = _perf_counter()

    @property
    def response(self) -> CostTrackingResponse | None:
        """The call's ``fluxgate_cost_tracking_response`` once its event is recorded, else None.

        A view of the call (``EventSummary``), made when asked: the call does
        not keep it, so the two never form a reference cycle.
        """
        return None if self.status is None else EventSummary(self)

    def reserve(self, body: Any, count_input: Callable[[], int | None] | None = None) -> None:
        """Hold this call's worst-case cost against every budget that applies, before it is sent.

        Raises:
            BudgetExceeded: After recording a BLOCKED event (cost 0) for it.
        """
        if not self.budgeted:
            return
        guard = self.tracker.budget_guard
        # The SDK leaves its NotGiven/Omit sentinels in the body it will encode.
        request = (
            {k: v for k, v in body.items() if type(v).__name__ not in _SENTINELS} if isinstance(body, Mapping) else {}
        )
        try:
            exact = None if count_input is None else count_input()
            worst = worst_case_usd(self.tracker.prices, self.model, request, input_tokens=exact)
            self.reservation = (guard or _NO_BUDGETS).reserve(self.context, self.scope_budgets, worst, self.model)
        except BudgetExceeded as stop:
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

    def event(
        self,
        status: Status,
        usage: Usage | object | None,
        model: str | None,
        stop_reason: str | None = None,
        request_id: str | None = None,
        *,
        error_type: str | None = None,
        error_message: str | None = None,
        estimated: bool = False,
        aborted: bool = False,
        ended: float | None = None,
        first_token: float | None = None,
        first_event: float | None = None,
    ) -> None:
        """Write this call's outcome into it and queue it (once: a second outcome is ignored).

        Only the facts are gathered here, on the caller's thread: pricing and
        building the :class:`CostEvent` happen on the flusher's thread (see
        :class:`PendingEvent`), unless a budget needs the cost now.
        """
        if self.status is not None:
            logger.debug("fluxgate: %s was recorded already; a second outcome (%s) is ignored", self.api, status)
            return
        ended = _perf_counter() if ended is None else ended
        started = self.started
        if self.model is not None and (model is None or self.platform in _REQUEST_MODEL_WINS):
            model = self.model
        self.prices = self.tracker.prices
        self._id = tracking_serial()
        self._usage = usage
        self.model = model
        self.stop_reason = stop_reason
        self.request_id = request_id
        self.error_type = error_type
        self.error_message = error_message
        self.estimated = estimated
        self.latency_ms = (ended - started) * 1000 if self.batch_id is None else None
        self.first_token_ms = None if first_token is None else (first_token - started) * 1000
        self.stream_ms = None if first_event is None else (ended - first_event) * 1000
        self.aborted = aborted
        self.status = status
        self.body = None  # the prompt is not needed once the event is made
        if self.reservation is not None:
            with guarded():
                self.reservation.settle(self.cost()[0])
            self.reservation = None  # settled: the budgets' state need not live as long as the summary
        self.tracker.record(self)

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
        """Record the exception the SDK raised; hang the summary on it.

        A ``BaseException`` that is not an ``Exception`` (``CancelledError``,
        ``KeyboardInterrupt``, ``SystemExit``) is an interruption, not an
        error of the call: see :meth:`interrupt`.
        """
        if not isinstance(exc, Exception):
            self.interrupt(exc)
            return
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
            request_id=str_or_none(getattr(exc, "request_id", None)) or header(getattr(exc, "response", None)),
        )
        attach(exc, self.response)

    def interrupt(self, exc: BaseException) -> None:
        """Record a call interrupted before its response arrived (a cancelled task, Ctrl-C).

        The request may have reached the API, which bills the prompt it read:
        the event carries the prompt's estimate, marked estimated and aborted,
        so the budget reservation settles at that instead of the worst case.
        Nothing is hung on ``exc``: it propagates exactly as raised.
        """
        self.event(
            status=Status.ERROR,
            usage=self.prompt_usage(),
            model=None,
            error_type=type(exc).__name__,
            error_message=_INTERRUPTED,
            estimated=True,
            aborted=True,
        )

    def prompt_usage(self) -> Usage | None:
        """The usage of the prompt alone, estimated from the request body (None without one)."""
        body = self.body
        if not isinstance(body, Mapping):
            return None
        request = {k: v for k, v in body.items() if type(v).__name__ not in _SENTINELS}
        return Usage(input_tokens=estimate_input_tokens(request))

    def succeed(self, message: Any, request_id: str | None = None) -> None:
        """Record a complete response (a message, a completion, or its JSON); hang the summary on it."""
        # A message's fields, read in one go from its __dict__ (pydantic keeps its declared
        # fields there, and the request id the SDK sets on it; attribute reads pass
        # pydantic's __getattr__ hook). A field it does not declare is in its extras.
        own = message if type(message) is dict else getattr(message, "__dict__", None)
        found = own if type(own) is dict and "usage" in own else fields(message)
        if found is None:  # neither a dict nor a model: attribute by attribute
            stop_reason, usage, model = (get(message, name) for name in ("stop_reason", "usage", "model"))
            sent_as = getattr(message, "_request_id", None)
        else:
            stop_reason, usage, model = found.get("stop_reason"), found.get("usage"), found.get("model")
            sent_as = found.get("_request_id")
        if request_id is None:
            request_id = sent_as if isinstance(sent_as, str) else None
        stop_reason = stop_reason if type(stop_reason) is str else str_or_none(stop_reason)
        self.event(
            STOP_STATUS.get(stop_reason, SUCCESS) if stop_reason else SUCCESS,
            detached(usage),  # read on the flusher's thread (PendingEvent.usage)
            model if isinstance(model, str) else None,
            stop_reason,
            request_id,
        )
        if not isinstance(message, dict):
            summary = EventSummary(self)  # self.response, known to be recorded now
            if type(own) is dict:
                # attach()'s object.__setattr__, on the __dict__ read above (the SDK's
                # message classes define no such attribute): one per tracked call.
                own[ATTRIBUTE] = summary
            else:
                attach(message, summary)


class StepLog:
    """The last call made during one step of a tool runner (to tag what the step returns)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: Call | None = None


#: Set while a tool runner takes a step; the request level notes its call here.
STEP: ContextVar[StepLog | None] = ContextVar("fluxgate_runner_step", default=None)
