"""OTelSink, checked with the SDK's in-memory span exporter and metric reader."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fluxgate import ConfigurationError, Status, TransientSinkError
from fluxgate._delivery.flusher import Flusher
from fluxgate._recording import PendingEvent

from .conftest import make_event, make_events, make_pending

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fluxgate.sinks import OTelSink

REPO = Path(__file__).resolve().parents[2]


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Data points by metric name."""
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


class FailingExporter(SpanExporter):
    """Fails the first ``failures`` exports, then keeps the spans."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.spans: list[Any] = []

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if self.failures:
            self.failures -= 1
            return SpanExportResult.FAILURE
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class TestSpans:
    def test_one_span_per_event_with_genai_attributes(self) -> None:
        """Each event becomes a CLIENT span with gen_ai.* and fluxgate.* attributes."""
        exporter = InMemorySpanExporter()
        sink = OTelSink(span_exporter=exporter)
        event = make_event(
            input_tokens=100,
            cache_creation_input_tokens=20,
            cache_read_input_tokens=300,
            output_tokens=50,
            stop_reason="end_turn",
            conversation_id="c1",
            user_id="u1",
            metadata={"plan": "pro", "ids": [1, 2]},
            cost_usd=Decimal("0.0123456789"),
        )
        sink.write([event, make_event()])
        spans = exporter.get_finished_spans()
        assert len(spans) == 2
        span = spans[0]
        assert span.name == "chat claude-sonnet-4-6"
        assert span.kind is trace.SpanKind.CLIENT
        attributes = dict(span.attributes or {})
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == "anthropic"
        assert attributes["gen_ai.request.model"] == "claude-sonnet-4-6"
        assert attributes["gen_ai.usage.input_tokens"] == 420  # inclusive, as the conventions define it
        assert attributes["gen_ai.usage.cache_creation.input_tokens"] == 20
        assert attributes["gen_ai.usage.cache_read.input_tokens"] == 300
        assert attributes["fluxgate.input_tokens"] == 100  # Anthropic's own, exclusive figure
        assert attributes["gen_ai.usage.output_tokens"] == 50
        assert attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
        assert attributes["gen_ai.conversation.id"] == "c1"
        assert attributes["fluxgate.tracking_id"] == event.tracking_id
        assert attributes["fluxgate.cost_usd"] == pytest.approx(0.0123456789)
        assert attributes["fluxgate.cost_usd_exact"] == "0.0123456789"
        assert attributes["fluxgate.feature"] == "summarize"
        assert attributes["fluxgate.user_id"] == "u1"
        assert attributes["fluxgate.metadata.plan"] == "pro"
        assert attributes["fluxgate.metadata.ids"] == "[1, 2]"
        assert span.start_time == event.created_at * 1_000_000
        assert span.end_time == span.start_time + int(812.5 * 1_000_000)
        assert span.parent is None

    def test_never_sampled_away(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The sink's own provider keeps every span whatever sampler the environment names."""
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
        exporter = InMemorySpanExporter()
        OTelSink(span_exporter=exporter).write(make_events(3))
        assert len(exporter.get_finished_spans()) == 3

    def test_errors_set_the_span_status(self) -> None:
        """An ERROR event gives an error span with error.type."""
        exporter = InMemorySpanExporter()
        OTelSink(span_exporter=exporter).write([make_event(status=Status.ERROR, error_type="overloaded_error")])
        (span,) = exporter.get_finished_spans()
        assert span.status.status_code is trace.StatusCode.ERROR
        assert (span.attributes or {})["error.type"] == "overloaded_error"

    def test_platform_maps_to_provider(self) -> None:
        """Bedrock and Vertex calls name their provider as the conventions do."""
        exporter = InMemorySpanExporter()
        OTelSink(span_exporter=exporter).write([make_event(platform="bedrock"), make_event(platform="vertex")])
        providers = [(s.attributes or {})["gen_ai.provider.name"] for s in exporter.get_finished_spans()]
        assert providers == ["aws.bedrock", "gcp.vertex_ai"]

    def test_your_own_tracer_provider(self) -> None:
        """Spans go through a provider you pass; close() flushes it but leaves it running."""
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        sink = OTelSink(tracer_provider=provider, meter_provider=MeterProvider())
        sink.write(make_events(3))
        sink.close()
        assert len(exporter.get_finished_spans()) == 3
        provider.get_tracer("after").start_span("still works").end()
        assert len(exporter.get_finished_spans()) == 4

    def test_failed_export_is_transient_and_never_double_counts(self) -> None:
        """A failed export raises TransientSinkError and records no metric until it succeeds."""
        exporter, reader = FailingExporter(failures=1), InMemoryMetricReader()
        sink = OTelSink(span_exporter=exporter, metric_reader=reader)
        batch = [make_event(cost_usd=Decimal("0.5"))]
        with pytest.raises(TransientSinkError):
            sink.write(batch)
        assert "fluxgate.cost" not in metric_points(reader)
        sink.write(batch)
        (point,) = metric_points(reader)["fluxgate.cost"]
        assert point.value == pytest.approx(0.5)
        assert len(exporter.spans) == 1

    def test_through_the_flusher(self) -> None:
        """With the flusher, a failed export is retried and every span arrives."""
        exporter = FailingExporter(failures=2)
        f = Flusher([OTelSink(span_exporter=exporter)], flush_interval_s=60)
        events = make_events(12)
        for event in events:
            f.submit(event)
        assert f.flush(10)
        ids = [(s.attributes or {})["fluxgate.tracking_id"] for s in exporter.spans]
        assert ids == [e.tracking_id for e in events]
        assert f.close(5)


