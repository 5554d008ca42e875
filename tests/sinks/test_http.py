"""HTTPSink against a real server on 127.0.0.1, with scripted faults."""

from __future__ import annotations

import collections
import logging
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import attrs
import pytest

import fluxgate
from fluxgate import ConfigurationError, CostEvent, SinkError, Status, TransientSinkError
from fluxgate._delivery.flusher import Flusher
from fluxgate.sinks import HTTPSink
from fluxgate.sinks.http import retry_after_s
from fluxgate.testing import MemorySink

from .conftest import FAST, IngestServer, Reply, assert_all_arrived, make_event, make_events, reserve_port, script

KEY = "sk-fluxgate-very-secret-0123456789"


def flusher(sink: HTTPSink, **options: Any) -> Flusher:
    """A flusher with fast retries, small batches, and no timer-driven batches."""
    defaults: dict[str, Any] = {"retry": FAST, "max_batch_size": 10, "flush_interval_s": 60.0}
    return Flusher([sink], **{**defaults, **options})


class TestConfiguration:
    def test_refuses_plain_http_to_remote_host(self) -> None:
        """Plain http to a host that is not loopback is refused with a clear message."""
        with pytest.raises(ConfigurationError, match="allow_insecure_http"):
            HTTPSink("http://ingest.example.com", api_key=KEY)

    def test_insecure_http_is_an_opt_in(self) -> None:
        """allow_insecure_http=True accepts plain http to a remote host."""
        assert HTTPSink("http://10.0.0.5:8080", allow_insecure_http=True).url == "http://10.0.0.5:8080/v1/events"

    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.8.9.10", "api.localhost"])
    def test_loopback_http_is_allowed(self, host: str) -> None:
        """Plain http to a loopback host needs no opt-in."""
        assert HTTPSink(f"http://{host}:9000").url.startswith("http://")

    @pytest.mark.parametrize("url", ["ftp://example.com", "example.com", "https://", 42])
    def test_rejects_what_is_not_an_http_url(self, url: Any) -> None:
        """An endpoint that is not an http(s) URL with a host is a ConfigurationError."""
        with pytest.raises(ConfigurationError):
            HTTPSink(url)

    @pytest.mark.parametrize("key", ["", "  ", "two words", "line\nbreak", "clé", 42])
    def test_rejects_keys_that_cannot_be_a_header(self, key: Any) -> None:
        """A key that cannot travel in a header is refused without being repeated."""
        with pytest.raises(ConfigurationError) as info:
            HTTPSink("https://h.example", api_key=key)
        assert str(key) not in str(info.value) or not str(key).strip()

    @pytest.mark.parametrize("option", ["connect_timeout_s", "read_timeout_s"])
    def test_timeouts_must_be_positive(self, option: str) -> None:
        """A timeout of zero or less is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match=option):
            HTTPSink("https://h.example", **{option: 0})  # type: ignore[arg-type]

    def test_ingest_path(self) -> None:
        """The ingest path is appended once, after any base path."""
        assert HTTPSink("https://h.example/").url == "https://h.example/v1/events"
        assert HTTPSink("https://h.example/fg").url == "https://h.example/fg/v1/events"
        assert HTTPSink("https://h.example/v1/events").url == "https://h.example/v1/events"

    def test_repr_shows_the_endpoint_only(self) -> None:
        """The repr has the endpoint, but neither the key nor user info nor query."""
        sink = HTTPSink("https://user:pw@h.example/x?token=abc", api_key=KEY)
        assert repr(sink) == "HTTPSink('https://h.example/x/v1/events')"
        assert KEY not in repr(sink)
        assert KEY not in str(vars(sink).get("url"))

    def test_init_endpoint_adds_the_sink(self, ingest: IngestServer) -> None:
        """init(endpoint=...) sends to the endpoint instead of the default SQLite store."""
        fg = fluxgate.init(endpoint=ingest.url, api_key=KEY, flush_interval_s=60)
        assert [type(s).__name__ for s in fg.sinks] == ["HTTPSink"]
        events = make_events(3)
        for event in events:
            fg.record(event)
        assert fg.flush(timeout_s=10)
        assert_all_arrived(ingest, events)
        assert ingest.requests[0].headers["authorization"] == f"Bearer {KEY}"
        assert fg.stats()["sinks"]["HTTPSink"]["delivered"] == 3

    def test_init_reads_the_environment(self, ingest: IngestServer, monkeypatch: pytest.MonkeyPatch) -> None:
        """FLUXGATE_ENDPOINT and FLUXGATE_API_KEY configure the sink when no argument does."""
        monkeypatch.setenv("FLUXGATE_ENDPOINT", ingest.url)
        monkeypatch.setenv("FLUXGATE_API_KEY", KEY)
        fg = fluxgate.init()
        fg.record(make_event())
        assert fg.flush(timeout_s=10)
        assert ingest.requests[0].headers["authorization"] == f"Bearer {KEY}"

    def test_endpoint_adds_to_explicit_sinks(self, ingest: IngestServer) -> None:
        """With sinks= and endpoint= both, events go to all of them."""
        memory = MemorySink()
        fg = fluxgate.init(sinks=[memory], endpoint=ingest.url)
        assert [type(s).__name__ for s in fg.sinks] == ["MemorySink", "HTTPSink"]

    def test_api_key_without_endpoint(self) -> None:
        """An api_key with nowhere to send it is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match="endpoint"):
            fluxgate.init(api_key=KEY)

    def test_key_never_in_reprs(self, ingest: IngestServer) -> None:
        """Neither the FluxGate nor its config shows the key."""
        fg = fluxgate.init(endpoint=ingest.url, api_key=KEY)
        assert KEY not in repr(fg)
        assert KEY not in repr(fg.config)

    def test_key_never_in_logs_or_errors(self, caplog: pytest.LogCaptureFixture) -> None:
        """A server that echoes the refused key gets it back scrubbed, in errors and logs."""
        with IngestServer(api_key="the-right-key") as server:
            sink = HTTPSink(server.url, api_key=KEY)
            with pytest.raises(SinkError) as info:
                sink.write([make_event()])
            assert "401" in str(info.value)
            assert KEY not in str(info.value)
            drops: list[str] = []
            f = flusher(sink, on_drop=lambda _event, reason: drops.append(reason))
            with caplog.at_level(logging.DEBUG):
                f.submit(make_event())
                assert not f.flush(10)  # the event was dropped
                f.close(5)
        assert drops == ["rejected"]
        assert "401" in caplog.text
        assert KEY not in caplog.text


