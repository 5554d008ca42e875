"""A finished call's facts, and the :class:`CostEvent` made from them later.

A :class:`Call` is a :class:`PendingEvent`: ``Call.event`` writes the
outcome into it on the caller's thread and hands it to the flusher, after
which nothing the flusher reads changes. Pricing it and building the event
happen on the flusher's thread, unless someone needs the cost sooner. (A
``PendingEvent`` can also be made from all its facts at once, as tests and
benchmarks do.)

Sinks that can read the facts directly (the SQLite store builds its rows from
them) never need the :class:`CostEvent`; the others share one, built once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from .._guard import swallow
from .._ids import tracking_id_text
from .._models import ContextFrame, CostEvent, CostTrackingResponse, Status, Usage, UsageFacts
from .._pricing import Figure, figure_float, figure_pico, figure_text, to_decimal
from .usage import usage_facts

if TYPE_CHECKING:
    from .._pricing import PriceTable

__all__ = ["EventSummary", "PendingEvent"]

_Priced = tuple[Decimal | None, str, Mapping[str, Decimal], str]
_Exact = tuple[Figure | None, str, Mapping[str, Figure], str]
#: (tracking id, usage, total as text or None, cost_status, component names, their texts,
#: total in pico-dollars or None, price_version): see ``PendingEvent.stored``.
_Stored = tuple[str, "Usage | UsageFacts | None", str | None, str, tuple[str, ...], tuple[str, ...], int | None, str]
_NO_USAGE = Usage()
_NO_PARTS: Mapping[str, Figure] = MappingProxyType({})


def _read_usage(raw: Any) -> UsageFacts | None:
    """The SDK's usage object read into ``UsageFacts``; None, and the fault logged, if it cannot be read."""
    try:
        return usage_facts(raw)
    except Exception as exc:  # noqa: BLE001 - an odd usage shape costs the usage, never the event
        swallow(exc)
        return None