class TestMetrics:
    def test_cost_counter_by_feature_and_model(self) -> None:
        """fluxgate.cost adds up USD per feature and model."""
        reader = InMemoryMetricReader()
        sink = OTelSink(span_exporter=InMemorySpanExporter(), metric_reader=reader)
        sink.write(
            [
                make_event(feature="a", cost_usd=Decimal("0.25")),
                make_event(feature="a", cost_usd=Decimal("0.5")),
                make_event(feature="b", model="claude-haiku-4-5", cost_usd=Decimal("1")),
                make_event(feature="b", cost_usd=None, cost_status="unpriced_model"),
            ]
        )
        points = metric_points(reader)
        costs = {
            (p.attributes["fluxgate.feature"], p.attributes["gen_ai.request.model"]): p.value
            for p in points["fluxgate.cost"]
        }
        assert costs == {("a", "claude-sonnet-4-6"): 0.75, ("b", "claude-haiku-4-5"): 1.0}
        tokens = {
            (p.attributes["fluxgate.feature"], p.attributes["gen_ai.token.type"])
            for p in points["gen_ai.client.token.usage"]
        }
        assert ("a", "input") in tokens
        assert ("b", "output") in tokens
        assert "gen_ai.client.operation.duration" in points

    def test_your_own_meter_provider(self) -> None:
        """Metrics go to a meter provider you pass."""
        reader = InMemoryMetricReader()
        sink = OTelSink(span_exporter=InMemorySpanExporter(), meter_provider=MeterProvider(metric_readers=[reader]))
        sink.write([make_event(cost_usd=Decimal("2"))])
        assert metric_points(reader)["fluxgate.cost"][0].value == 2.0