class TestRetryAfter:
    def test_seconds(self) -> None:
        """Delta-seconds are read as seconds."""
        assert retry_after_s("3") == 3.0
        assert retry_after_s(" 0.5 ") == 0.5

    def test_http_date(self) -> None:
        """An HTTP-date is read as the time left until it."""
        assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == 10.0
        assert retry_after_s("Wed, 21 Oct 2015 07:28:00 -0000", now=lambda: 1445412470.0) == 10.0

    def test_past_date_is_zero(self) -> None:
        """A date in the past means retry now."""
        assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412490.0) == 0.0

    @pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf", "-5x"])
    def test_unreadable(self, value: str | None) -> None:
        """An unreadable or absent header asks for nothing."""
        assert retry_after_s(value) is None


class TestWire:
    def test_batch_schema_and_headers(self, ingest: IngestServer) -> None:
        """A batch is versioned JSON with every event's to_dict(), gzipped, with the protocol headers."""
        events = make_events(20)
        HTTPSink(ingest.url, api_key=KEY).write(events)
        (seen,) = ingest.requests
        assert seen.body["schema_version"] == 1
        assert seen.body["sdk"]["name"] == "fluxgate-python"
        assert isinstance(seen.body["sent_at"], int)
        assert [e["tracking_id"] for e in seen.body["events"]] == [e.tracking_id for e in events]
        assert seen.headers["content-encoding"] == "gzip"
        assert seen.headers["content-type"] == "application/json"
        assert seen.headers["fluxgate-schema-version"] == "1"
        assert seen.headers["user-agent"].startswith("fluxgate-python/")
        assert len(seen.headers["idempotency-key"]) == 32
        assert_all_arrived(ingest, events)

    def test_idempotency_key_is_stable(self, ingest: IngestServer) -> None:
        """Sending the same batch twice sends the same Idempotency-Key."""
        events = make_events(2)
        sink = HTTPSink(ingest.url)
        sink.write(events)
        sink.write(events)
        sink.write(events[:1])
        keys = [seen.headers["idempotency-key"] for seen in ingest.requests]
        assert keys[0] == keys[1] != keys[2]

    def test_compression_can_be_turned_off(self, ingest: IngestServer) -> None:
        """With compress=False bodies are sent as is."""
        HTTPSink(ingest.url, compress=False).write(make_events(20))
        assert "content-encoding" not in ingest.requests[0].headers

    def test_payload_too_large_splits_the_batch(self) -> None:
        """A 413 splits the batch in halves until the server takes them."""

        def plan(index: int, events: list[dict[str, Any]]) -> Reply:
            return Reply(status=413) if len(events) > 3 else Reply()

        with IngestServer(plan) as server:
            events = make_events(10)
            HTTPSink(server.url).write(events)
            assert_all_arrived(server, events)
            assert max(seen.events for seen in server.requests if seen.status == 200) <= 3

    def test_status_codes(self) -> None:
        """408, 429 and 5xx are transient; other 4xx and 3xx are permanent."""
        replies = [Reply(status=s) for s in (408, 429, 500, 503, 400, 404, 409, 302)]
        with IngestServer(script(*replies)) as server:
            sink = HTTPSink(server.url)
            kinds = []
            for _ in replies:
                with pytest.raises(SinkError) as info:
                    sink.write([make_event()])
                kinds.append(isinstance(info.value, TransientSinkError))
        assert kinds == [True, True, True, True, False, False, False, False]

    def test_retry_after_is_passed_on(self) -> None:
        """A 429's Retry-After reaches the flusher as retry_after_s."""
        plan = script(Reply(status=429, headers={"Retry-After": "7"}))
        with IngestServer(plan) as server, pytest.raises(TransientSinkError) as info:
            HTTPSink(server.url).write([make_event()])
        assert info.value.retry_after_s == 7.0

    def test_connection_refused_is_transient(self) -> None:
        """Nobody listening is a transient error."""
        with pytest.raises(TransientSinkError, match="ConnectError"):
            HTTPSink(f"http://127.0.0.1:{reserve_port()}").write([make_event()])

    def test_read_timeout_is_transient(self) -> None:
        """A server that does not answer within read_timeout_s is a transient error."""
        with IngestServer(script(Reply(hang_s=5))) as server:
            started = time.monotonic()
            with pytest.raises(TransientSinkError, match="Timeout"):
                HTTPSink(server.url, read_timeout_s=0.2).write([make_event()])
            assert time.monotonic() - started < 2


