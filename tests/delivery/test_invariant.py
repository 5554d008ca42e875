"""The accounting invariant: recorded = delivered + dropped (by reason) + spilled + still queued, for every sink.

``docs/delivery.md`` states it; these tests hold every sink fluxgate ships to
it, with and without a spill file, through outages, bad events and a full
queue, and then feed arbitrary calls and failures through the whole pipeline.
"""

from __future__ import annotations

import collections
import json
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fluxgate
from fluxgate import AiEventUser, CostEvent, SinkError, TransientSinkError
from fluxgate._delivery import Flusher
from fluxgate.sinks import HTTPSink, JSONLSink, SQLiteSink
from fluxgate.testing import FakeAnthropicAPI, FakeReply, FakeRequest, MemorySink

from ..helpers import create, message_body
from ..sinks.conftest import FAST, IngestServer, make_event, make_events

SURROGATE = json.loads('"eve\\ud800"')


def assert_accounted(snapshot: dict[str, Any], recorded: int) -> None:
    """Every recorded event is queued, dropped, delivered or spilled, for every sink; drops add up by reason."""
    assert snapshot["recorded"] == recorded
    assert sum(snapshot["dropped_by_reason"].values()) == snapshot["dropped"]
    before_sinks = snapshot["queued"] + snapshot["dropped"]
    for name, sink in snapshot["sinks"].items():
        assert sum(sink["dropped_by_reason"].values()) == sink["dropped"], name
        handled = sink["queued"] + sink["delivered"] + sink["dropped"] + sink["spilled"]
        assert before_sinks + handled == recorded, (name, snapshot)