class PendingEvent:
    """A finished call's facts, turned into its :class:`CostEvent` off the caller's thread.

    Pricing and building the event take longer than everything else fluxgate
    does during a call, so the flusher's thread does them (``materialize``).
    The cost is worked out at most once, by whoever needs it first: the
    flusher, a budget settling its reservation, or the user reading
    ``fluxgate_cost_tracking_response.cost``.
    """

    __slots__ = (
        "_event",
        "_exact",
        "_id",
        "_priced",
        "_usage",
        "aborted",
        "api",
        "batch_id",
        "context",
        "created_at",
        "custom_id",
        "error_message",
        "error_type",
        "estimated",
        "first_token_ms",
        "latency_ms",
        "model",
        "platform",
        "prices",
        "regional",
        "request_id",
        "status",
        "stop_reason",
        "stream_ms",
        "streamed",
        "trace_parent",
    )

    #: Returns the OpenTelemetry context current on the caller's thread.
    #: ``OTelSink`` sets it when it is built, so that a call made while no
    #: such sink exists never touches OpenTelemetry; ``Call`` reads it when a
    #: call is made and keeps the result in :attr:`trace_parent`.
    current_trace: ClassVar[Callable[[], Any] | None] = None

    def __init__(  # noqa: PLR0917 - built in one place, from Call.event's keywords
        self,
        prices: PriceTable,
        api: str,
        platform: str,
        streamed: bool,
        context: ContextFrame,
        created_at: int,
        regional: bool | None,
        batch_id: str | None,
        custom_id: str | None,
        tracking_id: str | int,
        status: Status,
        usage: Usage | object | None,
        model: str | None,
        stop_reason: str | None,
        request_id: str | None,
        error_type: str | None,
        error_message: str | None,
        estimated: bool,
        latency_ms: float | None,
        first_token_ms: float | None,
        stream_ms: float | None,
        aborted: bool = False,
        trace_parent: Any = None,
    ) -> None:
        self.prices = prices
        self.api = api
        self.platform = platform
        self.streamed = streamed
        self.context = context
        self.created_at = created_at
        self.regional = regional
        self.batch_id = batch_id
        self.custom_id = custom_id
        #: The tracking id, or its number (``_ids.tracking_serial``) until first read.
        self._id = tracking_id
        self.status = status
        #: A ``Usage``, or the SDK's own usage object read on first use (off
        #: the caller's thread: the caller only keeps the reference).
        self._usage = usage
        self.model = model
        self.stop_reason = stop_reason
        self.request_id = request_id
        self.error_type = error_type
        self.error_message = error_message
        self.estimated = estimated
        self.latency_ms = latency_ms
        self.first_token_ms = first_token_ms
        self.stream_ms = stream_ms
        self.aborted = aborted
        self._exact: _Exact | None = None
        self._priced: _Priced | None = None
        self._event: CostEvent | None = None
        #: The OpenTelemetry context that was current when the call was made
        #: (see :attr:`current_trace`): the parent of the sink's span.
        self.trace_parent = trace_parent

    @property
    def tracking_id(self) -> str:
        """The call's tracking id, written from its number on first read (on whichever thread reads it)."""
        found = self._id
        if type(found) is int:
            # Two threads may both get here: they write the same text.
            found = self._id = tracking_id_text(found)
        return found  # type: ignore[return-value]

    @property
    def usage(self) -> Usage | UsageFacts | None:
        """The call's usage, read from the SDK's object the first time it is asked for.

        A :class:`Usage` given at the start stays as it is; the SDK's own
        object is read into a :class:`UsageFacts` (same fields, one call).
        """
        found = self._usage
        if found is None or type(found) is Usage or type(found) is UsageFacts:
            return found
        read = self._usage = _read_usage(found)
        return read

    def exact(self) -> _Exact:
        """(total, cost_status, breakdown, price_version) with exact integer figures, computed once.

        Figures are :data:`fluxgate._pricing.bill.Figure` pairs; the SQLite
        store writes them as text without making a ``Decimal``.
        """
        exact = self._exact
        if exact is None:
            exact = self._exact = self._price()
        return exact

    def stored(self) -> _Stored:
        """What a store writes of this call beyond its plain attributes, in one call per event.

        (tracking id, usage, total as text or None, cost_status, component
        names, their texts, total in pico-dollars or None, price_version): the
        ``tracking_id`` and ``usage`` properties and the cost as ``figure_text``
        writes it. One call, because the flusher makes one row per call and
        each property read is a call of its own (about 2,000 instructions).

        The usual call (no modifier, iteration or fee) goes from its token
        counts to that text in pico-dollars and keeps nothing: a flusher
        writing it would only let its figures go again. Any other call, or one
        whose cost was read already, is priced by :meth:`exact` (and keeps it).
        """
        tracking_id: Any = self._id
        if type(tracking_id) is int:  # as the tracking_id property does
            tracking_id = self._id = tracking_id_text(tracking_id)
        usage = self._usage
        if usage is not None and type(usage) is not UsageFacts and type(usage) is not Usage:
            usage = self._usage = _read_usage(usage)  # the usage property's read, without the property
        if self._exact is None and usage is not None:
            prices = self.prices
            try:
                plain = prices.plain_text(self.model, usage, self.created_at, self.batch_id is not None, self.regional)
            except Exception as exc:  # noqa: BLE001 - exact() below prices it, or records why not
                swallow(exc)
                plain = None
            if plain is not None:
                total, names, texts, pico, status = plain
                status = "estimated_usage" if self.estimated else status
                return tracking_id, usage, total, status, names, texts, pico, prices.version
        figure, cost_status, parts, version = self.exact()
        texts = tuple(map(figure_text, parts.values()))
        if figure is None:
            return tracking_id, usage, None, cost_status, tuple(parts), texts, None, version
        return tracking_id, usage, figure_text(figure), cost_status, tuple(parts), texts, figure_pico(figure), version

    def cost(self) -> _Priced:
        """(cost_usd, cost_status, breakdown, price_version), with ``Decimal`` figures, computed once."""
        priced = self._priced
        if priced is None:
            total, status, parts, version = self.exact()
            breakdown = MappingProxyType({name: to_decimal(value) for name, value in parts.items()})
            priced = self._priced = (None if total is None else to_decimal(total), status, breakdown, version)
        return priced

    def cost_float(self) -> float | None:
        """The cost as the npm-shaped summary reports it: a float, or None."""
        try:
            total = self.exact()[0]
        except Exception as exc:  # noqa: BLE001 - reading a summary must never raise
            swallow(exc)
            return None
        return None if total is None else figure_float(total)

    def _price(self) -> _Exact:
        usage, status, prices = self.usage, self.status, self.prices
        if usage is None:
            if status in (Status.SUCCESS, Status.MAX_TOKENS, Status.CONTENT_FILTER):
                # A success without usage (legacy completions, a body never
                # read): it was billed, but we cannot know what it cost.
                return None, "unpriced_model", _NO_PARTS, prices.version
            return (0, 0), "priced", _NO_PARTS, prices.version
        try:
            cost = prices.price_exact(
                self.model, usage, at_ms=self.created_at, batch=self.batch_id is not None, regional=self.regional
            )
        except Exception as exc:  # noqa: BLE001 - keep the call on record even if pricing fails
            swallow(exc)
            return None, "unpriced_model", _NO_PARTS, prices.version
        status_of_cost = "estimated_usage" if self.estimated and cost.total is not None else cost.status
        return cost.total, status_of_cost, cost.breakdown, cost.price_version

    def materialize(self) -> CostEvent:
        """The event, priced; built once, however many sinks ask."""
        event = self._event
        if event is None:
            event = self._event = self._build()
        return event

    def _build(self) -> CostEvent:
        cost_usd, cost_status, breakdown, version = self.cost()
        ctx = self.context
        usage = self.usage if self.usage is not None else _NO_USAGE
        return CostEvent(
            tracking_id=self.tracking_id,
            created_at=self.created_at,
            status=self.status,
            cost_usd=cost_usd,
            cost_status=cost_status,  # type: ignore[arg-type]
            cost_breakdown=breakdown,
            price_version=version,
            model=self.model,
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
            batch_id=self.batch_id,
            custom_id=self.custom_id,
            aborted=self.aborted,
        )


class EventSummary(CostTrackingResponse):
    """A tracked call's ``fluxgate_cost_tracking_response``: a read-only view of its :class:`PendingEvent`.

    One is made on the caller's thread for every tracked call, so it copies
    nothing: one slot, and each field read from the facts when asked (the
    cost priced then, unless the flusher priced it already). It is a
    :class:`CostTrackingResponse` in every way a user can see: equality,
    hashing, ``repr``, and pickling and copying as a plain one.
    """

    __slots__ = ("_facts",)

    def __init__(self, facts: PendingEvent) -> None:
        self._facts = facts

    @property
    def status(self) -> Status:
        """SUCCESS, ERROR, BLOCKED, MAX_TOKENS, CONTENT_FILTER, RECITATION or MALFORMED_REQUEST."""
        return self._facts.status

    @property
    def cost(self) -> float | None:
        """The call's cost in USD, or None when it cannot be known."""
        return self._facts.cost_float()

    @property
    def tracking_id(self) -> str | None:
        """The id of the call's :class:`CostEvent`."""
        return self._facts.tracking_id

    @property
    def created_at(self) -> int | None:
        """When the call started, Unix time in milliseconds."""
        return self._facts.created_at

    @property
    def error_message(self) -> str | None:
        """The API's error message, for a failed or blocked call."""
        return self._facts.error_message
