"""The patched messages.create, end to end, over the fake transport."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import anthropic
import pytest
from anthropic._base_client import AsyncAPIClient, SyncAPIClient

import fluxgate
from fluxgate import AiEventUser, CostEvent, Status, track, track_context
from fluxgate.testing import FakeAnthropicAPI, FakeReply, FakeRequest, MemorySink, sse_body

from ..conftest import load_recording
from ..helpers import HELLO, MTOK, create, flushed, message_body, sonnet_46_cost, stream_events


class TestCalls:
    def test_sync_message(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A sync create gives one event with exact tokens, cost and context."""
        api.reply_json(message_body(input_tokens=1200, output_tokens=345))
        user = AiEventUser("u1", email="u1@example.com", monthly_revenue=49.0)
        with track_context(feature="summarize", user=user, step="draft", metadata={"doc": 7}):
            message = create(api.client())
        [event] = flushed(sink)
        assert (event.input_tokens, event.output_tokens) == (1200, 345)
        assert event.cost_usd == sonnet_46_cost(1200, 345)
        assert event.cost_status == "priced"
        assert (event.feature, event.user_id, event.user, event.step) == ("summarize", "u1", user, "draft")
        assert event.metadata == {"doc": 7}
        assert (event.model, event.api, event.streamed, event.status) == (
            "claude-sonnet-4-6",
            "messages.create",
            False,
            Status.SUCCESS,
        )
        assert event.request_id == "req_fake_000001"
        response = message.fluxgate_cost_tracking_response
        assert response.tracking_id == event.tracking_id
        assert response.cost == float(event.cost_usd)
        assert response.status is Status.SUCCESS
        assert response.created_at == event.created_at

    def test_sync_stream(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A sync stream gives one event when it ends, with the final usage."""
        api.reply_sse(sse_body(stream_events(input_tokens=50, output_tokens=70)))
        with track_context(feature="chat"):
            stream = create(api.client(), stream=True)
        assert stream.fluxgate_cost_tracking_response is None
        texts = [e.delta.text for e in stream if e.type == "content_block_delta"]
        assert texts == ["Hel", "lo"]
        [event] = flushed(sink)
        assert (event.input_tokens, event.output_tokens, event.streamed) == (50, 70, True)
        assert event.cost_usd == sonnet_46_cost(50, 70)
        assert event.feature == "chat"
        assert event.time_to_first_token_ms is not None
        assert event.stream_duration_ms is not None
        assert event.latency_ms is not None
        assert event.latency_ms >= event.time_to_first_token_ms
        assert stream.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    def test_async_message(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """An async create gives one event."""
        api.reply_json(message_body(input_tokens=10, output_tokens=20))

        async def main() -> Any:
            async with track_context(feature="async-feature"):
                return await create(api.async_client())

        message = asyncio.run(main())
        [event] = flushed(sink)
        assert (event.input_tokens, event.output_tokens, event.feature) == (10, 20, "async-feature")
        assert message.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    def test_async_stream(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """An async stream gives one event when it ends."""
        api.reply_sse(sse_body(stream_events(input_tokens=5, output_tokens=9)))

        async def main() -> Any:
            async with track_context(feature="astream"):
                stream = await create(api.async_client(), stream=True)
            async for _ in stream:
                pass
            return stream

        stream = asyncio.run(main())
        [event] = flushed(sink)
        assert (event.input_tokens, event.output_tokens, event.streamed) == (5, 9, True)
        assert event.feature == "astream"
        assert stream.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    def test_stream_as_context_manager(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """``with stream:`` fully read gives one event, not two."""
        api.reply_sse(sse_body(stream_events()))
        with create(api.client(), stream=True) as stream:
            for _ in stream:
                pass
        assert len(flushed(sink)) == 1

    def test_delta_usage_overwrites_not_sums(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """Cumulative message_delta counts overwrite message_start's, input included."""
        events = stream_events(input_tokens=727, output_tokens=143)
        events[5]["usage"] = {"input_tokens": 1595, "output_tokens": 143}
        api.reply_sse(sse_body(events))
        for _ in create(api.client(), stream=True):
            pass
        [event] = flushed(sink)
        assert (event.input_tokens, event.output_tokens) == (1595, 143)

    @pytest.mark.parametrize(
        ("stop_reason", "status"),
        [
            ("end_turn", Status.SUCCESS),
            ("tool_use", Status.SUCCESS),
            ("stop_sequence", Status.SUCCESS),
            ("pause_turn", Status.SUCCESS),
            ("max_tokens", Status.MAX_TOKENS),
            ("model_context_window_exceeded", Status.MAX_TOKENS),
            ("refusal", Status.CONTENT_FILTER),
        ],
    )
    def test_stop_reason_sets_status(
        self, api: FakeAnthropicAPI, sink: MemorySink, stop_reason: str, status: Status
    ) -> None:
        """Stop reasons map to the npm package's statuses, and are still billed."""
        api.reply_json(message_body(stop_reason=stop_reason))
        message = create(api.client())
        [event] = flushed(sink)
        assert event.status is status
        assert event.stop_reason == stop_reason
        assert event.cost_usd == sonnet_46_cost(120, 30)
        assert message.fluxgate_cost_tracking_response.status is status

    def test_request_is_not_modified(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """The request that reaches the API is exactly what the SDK sends untracked."""
        kwargs = {"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": HELLO, "metadata": {"user_id": "x"}}
        create(api.client(), **kwargs)
        fluxgate.shutdown()
        create(api.client(), **kwargs)
        tracked, untracked = api.requests
        assert tracked.body == untracked.body
        drop = {"x-stainless-retry-count", "x-stainless-read-timeout", "x-stainless-timeout"}
        assert {k: v for k, v in tracked.headers.items() if k not in drop} == {
            k: v for k, v in untracked.headers.items() if k not in drop
        }

    def test_tracking_response_not_in_serialised_message(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """The attribute never leaks into model_dump / to_json of the user's message."""
        message = create(api.client())
        assert "fluxgate" not in message.model_dump_json()
        assert message.fluxgate_cost_tracking_response is not None

    def test_context_snapshot_at_call_start(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A stream records the scope in force when the call started, not when it ends."""
        api.reply_sse(sse_body(stream_events()))
        with track_context(feature="at-start"):
            stream = create(api.client(), stream=True)
        with track_context(feature="at-end"):
            for _ in stream:
                pass
        [event] = flushed(sink)
        assert event.feature == "at-start"

    def test_decorated_endpoint(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """Calls made inside a @track function carry its fields, nested steps merged."""
        client = api.client()

        @track(step="rerank")
        def rerank() -> None:
            create(client)

        @track(feature="search", user="u2")
        def search() -> None:
            create(client)
            rerank()

        search()
        first, second = flushed(sink)
        assert (first.feature, first.step, first.user_id) == ("search", None, "u2")
        assert (second.feature, second.step, second.user_id) == ("search", "rerank", "u2")

    def test_untracked_without_init(self, api: FakeAnthropicAPI) -> None:
        """Before init() the SDK is untouched and nothing is recorded."""
        message = create(api.client())
        assert not hasattr(message, "fluxgate_cost_tracking_response")

    def test_disabled_is_pass_through(self, api: FakeAnthropicAPI, monkeypatch: pytest.MonkeyPatch) -> None:
        """FLUXGATE_DISABLED=1 makes init() patch nothing."""
        monkeypatch.setenv("FLUXGATE_DISABLED", "1")
        memory = MemorySink()
        fluxgate.init(sinks=[memory])
        message = create(api.client())
        assert not hasattr(message, "fluxgate_cost_tracking_response")
        assert type(SyncAPIClient.__dict__["request"]).__name__ == "function"
        assert memory.events == []


class TestStreamsEndingEarly:
    def test_break_and_close(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """Leaving a stream early and closing it records the tokens seen, as estimated."""
        api.reply_sse(sse_body(stream_events(input_tokens=40, output_tokens=99)))
        stream = create(api.client(), stream=True)
        for event in stream:
            if event.type == "content_block_delta":
                break
        stream.close()
        [event] = flushed(sink)
        assert event.input_tokens == 40
        assert event.output_tokens == 1  # message_start's count: the final delta never came
        assert event.cost_status == "estimated_usage"
        assert stream.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    def test_with_block_left_early(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """Leaving a ``with stream`` block early records once."""
        api.reply_sse(sse_body(stream_events()))
        with create(api.client(), stream=True) as stream:
            next(iter(stream))
        assert len(flushed(sink)) == 1

    def test_abandoned_stream(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A stream dropped part-way without close() still records what it saw."""
        api.reply_sse(sse_body(stream_events(input_tokens=33)))
        stream = create(api.client(), stream=True)
        next(iter(stream))
        del stream
        gc.collect()
        [event] = flushed(sink)
        assert event.input_tokens == 33
        assert event.cost_status == "estimated_usage"

    def test_async_stream_closed_early(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """An async stream closed early records once."""
        api.reply_sse(sse_body(stream_events(input_tokens=8)))

        async def main() -> None:
            stream = await create(api.async_client(), stream=True)
            async for _ in stream:
                break
            await stream.close()

        asyncio.run(main())
        [event] = flushed(sink)
        assert (event.input_tokens, event.cost_status) == (8, "estimated_usage")

    def test_error_inside_stream(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """An error event mid-stream is recorded as ERROR and the SDK's exception propagates."""
        events = stream_events(input_tokens=12)[:3]
        events.append({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        api.reply_sse(sse_body(events))
        stream = create(api.client(), stream=True)
        with pytest.raises(anthropic.APIStatusError) as info:
            for _ in stream:
                pass
        [event] = flushed(sink)
        assert event.status is Status.ERROR
        assert event.error_type == "overloaded_error"
        assert event.input_tokens == 12
        assert info.value.fluxgate_cost_tracking_response.tracking_id == event.tracking_id


class TestErrors:
    @pytest.mark.parametrize(
        ("status_code", "error_type", "status"),
        [
            (400, "invalid_request_error", Status.MALFORMED_REQUEST),
            (413, "request_too_large", Status.MALFORMED_REQUEST),
            (422, "invalid_request_error", Status.MALFORMED_REQUEST),
            (401, "authentication_error", Status.ERROR),
            (429, "rate_limit_error", Status.ERROR),
            (500, "api_error", Status.ERROR),
            (529, "overloaded_error", Status.ERROR),
        ],
    )
    def test_api_error_recorded_then_raised(
        self, api: FakeAnthropicAPI, sink: MemorySink, status_code: int, error_type: str, status: Status
    ) -> None:
        """An API error is recorded before the very same exception propagates."""
        api.reply_error(status_code, error_type, "something went wrong")
        raised: list[BaseException] = []
        original_init = anthropic.APIStatusError.__init__

        def remember(self: anthropic.APIStatusError, *args: Any, **kwargs: Any) -> None:
            original_init(self, *args, **kwargs)
            raised.append(self)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(anthropic.APIStatusError, "__init__", remember)
            with track_context(feature="errors"), pytest.raises(anthropic.APIStatusError) as info:
                create(api.client())
        assert info.value is raised[0]
        assert info.value.status_code == status_code
        [event] = flushed(sink)
        assert event.status is status
        assert (event.error_type, event.error_message) == (error_type, "something went wrong")
        assert event.cost_usd == 0
        assert event.feature == "errors"
        assert event.request_id == f"req_fake_error_{status_code}"
        response = info.value.fluxgate_cost_tracking_response  # type: ignore[attr-defined]
        assert (response.status, response.tracking_id) == (status, event.tracking_id)

    def test_connection_error(self, sink: MemorySink) -> None:
        """A connection failure is recorded as ERROR and re-raised."""

        def refuse(request: Any) -> Any:
            raise OSError("connection refused")

        from fluxgate.testing._fake_wire import http_library as _httpx

        httpx = _httpx()
        client = anthropic.Anthropic(
            api_key="sk-ant-x", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(refuse))
        )
        with pytest.raises(anthropic.APIConnectionError):
            create(client)
        [event] = flushed(sink)
        assert event.status is Status.ERROR
        assert event.error_type == "APIConnectionError"

    def test_async_error(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """Async errors are recorded too."""
        api.reply_error(529, "overloaded_error", "Overloaded")

        async def main() -> None:
            await create(api.async_client())

        with pytest.raises(anthropic.APIStatusError):
            asyncio.run(main())
        [event] = flushed(sink)
        assert event.status is Status.ERROR


class BrokenSink:
    def __init__(self) -> None:
        self.tried = threading.Event()

    def write(self, batch: Sequence[CostEvent]) -> None:
        self.tried.set()
        raise RuntimeError("disk on fire")

    def close(self) -> None:
        pass


class TestNeverBreaksTheCall:
    def test_usage_of_wrong_shape(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A usage payload of the wrong shape leaves the user's message intact."""
        body = message_body()
        body["usage"] = {"input_tokens": "many", "output_tokens": None, "cache_creation": [1, 2]}
        api.reply_json(body)
        message = create(api.client())
        assert message.content[0].text == "ok"
        [event] = flushed(sink)
        assert event.cost_usd is None
        assert event.cost_status == "unpriced_model"

    def test_pricing_raises(
        self, api: FakeAnthropicAPI, swallowed: list[BaseException], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A fault while pricing is swallowed: the user gets anthropic's result and the call stays on record."""
        memory = MemorySink()
        fg = fluxgate.init(sinks=[memory])

        def explode(*args: Any, **kwargs: Any) -> Any:
            raise ZeroDivisionError("bug in fluxgate")

        monkeypatch.setattr(fg.prices, "price_exact", explode)
        message = create(api.client())
        assert message.content[0].text
        assert message.fluxgate_cost_tracking_response.cost is None
        api.reply_sse(sse_body(stream_events()))
        assert [e.type for e in create(api.client(), stream=True)][-1] == "message_stop"
        events = flushed(memory)
        assert [(e.streamed, e.cost_usd, e.cost_status) for e in events] == [
            (False, None, "unpriced_model"),
            (True, None, "unpriced_model"),
        ]
        assert all(e.input_tokens > 0 for e in events)
        assert [type(e) for e in swallowed] == [ZeroDivisionError, ZeroDivisionError]
        swallowed.clear()

    def test_sink_that_raises(self, api: FakeAnthropicAPI) -> None:
        """A sink that always fails never reaches the caller."""
        broken = BrokenSink()
        retry = fluxgate.RetryPolicy(max_attempts=2, backoff_max_s=0.01)
        fluxgate.init(sinks=[broken], retry=retry, flush_interval_s=0.01)
        message = create(api.client())
        assert message.content
        assert broken.tried.wait(timeout=10)  # the sink failed, on the flusher's thread
        assert "disk on fire" not in repr(message)
        fluxgate.shutdown(timeout_s=0.1)  # its event cannot be delivered; do not wait for it

    @pytest.mark.parametrize("step", ["_bind", "_settle"])
    @pytest.mark.parametrize("kind", ["sync", "async"])
    def test_fault_in_the_request_wrapper(
        self,
        api: FakeAnthropicAPI,
        swallowed: list[BaseException],
        monkeypatch: pytest.MonkeyPatch,
        step: str,
        kind: str,
    ) -> None:
        """A fault before the request (binding the call) or after it (settling it) is swallowed once:
        the user gets anthropic's message as it came; with FLUXGATE_DEBUG=1 the fault is raised."""
        from fluxgate._instrument import patches

        fluxgate.init(sinks=[MemorySink()])

        def explode(*args: Any, **kwargs: Any) -> Any:
            raise ZeroDivisionError(f"bug in {step}")

        monkeypatch.setattr(patches, step, explode)

        def call() -> Any:
            if kind == "sync":
                return create(api.client())
            return asyncio.run(create(api.async_client()))

        message = call()
        assert type(message) is anthropic.types.Message
        assert message.content[0].text
        assert message.usage.input_tokens > 0
        assert [str(e) for e in swallowed] == [f"bug in {step}"]
        swallowed.clear()
        monkeypatch.setenv("FLUXGATE_DEBUG", "1")
        with pytest.raises(ZeroDivisionError):
            call()

    def test_error_path_fault(self, api: FakeAnthropicAPI, swallowed: list[BaseException]) -> None:
        """A fault while recording an API error still re-raises the original error."""
        fg = fluxgate.init(sinks=[MemorySink()])
        fg.record = None  # type: ignore[assignment, method-assign]
        api.reply_error(400, "invalid_request_error", "bad")
        with pytest.raises(anthropic.BadRequestError):
            create(api.client())
        assert swallowed
        swallowed.clear()


class TestInstall:
    def test_init_twice_never_double_counts(self, api: FakeAnthropicAPI) -> None:
        """A second init() replaces the tracker without wrapping again."""
        first = MemorySink()
        fluxgate.init(sinks=[first])
        original = SyncAPIClient.__dict__["request"]
        second = MemorySink()
        fluxgate.init(sinks=[second])
        assert SyncAPIClient.__dict__["request"] is original
        create(api.client())
        fluxgate.flush(timeout_s=10)
        assert first.events == []
        assert len(second.events) == 1

    def test_shutdown_restores_originals(self) -> None:
        """After shutdown the SDK's own functions are back, for sync and async."""
        sync_original = SyncAPIClient.__dict__["request"]
        async_original = AsyncAPIClient.__dict__["request"]
        fluxgate.init(sinks=[MemorySink()])
        assert SyncAPIClient.__dict__["request"] is not sync_original
        fluxgate.shutdown()
        assert SyncAPIClient.__dict__["request"] is sync_original
        assert AsyncAPIClient.__dict__["request"] is async_original

    def test_client_made_before_init(self, api: FakeAnthropicAPI) -> None:
        """A client created before init() is tracked."""
        client = api.client()
        memory = MemorySink()
        fluxgate.init(sinks=[memory])
        create(client)
        fluxgate.flush(timeout_s=10)
        assert len(memory.events) == 1

    def test_init_returns_fluxgate(self) -> None:
        """init() returns the active FluxGate."""
        fg = fluxgate.init(sinks=[MemorySink()])
        assert isinstance(fg, fluxgate.FluxGate)

    def test_bad_configuration_raises(self) -> None:
        """Configuration mistakes raise at once, naming the option."""
        with pytest.raises(fluxgate.ConfigurationError, match="flush_interval_s"):
            fluxgate.init(flush_interval_s=0)
        with pytest.raises(fluxgate.ConfigurationError, match="sinks"):
            fluxgate.init(sinks=[object()])  # type: ignore[list-item]
        with pytest.raises(fluxgate.ConfigurationError, match="max_queue_size"):
            fluxgate.init(max_queue_size=0)


class TestIsolationOfEvents:
    @staticmethod
    def tagging_api() -> FakeAnthropicAPI:
        """A fake whose request-id echoes the prompt, to tie each event to its caller."""

        def respond(request: FakeRequest) -> FakeReply:
            tag = request.body["messages"][0]["content"]
            return FakeReply(json_body=message_body(), headers={"request-id": tag})

        return FakeAnthropicAPI(responder=respond)

    def test_threads(self, sink: MemorySink) -> None:
        """Twenty threads calling at once each record only their own context."""
        api = self.tagging_api()
        client = api.client()
        barrier = threading.Barrier(20)

        def work(i: int) -> None:
            with track_context(feature=f"feature-{i}", user=f"user-{i}"):
                barrier.wait()
                for j in range(5):
                    create(client, messages=[{"role": "user", "content": f"{i}/{j}"}])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        events = flushed(sink)
        assert len(events) == 100
        for event in events:
            i = (event.request_id or "").split("/")[0]
            assert (event.feature, event.user_id) == (f"feature-{i}", f"user-{i}")

    def test_tasks(self, sink: MemorySink) -> None:
        """Two hundred concurrent asyncio tasks each record only their own context."""
        api = self.tagging_api()

        async def work(client: Any, i: int) -> None:
            async with track_context(feature=f"feature-{i}", step=f"step-{i}"):
                await asyncio.sleep(0)
                await create(client, messages=[{"role": "user", "content": f"{i}/0"}])

        async def main() -> None:
            client = api.async_client()
            await asyncio.gather(*(work(client, i) for i in range(200)))

        asyncio.run(main())
        events = flushed(sink)
        assert len(events) == 200
        for event in events:
            i = (event.request_id or "").split("/")[0]
            assert (event.feature, event.step) == (f"feature-{i}", f"step-{i}")


# Published prices, $ per million tokens (shared/reference/anthropic-pricing.md):
# (input, 5m cache write, 1h cache write, cache read, output)
PUBLISHED = {
    "claude-sonnet-4-20250514": ("3", "3.75", "6", "0.30", "15"),
    "claude-3-7-sonnet-20250219": ("3", "3.75", "6", "0.30", "15"),
    "claude-3-opus-20240229": ("15", "18.75", "30", "1.50", "75"),
    "claude-3-haiku-20240307": ("0.25", "0.30", "0.50", "0.03", "1.25"),
    "claude-3-5-haiku-20241022": ("0.80", "1", "1.60", "0.08", "4"),
}

RECORDINGS = [
    "text-claude-3-opus.json",
    "max-tokens-claude-3-opus.json",
    "image-input-claude-3-opus.json",
    "cache-read-claude-sonnet-4.json",
    "cache-write-1h-ttl-claude-sonnet-4.json",
    "thinking-claude-sonnet-4.json",
    "thinking-claude-3-7-sonnet.json",
    "tool-use-claude-sonnet-4.json",
    "tool-use-two-calls-claude-3-5-sonnet.json",
    "stream-text-claude-3-haiku.json",
    "stream-max-tokens-claude-3-opus.json",
    "stream-cache-read-claude-sonnet-4.json",
    "stream-cache-write-claude-sonnet-4.json",
    "stream-text-cumulative-delta-claude-sonnet-4.json",
    "stream-thinking-claude-3-7-sonnet.json",
    "stream-text-cache-creation-breakdown-claude-3-5-haiku.json",
    "stream-tool-use-two-calls-claude-3-5-sonnet.json",
    "stream-cache-read-claude-3-5-sonnet.json",
]


def replay(client: Any, recording: dict[str, Any]) -> Any:
    request = dict(recording["request"])
    required = {k: request.pop(k) for k in ("model", "max_tokens", "messages")}
    request.pop("stream", None)
    result = client.messages.create(**required, stream=recording["stream"], extra_body=request or None)
    if recording["stream"]:
        for _ in result:
            pass
    return result


class TestRecordings:
    @pytest.mark.parametrize("name", RECORDINGS)
    def test_recorded_figures(self, api: FakeAnthropicAPI, sink: MemorySink, name: str) -> None:
        """A real recorded interaction replayed through the patch gives its recorded figures."""
        recording = load_recording(name)
        expected = recording["expected"]
        api.reply_recording(recording)
        result = replay(api.client(), recording)
        [event] = flushed(sink)
        assert event.model == expected["model"]
        assert event.input_tokens == expected["input_tokens"]
        assert event.output_tokens == expected["output_tokens"]
        assert event.cache_creation_input_tokens == (expected["cache_creation_input_tokens"] or 0)
        assert event.cache_read_input_tokens == (expected["cache_read_input_tokens"] or 0)
        assert event.stop_reason == expected["stop_reason"]
        split = expected.get("cache_creation") or {}
        if split:
            assert event.cache_creation_5m_input_tokens == split.get("ephemeral_5m_input_tokens")
            assert event.cache_creation_1h_input_tokens == split.get("ephemeral_1h_input_tokens")
        assert event.streamed is recording["stream"]
        assert result.fluxgate_cost_tracking_response.tracking_id == event.tracking_id
        prices = PUBLISHED.get(expected["model"])
        if prices is not None:
            rate_in, rate_5m, rate_1h, rate_read, rate_out = (Decimal(p) for p in prices)
            five = split.get("ephemeral_5m_input_tokens", expected["cache_creation_input_tokens"] or 0)
            hour = split.get("ephemeral_1h_input_tokens", 0)
            expected_cost = (
                expected["input_tokens"] * rate_in
                + five * rate_5m
                + hour * rate_1h
                + (expected["cache_read_input_tokens"] or 0) * rate_read
                + expected["output_tokens"] * rate_out
            ) / MTOK
            assert event.cost_usd == expected_cost
            assert event.status is (Status.MAX_TOKENS if expected["stop_reason"] == "max_tokens" else Status.SUCCESS)

    @pytest.mark.parametrize(
        ("name", "status"),
        [
            ("error-400-invalid-request.json", Status.MALFORMED_REQUEST),
            ("error-401-invalid-api-key.json", Status.ERROR),
            ("error-404-unknown-model.json", Status.ERROR),
            ("error-404-unknown-model-stream-request.json", Status.ERROR),
            ("error-429-rate-limit.json", Status.ERROR),
        ],
    )
    def test_recorded_errors(self, api: FakeAnthropicAPI, sink: MemorySink, name: str, status: Status) -> None:
        """Recorded API errors are recorded with their status and type, then raised."""
        recording = load_recording(name)
        api.reply_recording(recording)
        with pytest.raises(anthropic.APIStatusError):
            replay(api.client(), recording)
        [event] = flushed(sink)
        assert event.status is status
        assert event.error_type == recording["expected"]["error_type"]
        assert event.cost_usd == 0


class TestConcurrentInstall:
    def test_racing_installs_wrap_once(self, api: FakeAnthropicAPI) -> None:
        """Many threads installing at once still wrap each method once: one call, one event."""
        memory = MemorySink()
        fluxgate.init(sinks=[memory])
        fluxgate.uninstrument()
        barrier = threading.Barrier(8)

        def install() -> None:
            barrier.wait()
            fluxgate.instrument()

        threads = [threading.Thread(target=install) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        create(api.client())
        assert len(flushed(memory)) == 1
        fluxgate.uninstrument()
        assert type(SyncAPIClient.__dict__["request"]).__name__ == "function"