class Outage:
    """A real sink behind a switch: while ``down`` is set every write fails as a transient error."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = threading.Event()
        # Hand the inner sink what it takes (a call's facts, for SQLite and OTel).
        self.accepts_pending_events = getattr(inner, "accepts_pending_events", False)

    def write(self, batch: Sequence[Any]) -> None:
        if self.down.is_set():
            raise TransientSinkError("down for maintenance")
        self.inner.write(batch)

    def close(self) -> None:
        self.inner.close()


class Target:
    """One kind of sink, and a way to count the distinct events that reached it."""

    def __init__(self, kind: str, directory: Path, server: IngestServer) -> None:
        self.kind = kind
        self.directory = directory
        self.server = server
        self.sink: Any
        if kind == "sqlite":
            self.sink = SQLiteSink(directory / "events.db")
        elif kind == "jsonl":
            self.sink = JSONLSink(directory / "events.jsonl")
        elif kind == "http":
            self.sink = HTTPSink(server.url)
        elif kind == "otel":
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

            from fluxgate.sinks import OTelSink

            self.exporter = InMemorySpanExporter()
            self.sink = OTelSink(span_exporter=self.exporter)
        else:
            self.sink = MemorySink()

    def arrived(self) -> set[str]:
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.directory / "events.db")
            try:
                return {row[0] for row in conn.execute("SELECT tracking_id FROM events")}
            finally:
                conn.close()
        if self.kind == "jsonl":
            lines = (self.directory / "events.jsonl").read_text().splitlines()
            return {json.loads(line)["tracking_id"] for line in lines}
        if self.kind == "http":
            return set(self.server.tracking_ids())
        if self.kind == "otel":
            return {str((span.attributes or {})["fluxgate.tracking_id"]) for span in self.exporter.get_finished_spans()}
        return {event.tracking_id for event in self.sink.events}


@pytest.fixture
def server() -> Iterator[IngestServer]:
    with IngestServer() as running:
        yield running


KINDS = ["sqlite", "jsonl", "http", "otel", "memory"]


class TestEverySink:
    @pytest.mark.parametrize("spill", [False, True], ids=["no-spill", "spill"])
    @pytest.mark.parametrize("kind", KINDS)
    def test_invariant_through_faults(self, kind: str, spill: bool, tmp_path: Path, server: IngestServer) -> None:
        """Through bad events, an outage, a full queue and a shutdown, every event is accounted for."""
        if kind == "otel":
            pytest.importorskip("opentelemetry.sdk")
        target = Target(kind, tmp_path, server)
        outage = Outage(target.sink)
        reasons: collections.Counter[str] = collections.Counter()
        f = Flusher(
            [outage],
            max_queue_size=40,
            max_batch_size=10,
            flush_interval_s=60,
            retry=attrs.evolve(FAST, breaker_cooldown_s=30, breaker_max_cooldown_s=30),
            spill_path=tmp_path / "spill" if spill else None,
            on_drop=lambda _event, reason: reasons.update([reason]),
        )
        recorded = 0

        def record(events: Sequence[CostEvent]) -> None:
            nonlocal recorded
            for event in events:
                f.submit(event)
                recorded += 1

        # Bad events among good ones: stored (a lone surrogate), or set aside where
        # they must be encoded (an object with no JSON form; OTel writes its repr).
        unwritable = 1 if kind in ("sqlite", "jsonl", "http") else 0
        batch = make_events(30)
        batch[3] = make_event(feature=SURROGATE, user=AiEventUser("u", monthly_revenue=Decimal("49")), user_id="u")
        batch[17] = make_event(metadata=MappingProxyType({"when": object()}))
        record(batch)
        assert f.flush(10) == (not unwritable)
        assert_accounted(f.snapshot(), recorded)
        # An outage longer than the queue: held, then spilled or dropped for lack of room.
        outage.down.set()
        for _ in range(6):
            record(make_events(20))
            f.flush(0.05)
        assert_accounted(f.snapshot(), recorded)
        # The intake itself overflows while nothing drains it.
        record(make_events(60))
        assert_accounted(f.snapshot(), recorded)
        f.close(0.5)
        snapshot = f.snapshot()
        assert_accounted(snapshot, recorded)
        stats = snapshot["sinks"]["Outage"]
        assert stats["queued"] == snapshot["queued"] == 0
        assert stats["delivered"] == len(target.arrived()) == 30 - unwritable
        assert reasons == collections.Counter(snapshot["dropped_by_reason"]) + collections.Counter(
            stats["dropped_by_reason"]
        )
        assert stats["dropped_by_reason"].get("unserializable", 0) == unwritable
        if spill:
            assert stats["spilled"] > 0
            assert set(stats["dropped_by_reason"]) <= {"unserializable"}
        else:
            assert stats["spilled"] == 0
            assert stats["dropped_by_reason"]["sink_queue_full"] > 0

    @pytest.mark.parametrize("kind", KINDS)
    def test_flush_is_true_only_when_all_arrived(self, kind: str, tmp_path: Path, server: IngestServer) -> None:
        """flush() returns True exactly when every event recorded before it reached the sink."""
        if kind == "otel":
            pytest.importorskip("opentelemetry.sdk")
        target = Target(kind, tmp_path, server)
        f = Flusher([target.sink], max_batch_size=10, flush_interval_s=60, retry=FAST)
        events = make_events(25)
        for event in events:
            f.submit(event)
        assert f.flush(10)
        assert target.arrived() == {event.tracking_id for event in events}
        f.submit(make_event(metadata=MappingProxyType({"when": object()})))
        assert f.flush(10) == (kind in ("otel", "memory"))  # the others cannot encode it, and say so
        assert f.flush(10)
        f.close(5)


# -- the whole pipeline, from the caller's call to the sinks, with arbitrary inputs --------------

_text = st.text(st.characters(codec=None, exclude_categories=()), min_size=1, max_size=8)
# Revenue the model accepts (0 to 1e12 USD); out-of-range values are refused at the edge (tests/test_models.py).
_revenue = st.none() | st.integers(0, 10**12) | st.decimals(0, 10**9, places=4) | st.floats(0, 1e9)
# What the API itself sends is valid UTF-8: no lone surrogates in a response's usage.
_wire_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=8)
_user = (
    st.none()
    | _text
    | st.integers(0, 10**20)
    | st.builds(AiEventUser, _text.filter(str.strip), monthly_revenue=_revenue)
)
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_context = st.fixed_dictionaries(
    {},
    optional={
        "feature": _text,
        "user": _user,
        "step": _text,
        "session_id": _text,
        "conversation_id": _text,
        "metadata": st.dictionaries(_text, _json_value, max_size=3),
    },
)
_count = st.integers(0, 10**20) | st.none() | st.just(-1) | st.text(max_size=3) | st.floats(-1e6, 1e6)
_usage = st.fixed_dictionaries(
    {"input_tokens": _count, "output_tokens": _count},
    optional={
        "cache_creation_input_tokens": _count,
        "cache_read_input_tokens": _count,
        "service_tier": st.none() | _wire_text,
        "server_tool_use": st.none() | st.fixed_dictionaries({"web_search_requests": _count}),
    },
)
# What the scripted sink does with each write, in turn; after the script, it stores.
_fault = st.sampled_from(["ok", "transient", "slow_down", "refuse", "unwritable"])


class ScriptedFaults(MemorySink):
    """Fails writes as scripted (transient, with Retry-After, refused, or a data error), then stores."""

    def __init__(self, script: Sequence[str]) -> None:
        super().__init__()
        self.script = list(script)

    def write(self, batch: Sequence[CostEvent]) -> None:
        fault = self.script.pop(0) if self.script else "ok"
        if fault == "transient":
            raise TransientSinkError("blip")
        if fault == "slow_down":
            raise TransientSinkError("slow down", retry_after_s=0.01)
        if fault == "refuse":
            raise SinkError("no")
        if fault == "unwritable":
            raise ValueError("cannot encode")
        super().write(batch)


class TestPipeline:
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        calls=st.lists(st.tuples(_context, _usage), min_size=1, max_size=12),
        script=st.lists(_fault, max_size=6),
        spill=st.booleans(),
        queue=st.integers(3, 30),
    )
    def test_anything_in_everything_accounted(
        self, calls: list[tuple[dict[str, Any], dict[str, Any]]], script: list[str], spill: bool, queue: int
    ) -> None:
        """Arbitrary contexts, usages and sink failures: every call returns its message, every event is counted."""
        with tempfile.TemporaryDirectory() as tmp:
            faulty = ScriptedFaults(script)
            reasons: collections.Counter[str] = collections.Counter()
            fg = fluxgate.init(
                sinks=[SQLiteSink(Path(tmp) / "events.db"), faulty],
                retry=attrs.evolve(FAST, breaker_cooldown_s=0.01, breaker_max_cooldown_s=0.05),
                spill_path=Path(tmp) / "spill" if spill else None,
                max_queue_size=queue,
                max_batch_size=4,
                flush_interval_s=60,
                on_drop=lambda _event, reason: reasons.update([reason]),
            )
            usages = iter([usage for _, usage in calls])

            def respond(request: FakeRequest) -> FakeReply:
                body = message_body()
                body["usage"] = next(usages)
                return FakeReply(status=200, json_body=body)

            api = FakeAnthropicAPI(responder=respond)
            client = api.client()
            made = 0
            for context, _ in calls:
                try:
                    scope = fluxgate.track_context(**context)
                except (TypeError, ValueError):  # the user's own mistake, raised at once; not a call
                    scope = fluxgate.track_context()
                with scope:
                    message = create(client)
                made += 1
                assert message.content[0].text == "ok"
            ok = fluxgate.flush(timeout_s=20)
            snapshot = fg.stats()
            assert_accounted(snapshot, made)
            drops = snapshot["dropped"] + sum(s["dropped"] for s in snapshot["sinks"].values())
            queued = snapshot["queued"] + sum(s["queued"] for s in snapshot["sinks"].values())
            assert ok == (drops == 0 and queued == 0)
            # The hook hears of every drop, those of spilled events when replayed included.
            replay_drops = sum(s["replay_dropped"] for s in snapshot["sinks"].values())
            assert sum(reasons.values()) == drops + replay_drops
            fluxgate.shutdown(timeout_s=5)
            assert_accounted(fg.stats(), made)