class TestFaults:
    """Through the flusher: every event arrives, and duplicates only share a tracking_id."""

    def test_burst_of_500s_then_recovery(self) -> None:
        """Five 500s in a row are retried away and every event arrives."""
        with IngestServer(script(*[Reply(status=500)] * 5)) as server:
            f = flusher(HTTPSink(server.url))
            events = make_events(35)
            for event in events:
                f.submit(event)
            assert f.flush(10)
            assert_all_arrived(server, events)
            stats = f.snapshot()["sinks"]["HTTPSink"]
            assert stats["delivered"] == 35
            assert stats["retried"] >= 5
            assert stats["dropped"] == 0
            f.close(5)

    def test_429_with_retry_after(self) -> None:
        """After a 429 with Retry-After: 1, the next attempt waits at least a second."""
        with IngestServer(script(Reply(status=429, headers={"Retry-After": "1"}))) as server:
            f = flusher(HTTPSink(server.url))
            events = make_events(5)
            for event in events:
                f.submit(event)
            assert f.flush(10)
            first, second = server.requests[:2]
            assert first.status == 429
            assert second.at - first.at >= 0.95
            assert_all_arrived(server, events)
            f.close(5)

    def test_429_with_http_date(self) -> None:
        """A Retry-After given as an HTTP-date is honoured too."""
        when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 2))
        with IngestServer(script(Reply(status=503, headers={"Retry-After": when}))) as server:
            f = flusher(HTTPSink(server.url))
            events = make_events(3)
            for event in events:
                f.submit(event)
            assert f.flush(10)
            first, second = server.requests[:2]
            assert second.at - first.at >= 0.9  # the date has one-second resolution
            assert_all_arrived(server, events)
            f.close(5)

    def test_server_hangs_past_read_timeout(self) -> None:
        """A server that stores a batch and then hangs gets it again, under the same tracking ids."""
        with IngestServer(script(Reply(hang_s=3, stored=True), Reply(hang_s=3, stored=True))) as server:
            f = flusher(HTTPSink(server.url, read_timeout_s=0.2))
            events = make_events(25)
            for event in events:
                f.submit(event)
            assert f.flush(10)
            assert_all_arrived(server, events)
            ids = server.tracking_ids()
            assert len(ids) > len(set(ids)), "the hung batches were stored twice"
            f.close(5)

    def test_connection_refused_for_a_while(self) -> None:
        """Events sent while nobody listens arrive once the server comes up."""
        server = IngestServer(port=reserve_port())
        pauses: list[float] = []

        def sleep(seconds: float) -> None:
            pauses.append(seconds)
            if len(pauses) == 3:
                server.start()

        try:
            f = flusher(HTTPSink(server.url), sleep=sleep)
            events = make_events(15)
            for event in events:
                f.submit(event)
            assert f.flush(10)
            assert_all_arrived(server, events)
            assert f.snapshot()["sinks"]["HTTPSink"]["retried"] >= 3
            f.close(5)
        finally:
            server.stop()

    def test_400_drops_only_its_batch(self, caplog: pytest.LogCaptureFixture) -> None:
        """A batch the server refuses is dropped alone, with one log line and a counter."""

        def plan(index: int, events: list[dict[str, Any]]) -> Reply:
            poisoned = any(event["feature"] == "poison" for event in events)
            return Reply(status=400, body=b'{"error": "bad event"}') if poisoned else Reply()

        dropped: list[tuple[str, str]] = []
        with IngestServer(plan) as server, caplog.at_level(logging.WARNING, logger="fluxgate"):
            f = flusher(HTTPSink(server.url), on_drop=lambda event, reason: dropped.append((event.tracking_id, reason)))
            groups = [make_events(10) for _ in range(4)]
            groups[2][4] = make_event(feature="poison")
            for i, group in enumerate(groups):
                for event in group:
                    f.submit(event)
                assert f.flush(10) == (i != 2), "flush() is False for the flush that saw the drop"
            f.close(5)
        (refused,) = [seen for seen in server.requests if seen.status == 400]
        refused_ids = {event["tracking_id"] for event in refused.body["events"]}
        everything = [event for group in groups for event in group]
        assert groups[2][4].tracking_id in refused_ids
        assert {tracking_id for tracking_id, _ in dropped} == refused_ids
        assert {reason for _, reason in dropped} == {"rejected"}
        assert_all_arrived(server, [e for e in everything if e.tracking_id not in refused_ids])
        stats = f.snapshot()["sinks"]["HTTPSink"]
        assert stats["delivered"] + stats["dropped"] == 40
        assert (stats["dropped"], stats["failed_batches"], stats["retried"]) == (len(refused_ids), 1, 0)
        assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1
        assert "400" in caplog.text

    def test_outage_longer_than_the_queue_loses_nothing(self, tmp_path: Path) -> None:
        """During a long outage batches go to the spill file; the next start replays them."""
        with IngestServer(lambda _index, _events: Reply(status=503)) as server:
            f = flusher(HTTPSink(server.url), max_queue_size=20, spill_path=tmp_path)
            events = make_events(200)
            for i, event in enumerate(events):
                f.submit(event)
                if i % 20 == 19:
                    assert f.flush(10)
            assert f.close(5)
            stats = f.snapshot()["sinks"]["HTTPSink"]
            assert stats["spilled"] == 200
            assert stats["dropped"] == stats["delivered"] == 0
            assert stats["failed_batches"] > 0
            server.plan = script()
            again = flusher(HTTPSink(server.url), spill_path=tmp_path)
            assert again.flush(10)
            assert_all_arrived(server, events)
            assert again.snapshot()["sinks"]["HTTPSink"]["replayed"] == 200
            again.close(5)
        assert [p.name for p in tmp_path.iterdir() if p.stat().st_size] == []

    def test_spill_replays_when_the_circuit_closes(self, tmp_path: Path) -> None:
        """Spilled batches are sent as soon as a probe finds the server back."""
        down = threading.Event()
        down.set()

        def plan(index: int, events: list[dict[str, Any]]) -> Reply:
            return Reply(status=502) if down.is_set() else Reply()

        with IngestServer(plan) as server:
            f = flusher(
                HTTPSink(server.url),
                spill_path=tmp_path,
                retry=attrs.evolve(FAST, max_attempts=2, breaker_failures=2, breaker_cooldown_s=0),
            )
            events = make_events(60)
            for event in events[:50]:
                f.submit(event)
            assert f.flush(10)
            assert f.snapshot()["sinks"]["HTTPSink"]["spilled"] == 50
            down.clear()
            for event in events[50:]:
                f.submit(event)
            assert f.flush(10)
            assert_all_arrived(server, events)
            stats = f.snapshot()["sinks"]["HTTPSink"]
            assert (stats["delivered"], stats["replayed"], stats["circuit"]) == (10, 50, "closed")
            f.close(5)


