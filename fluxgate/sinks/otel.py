"""OTelSink: each event becomes an OpenTelemetry span, and costs become metrics.

Spans follow the OpenTelemetry GenAI semantic conventions (``gen_ai.*``) and
add ``fluxgate.*`` attributes for the cost and the context. Note that
``gen_ai.usage.input_tokens`` *includes* cache reads and writes there, while
Anthropic's ``input_tokens`` does not: the span carries the inclusive sum, the
explicit ``gen_ai.usage.cache_*`` counts, and Anthropic's own figure as
``fluxgate.input_tokens``.

The sink uses providers of its own, or the ones you pass, and never installs
a global one: as soon as a global tracer provider exists, anthropic 2.x emits
a span of its own for every call (about +160 µs per call, measured).

Traces are joined: once an ``OTelSink`` exists, each call keeps the
OpenTelemetry context that was current when it was made
(``PendingEvent.trace_parent``), and its span becomes a child of the span
current then, in the application's trace. An event built without a call (a
``CostEvent`` recorded directly) starts a trace of its own.

opentelemetry is imported when the sink is built; install it with
``pip install 'fluxgate[otel]'``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from .._errors import ConfigurationError, TransientSinkError
from .._models import CostEvent, Status
from .._recording import PendingEvent
from .._store import clean_text
from .._version import __version__

__all__ = ["OTelSink", "metric_attributes", "span_attributes"]

_PROVIDERS = {"anthropic": "anthropic", "bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}

AttributeValue = str | bool | int | float | Sequence[str]


def _import_sdk() -> dict[str, Any]:
    try:
        from opentelemetry import context, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
        from opentelemetry.sdk.trace.export import SpanExportResult
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON
    except ImportError as exc:
        msg = f"OTelSink needs the OpenTelemetry SDK ({exc}); pip install 'fluxgate[otel]'."
        raise ConfigurationError(msg) from exc
    return {
        "context": context,
        "trace": trace,
        "MeterProvider": MeterProvider,
        "Resource": Resource,
        "SpanProcessor": SpanProcessor,
        "TracerProvider": TracerProvider,
        "SpanExportResult": SpanExportResult,
        "ALWAYS_ON": ALWAYS_ON,
    }


def _otlp() -> tuple[Any, Any] | None:
    """OTLP/HTTP span and metric exporters, when the exporter package is installed."""
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        return None
    return OTLPSpanExporter(), OTLPMetricExporter()


def span_attributes(event: CostEvent) -> dict[str, AttributeValue]:
    """The span attributes of ``event``: GenAI conventions plus ``fluxgate.*``."""
    cache_write = event.cache_creation_input_tokens
    cache_read = event.cache_read_input_tokens
    out: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": _PROVIDERS.get(event.platform, event.platform),
        "gen_ai.system": "anthropic",  # the attribute's name before semconv 1.37
        "gen_ai.request.stream": event.streamed,
        "gen_ai.usage.input_tokens": event.input_tokens + cache_write + cache_read,
        "gen_ai.usage.output_tokens": event.output_tokens,
        "gen_ai.usage.cache_creation.input_tokens": cache_write,
        "gen_ai.usage.cache_read.input_tokens": cache_read,
        "fluxgate.tracking_id": event.tracking_id,
        "fluxgate.status": event.status.value,
        "fluxgate.cost_status": event.cost_status,
        "fluxgate.api": event.api,
        "fluxgate.platform": event.platform,
        "fluxgate.input_tokens": event.input_tokens,
    }
    optional: dict[str, Any] = {
        "gen_ai.request.model": event.model,
        "gen_ai.response.finish_reasons": None if event.stop_reason is None else [event.stop_reason],
        "gen_ai.conversation.id": event.conversation_id,
        "gen_ai.usage.reasoning.output_tokens": event.reasoning_tokens,
        "error.type": event.error_type,
        "fluxgate.cost_usd": None if event.cost_usd is None else float(event.cost_usd),
        "fluxgate.cost_usd_exact": None if event.cost_usd is None else str(event.cost_usd),
        "fluxgate.price_version": event.price_version or None,
        "fluxgate.feature": event.feature,
        "fluxgate.step": event.step,
        "fluxgate.user_id": event.user_id,
        "fluxgate.session_id": event.session_id,
        "fluxgate.service_tier": event.service_tier,
        "fluxgate.usage_service_tier": event.usage_service_tier,
        "fluxgate.speed": event.speed,
        "fluxgate.inference_geo": event.inference_geo,
        "fluxgate.request_id": event.request_id,
        "fluxgate.batch_id": event.batch_id,
        "fluxgate.custom_id": event.custom_id,
        "fluxgate.latency_ms": event.latency_ms,
        "fluxgate.time_to_first_token_ms": event.time_to_first_token_ms,
        "fluxgate.cache_creation_5m_input_tokens": event.cache_creation_5m_input_tokens,
        "fluxgate.cache_creation_1h_input_tokens": event.cache_creation_1h_input_tokens,
        "fluxgate.web_search_requests": event.web_search_requests or None,
        "fluxgate.web_fetch_requests": event.web_fetch_requests or None,
    }
    out.update({key: value for key, value in optional.items() if value is not None})
    for key, value in (event.metadata or {}).items():
        ok = isinstance(value, (str, bool, int, float))
        out[f"fluxgate.metadata.{clean_text(key)}"] = value if ok else json.dumps(value, default=str)
    # An exporter encodes text as UTF-8, which has no form for a lone surrogate.
    return {key: clean_text(value) if isinstance(value, str) else value for key, value in out.items()}


def metric_attributes(event: CostEvent) -> dict[str, str]:
    """The attributes costs are counted by: provider, model and feature."""
    out = {"gen_ai.provider.name": _PROVIDERS.get(event.platform, event.platform)}
    if event.model is not None:
        out["gen_ai.request.model"] = event.model
    if event.feature is not None:
        out["fluxgate.feature"] = event.feature
    return out


class OTelSink:
    """Send events to OpenTelemetry: one span each, plus cost and token metrics.

    With no provider given, the sink builds SDK providers of its own (never
    global) that export through ``span_exporter`` and ``metric_reader``, or
    through OTLP/HTTP (configured by the ``OTEL_EXPORTER_OTLP_*`` variables)
    when ``opentelemetry-exporter-otlp-proto-http`` is installed. Then a batch
    counts as written only once its spans were exported, so failed exports
    are retried. With your own ``tracer_provider``, the spans go through its
    processors and ``close()`` only flushes it.

    Metrics: ``fluxgate.cost`` (counter, USD, by provider, model and feature),
    ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration``.

    Args:
        tracer_provider: Yours, used as is.
        meter_provider: Yours, used as is.
        span_exporter: Where the sink's own tracer provider exports.
        metric_reader: The sink's own meter provider's reader.
        service_name: ``service.name`` of the sink's own providers.

    Raises:
        ConfigurationError: opentelemetry-sdk is missing, or there is no way
            to export spans (no provider, no exporter, no OTLP package).

    >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    >>> sink = OTelSink(span_exporter=InMemorySpanExporter())
    """

    #: The flusher hands this sink a call's facts (``PendingEvent``), which
    #: carry the caller's trace context; a subclass that overrides ``write``
    #: gets ``CostEvent`` objects only.
    accepts_pending_events: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "write" in vars(cls):
            cls.accepts_pending_events = False

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        span_exporter: Any = None,
        metric_reader: Any = None,
        service_name: str = "fluxgate",
    ) -> None:
        sdk = _import_sdk()
        self._empty_context = sdk["context"].Context()
        _keep_trace_contexts(sdk["context"].get_current, +1)
        self._open = True
        self._span_kind = sdk["trace"].SpanKind.CLIENT
        self._error_status = sdk["trace"].Status(sdk["trace"].StatusCode.ERROR)
        self._success = sdk["SpanExportResult"].SUCCESS
        resource = sdk["Resource"].create({"service.name": service_name})
        self._own_tracer = tracer_provider is None
        self._own_meter = meter_provider is None
        self._exporter: Any = None
        self._collected: list[Any] = []
        if tracer_provider is None:
            if span_exporter is None:
                otlp = _otlp()
                if otlp is None:
                    msg = (
                        "OTelSink needs somewhere to send spans: pass tracer_provider= or span_exporter=, "
                        "or pip install opentelemetry-exporter-otlp-proto-http."
                    )
                    raise ConfigurationError(msg)
                span_exporter = otlp[0]
                if metric_reader is None and meter_provider is None:
                    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

                    metric_reader = PeriodicExportingMetricReader(otlp[1])
            self._exporter = span_exporter
            # Always on: a cost record must not be sampled away by $OTEL_TRACES_SAMPLER.
            tracer_provider = sdk["TracerProvider"](resource=resource, sampler=sdk["ALWAYS_ON"])
            tracer_provider.add_span_processor(_collector(sdk["SpanProcessor"], self._collected))
        if meter_provider is None:
            readers = [] if metric_reader is None else [metric_reader]
            meter_provider = sdk["MeterProvider"](resource=resource, metric_readers=readers)
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self._tracer = tracer_provider.get_tracer("fluxgate", __version__)
        meter = meter_provider.get_meter("fluxgate", __version__)
        self._cost = meter.create_counter("fluxgate.cost", unit="USD", description="What Anthropic API calls cost.")
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used per call."
        )
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="Duration of each call."
        )

    def __repr__(self) -> str:
        return f"OTelSink(own_providers={self._own_tracer})"

    def write(self, batch: Sequence[CostEvent | PendingEvent]) -> None:
        """Emit one span per event, export them, then record the metrics.

        Raises:
            TransientSinkError: The sink's own exporter did not succeed.
        """
        self._collected.clear()
        events: list[CostEvent] = []
        for item in batch:
            event = item if isinstance(item, CostEvent) else item.materialize()
            parent = getattr(item, "trace_parent", None)
            self._emit_span(event, self._empty_context if parent is None else parent)
            events.append(event)
        if self._exporter is not None:
            spans = list(self._collected)
            self._collected.clear()
            result = self._exporter.export(spans)
            if result != self._success:
                raise TransientSinkError(f"the span exporter returned {result!r}")
        for event in events:  # only after the spans went out, so a retry never counts twice
            self._record_metrics(event)

    def _emit_span(self, event: CostEvent, parent: Any) -> None:
        start_ns = event.created_at * 1_000_000
        end_ns = start_ns + int((event.latency_ms or 0.0) * 1_000_000)
        name = f"chat {event.model}" if event.model else "chat"
        span = self._tracer.start_span(
            name,
            context=parent,
            kind=self._span_kind,
            attributes=span_attributes(event),
            start_time=start_ns,
        )
        if event.status is Status.ERROR:
            span.set_status(self._error_status)
        span.end(end_time=end_ns)

    def _record_metrics(self, event: CostEvent) -> None:
        labels = metric_attributes(event)
        if event.cost_usd is not None:
            self._cost.add(float(event.cost_usd), labels)
        base = {**labels, "gen_ai.operation.name": "chat"}
        inclusive = event.input_tokens + event.cache_creation_input_tokens + event.cache_read_input_tokens
        self._tokens.record(inclusive, {**base, "gen_ai.token.type": "input"})
        self._tokens.record(event.output_tokens, {**base, "gen_ai.token.type": "output"})
        if event.latency_ms is not None:
            self._duration.record(event.latency_ms / 1000, base)

    def close(self) -> None:
        """Shut down the sink's own providers; only flush ones that were passed in."""
        if self._open:
            self._open = False
            _keep_trace_contexts(None, -1)
        for provider, own in ((self._tracer_provider, self._own_tracer), (self._meter_provider, self._own_meter)):
            if own:
                provider.shutdown()
            elif hasattr(provider, "force_flush"):
                provider.force_flush()
        if self._exporter is not None:
            self._exporter.shutdown()


_open_sinks = 0
_open_lock = threading.Lock()


def _keep_trace_contexts(getter: Callable[[], Any] | None, change: int) -> None:
    """While an OTelSink is open, every call keeps the trace context current when it is made."""
    global _open_sinks  # noqa: PLW0603 - one switch for the process, as PendingEvent's is
    with _open_lock:
        _open_sinks += change
        if getter is not None:
            PendingEvent.current_trace = getter
        elif _open_sinks <= 0:
            PendingEvent.current_trace = None


def _collector(base: type[Any], into: list[Any]) -> Any:
    """A span processor that keeps ended spans in ``into``, for the sink to export."""

    class _Collector(base):  # type: ignore[misc]
        def on_end(self, span: Any) -> None:
            into.append(span)

    return _Collector()