class TestIsolation:
    def test_never_installs_a_global_provider(self) -> None:
        """Building and using the sink leaves the global tracer and meter providers alone."""
        code = (
            "from opentelemetry import trace, metrics\n"
            "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
            "from fluxgate.sinks import OTelSink\n"
            "from tests.sinks.conftest import make_events\n"
            "sink = OTelSink(span_exporter=InMemorySpanExporter())\n"
            "sink.write(make_events(2)); sink.close()\n"
            "assert type(trace.get_tracer_provider()).__name__ == 'ProxyTracerProvider'\n"
            "assert type(metrics.get_meter_provider()).__name__ == '_ProxyMeterProvider'\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)

    def test_import_fluxgate_does_not_import_opentelemetry(self) -> None:
        """import fluxgate and fluxgate.sinks leave opentelemetry unimported."""
        code = (
            "import sys, fluxgate, fluxgate.sinks\n"
            "assert not [m for m in sys.modules if m.startswith('opentelemetry')]\n"
            "fluxgate.sinks.OTelSink\n"
            "assert 'fluxgate.sinks.otel' in sys.modules\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)

    def test_needs_a_destination(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without a provider, an exporter or the OTLP package there is nowhere to send spans."""
        from fluxgate.sinks import otel

        monkeypatch.setattr(otel, "_otlp", lambda: None)
        with pytest.raises(ConfigurationError, match="span_exporter"):
            OTelSink()

    def test_missing_sdk(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without opentelemetry-sdk the message says which extra to install."""
        monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
        with pytest.raises(ConfigurationError, match=r"fluxgate\[otel\]"):
            OTelSink(span_exporter=InMemorySpanExporter())


def caller_context() -> Any:
    """The context a call keeps when it is made (``PendingEvent.current_trace``, set by the sink)."""
    getter = PendingEvent.current_trace
    assert getter is not None
    return getter()


class TestTraceJoining:
    """A call's span joins the trace that was current when the call was made."""

    def app_tracer(self) -> tuple[Any, InMemorySpanExporter]:
        """The application's own tracer (never global), exporting to memory."""
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return provider.get_tracer("app"), exporter

    def test_span_is_a_child_of_the_callers_span(self) -> None:
        """The event's span has the application's span current at call time as its parent, in the same trace."""
        exporter = InMemorySpanExporter()
        sink = OTelSink(span_exporter=exporter)
        tracer, _ = self.app_tracer()
        with tracer.start_as_current_span("handle request") as request_span:
            pending = make_pending()
            pending.trace_parent = caller_context()  # what Call does when a call is made
        outside = make_pending()
        f = Flusher([sink], flush_interval_s=60)
        f.submit(pending)
        f.submit(outside)
        assert f.flush(10)
        joined, alone = exporter.get_finished_spans()
        app = request_span.get_span_context()
        assert joined.parent is not None
        assert (joined.parent.trace_id, joined.parent.span_id) == (app.trace_id, app.span_id)
        assert joined.context.trace_id == app.trace_id
        assert (joined.attributes or {})["fluxgate.tracking_id"] == pending.tracking_id
        assert alone.parent is None
        assert alone.context.trace_id != app.trace_id
        f.close(5)

    def test_context_is_captured_when_the_call_is_made(self) -> None:
        """The parent is the span current when the call was made, not when the event is written."""
        exporter = InMemorySpanExporter()
        sink = OTelSink(span_exporter=exporter)
        tracer, _ = self.app_tracer()
        with tracer.start_as_current_span("first") as first:
            pending = make_pending()
            pending.trace_parent = caller_context()
        with tracer.start_as_current_span("second"):
            sink.write([pending])
        (span,) = exporter.get_finished_spans()
        assert span.parent is not None
        assert span.parent.span_id == first.get_span_context().span_id

    def test_calls_keep_no_context_once_the_sinks_are_closed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Calls capture the trace context only while an OTelSink is open."""
        from fluxgate.sinks import otel

        monkeypatch.setattr(otel, "_open_sinks", 0)  # other tests leave sinks open
        monkeypatch.setattr(PendingEvent, "current_trace", None)
        first, second = OTelSink(span_exporter=InMemorySpanExporter()), OTelSink(span_exporter=InMemorySpanExporter())
        first.close()
        assert PendingEvent.current_trace is not None
        second.close()
        assert PendingEvent.current_trace is None

    def test_tracked_call_joins_the_trace(self) -> None:
        """A real tracked call made inside an application span is recorded as that span's child."""
        import fluxgate
        from fluxgate.testing import FakeAnthropicAPI

        from ..helpers import create

        exporter = InMemorySpanExporter()
        fluxgate.init(sinks=[OTelSink(span_exporter=exporter)], flush_interval_s=60)
        tracer, _ = self.app_tracer()
        with tracer.start_as_current_span("handle request") as request_span:
            create(FakeAnthropicAPI().client())
        assert fluxgate.flush(timeout_s=10)
        (span,) = exporter.get_finished_spans()
        assert span.parent is not None
        assert span.parent.span_id == request_span.get_span_context().span_id