class TestBounds:
    def test_dead_sink_keeps_memory_flat(self) -> None:
        """100k events against a dead endpoint: memory stays flat and every event is accounted for."""
        reasons: collections.Counter[str] = collections.Counter()
        sink = HTTPSink(f"http://127.0.0.1:{reserve_port()}", connect_timeout_s=0.5)
        f = flusher(
            sink,
            max_queue_size=500,
            max_batch_size=100,
            on_drop=lambda _event, reason: reasons.update([reason]),
            retry=attrs.evolve(FAST, breaker_cooldown_s=60, breaker_max_cooldown_s=60),
        )
        f.submit(make_event())  # warm up: the client exists and the breaker opens
        deadline = time.monotonic() + 10
        while f.snapshot()["sinks"]["HTTPSink"]["circuit"] != "open" and time.monotonic() < deadline:
            f.flush(0.05)
        assert f.snapshot()["sinks"]["HTTPSink"]["circuit"] == "open"
        tracemalloc.start()
        try:
            for i in range(100_000):  # a new event each time, as a producer makes them
                f.submit(
                    CostEvent(
                        tracking_id=f"{i:032x}",
                        created_at=i,
                        status=Status.SUCCESS,
                        cost_usd=None,
                        cost_status="unpriced_model",
                    )
                )
            assert not f.flush(0.2)  # the open circuit holds what the sink's queue has room for
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        held = f.snapshot()
        stats = held["sinks"]["HTTPSink"]
        assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"
        assert 0 < stats["queued"] <= 500
        assert held["recorded"] == 100_001 == held["queued"] + held["dropped"] + stats["queued"] + stats["dropped"]
        assert set(stats["dropped_by_reason"]) == {"sink_queue_full"}
        f.close(0.5)
        closed = f.snapshot()
        stats = closed["sinks"]["HTTPSink"]
        assert sum(reasons.values()) == 100_001 == closed["dropped"] + stats["dropped"]
        assert reasons["queue_full"] == closed["dropped_queue_full"] == closed["dropped"]
        assert reasons["shut_down"] == stats["dropped_by_reason"]["shut_down"] == held["sinks"]["HTTPSink"]["queued"]
        assert stats["delivered"] == stats["spilled"] == stats["queued"] == closed["queued"] == 0


class TestShutdown:
    def test_shutdown_against_hanging_server(self) -> None:
        """shutdown(timeout_s=1) returns within its budget though the server never answers."""
        with IngestServer(lambda _index, _events: Reply(hang_s=10)) as server:
            fg = fluxgate.init(endpoint=server.url, flush_interval_s=60)
            for event in make_events(30):
                fg.record(event)
            fg.flush(timeout_s=0.1)
            started = time.monotonic()
            ok = fluxgate.shutdown(timeout_s=1)
            elapsed = time.monotonic() - started
            assert not ok
            assert elapsed < 1.5
            stats = fg.stats()["sinks"]["HTTPSink"]
            assert stats["dropped"] == 30
            assert stats["queued"] == 0
