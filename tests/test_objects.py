"""What a tracked call returns is the SDK's own object: same type, same pickling and copying.

Each kind of object the SDK hands back is made twice, untracked and then
tracked, and must behave the same under ``type()``, ``pickle``, ``copy`` and
``copy.deepcopy``. What fluxgate hangs on messages and exceptions is plain
data, so they cross a process pool with their summary.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import inspect
import multiprocessing
import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import anthropic
import pytest

import fluxgate
import fluxgate._store.batches
from fluxgate import Status
from fluxgate.testing import FakeAnthropicAPI, FakeReply, MemorySink, sse_body

from .helpers import HELLO, message_body, stream_events

KW: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": HELLO}
HAS_PARSE = hasattr(anthropic.resources.messages.Messages, "parse")
HAS_RUNNER = hasattr(anthropic.resources.beta.messages.Messages, "tool_runner")


def fake() -> FakeAnthropicAPI:
    """A fake that answers every request (JSON, or SSE when a stream is asked for)."""

    def respond(request: Any) -> Any:
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("stream"):
            return FakeReply(sse=sse_body(stream_events(input_tokens=40, output_tokens=9)))
        return FakeReply(json_body=message_body(input_tokens=40, output_tokens=9))

    return FakeAnthropicAPI(responder=respond)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def message(api: FakeAnthropicAPI) -> Any:
    return api.client().messages.create(**KW)


def parsed(api: FakeAnthropicAPI) -> Any:
    return api.client().messages.parse(**KW)


def stream_unread(api: FakeAnthropicAPI) -> Any:
    return api.client().messages.create(**KW, stream=True)


def stream_read(api: FakeAnthropicAPI) -> Any:
    stream = api.client().messages.create(**KW, stream=True)
    for _ in stream:
        pass
    return stream


def async_stream(api: FakeAnthropicAPI) -> Any:
    async def main() -> Any:
        stream = await api.async_client().messages.create(**KW, stream=True)
        async for _ in stream:
            pass
        return stream

    return run(main())


def manager(api: FakeAnthropicAPI) -> Any:
    return api.client().messages.stream(**KW)


def message_stream(api: FakeAnthropicAPI) -> Any:
    with api.client().messages.stream(**KW) as stream:
        stream.until_done()
    return stream


def final_message(api: FakeAnthropicAPI) -> Any:
    with api.client().messages.stream(**KW) as stream:
        return stream.get_final_message()


def raw(api: FakeAnthropicAPI) -> Any:
    return api.client().messages.with_raw_response.create(**KW)


def raw_streaming(api: FakeAnthropicAPI) -> Any:
    with api.streamed_client().messages.with_streaming_response.create(**KW, stream=True) as response:
        return response


def batch_results(api: FakeAnthropicAPI) -> Any:
    client = api.batches_client()
    batch = client.messages.batches.create(requests=[{"custom_id": "a", "params": KW}])
    return client.messages.batches.results(batch.id)


def batch_item(api: FakeAnthropicAPI) -> Any:
    return next(iter(batch_results(api)))


def api_error(api: FakeAnthropicAPI) -> Any:
    api.reply_error(429, "rate_limit_error", "slow down")
    try:
        api.client().messages.create(**KW)
    except anthropic.RateLimitError as exc:
        return exc
    raise AssertionError("no error")


def tool_runner(api: FakeAnthropicAPI) -> Any:
    @anthropic.beta_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    return api.client().beta.messages.tool_runner(**KW, tools=[get_weather])


def async_tool_runner(api: FakeAnthropicAPI) -> Any:
    @anthropic.beta_async_tool
    async def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    return api.async_client().beta.messages.tool_runner(**KW, tools=[get_weather])


KINDS: dict[str, Callable[[FakeAnthropicAPI], Any]] = {
    "message": message,
    "stream-unread": stream_unread,
    "stream-read": stream_read,
    "async-stream": async_stream,
    "stream-manager": manager,
    "message-stream": message_stream,
    "final-message": final_message,
    "raw-response": raw,
    "raw-streaming-response": raw_streaming,
    "batch-results": batch_results,
    "batch-result-item": batch_item,
    "api-error": api_error,
}
if HAS_PARSE:
    KINDS["parsed-message"] = parsed
if HAS_RUNNER:
    KINDS["tool-runner"] = tool_runner
    KINDS["async-tool-runner"] = async_tool_runner

#: Kinds that pickle without fluxgate, and so must carry their summary across.
PLAIN_DATA = ["message", "final-message", "batch-result-item", "api-error"]


@pytest.fixture(autouse=True)
def _fresh_memory_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own in-memory batch store: the fake API numbers batches from 1 in every test."""
    monkeypatch.setattr(fluxgate._store.batches, "_memory", {})


def outcome(operation: Callable[[Any], Any], obj: Any) -> str:
    """What ``operation(obj)`` does: "ok", or the exception it raises."""
    try:
        operation(obj)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def behaviour(obj: Any) -> tuple[Any, ...]:
    return (type(obj), outcome(pickle.dumps, obj), outcome(copy.copy, obj), outcome(copy.deepcopy, obj))


class TestTheSDKsObjects:
    @pytest.mark.parametrize("kind", sorted(KINDS))
    def test_same_type_pickling_and_copying(self, kind: str) -> None:
        """Tracked or not, the object has the SDK's type and pickles, copies and deep-copies the same."""
        untracked = behaviour(KINDS[kind](fake()))
        fluxgate.init(sinks=[MemorySink()])
        tracked = KINDS[kind](fake())
        assert behaviour(tracked) == untracked

    @pytest.mark.parametrize("kind", PLAIN_DATA)
    def test_summary_survives_pickle_and_deepcopy(self, kind: str) -> None:
        """A message, result item or exception keeps its summary, as plain data, through pickle and deepcopy."""
        if outcome(lambda obj: pickle.loads(pickle.dumps(obj)), KINDS[kind](fake())) != "ok":
            pytest.skip(f"this anthropic release's {kind} does not survive pickle even untracked")
        fluxgate.init(sinks=[MemorySink()])
        obj = KINDS[kind](fake())
        summary = obj.fluxgate_cost_tracking_response
        assert summary is not None
        for twin in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj), copy.copy(obj)):
            assert type(twin) is type(obj)
            assert twin.fluxgate_cost_tracking_response == summary

    def test_copy_of_a_stream_shares_its_reading(self) -> None:
        """A shallow copy of a stream reads the same events, as without fluxgate, and the call is recorded once."""
        sink = MemorySink()
        fluxgate.init(sinks=[sink])
        api = fake()
        stream = api.client().messages.create(**KW, stream=True)
        twin = copy.copy(stream)
        kinds = [event.type for event in twin]
        assert kinds[0] == "message_start"
        assert list(stream) == []
        assert fluxgate.flush(timeout_s=10)
        [event] = sink.events
        assert (event.input_tokens, event.output_tokens, event.aborted) == (40, 9, False)


def _message(tracked: bool) -> Any:
    if tracked:
        fluxgate.init(sinks=[MemorySink()])
    api = FakeAnthropicAPI()
    api.reply_json(message_body(input_tokens=11, output_tokens=5))
    return api.client().messages.create(**KW)


def _rate_limited(tracked: bool) -> Any:
    if tracked:
        fluxgate.init(sinks=[MemorySink()])
    api = FakeAnthropicAPI()
    api.reply_error(429, "rate_limit_error", "slow down")
    return api.client().messages.create(**KW)


def received(pool: ProcessPoolExecutor, work: Callable[[bool], Any], tracked: bool) -> Any:
    """What the parent gets from ``work`` run in ``pool``: its result, or the exception it raised."""
    try:
        return pool.submit(work, tracked).result(timeout=120)
    except Exception as exc:  # what crossed the pool is the point
        return exc


class TestProcessPools:
    def test_message_and_error_cross_a_process_pool(self) -> None:
        """A worker's Message, and its RateLimitError, reach the parent as they do untracked, with summaries."""
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            message = received(pool, _message, True)
            plain_error = received(pool, _rate_limited, False)
            error = received(pool, _rate_limited, True)
        assert type(message) is anthropic.types.Message
        assert message.usage.input_tokens == 11
        assert message.fluxgate_cost_tracking_response.status is Status.SUCCESS
        assert message.fluxgate_cost_tracking_response.cost is not None
        assert type(error) is type(plain_error)
        if isinstance(plain_error, anthropic.RateLimitError):  # older releases' errors do not survive pickle
            assert error.status_code == 429
            assert error.fluxgate_cost_tracking_response.status is Status.ERROR


#: A usage as the API sends it today: the cache write's TTL split and the service tier with it.
SPLIT_USAGE = {
    "input_tokens": 40,
    "output_tokens": 9,
    "cache_creation_input_tokens": 2056,
    "cache_read_input_tokens": 0,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 2056},
    "service_tier": "standard",
}


class TestWaitingCalls:
    def test_a_waiting_call_holds_none_of_the_messages_objects(self) -> None:
        """A call queued for delivery keeps its usage as plain dicts: the message's models stay the user's.

        Each of those models is an object the collector tracks: held by every queued call, they were
        promoted through its generations and brought collections that untracked calls never cause.
        """
        api = FakeAnthropicAPI(responder=lambda _request: FakeReply(json_body={**message_body(), "usage": SPLIT_USAGE}))
        memory = MemorySink()
        fluxgate.init(sinks=[memory], flush_interval_s=3600, max_batch_size=1000)  # the call waits in the queue
        msg = api.client().messages.create(**KW)
        holders = [holder for holder in gc.get_referrers(msg.usage) if not inspect.isframe(holder)]
        assert holders == [msg.__dict__]
        split = msg.usage.cache_creation
        if not isinstance(split, dict):  # a model of its own, where the SDK declares the field
            holders = [holder for holder in gc.get_referrers(split) if not inspect.isframe(holder)]
            assert holders == [msg.usage.__dict__]
        assert fluxgate.flush()
        [event] = memory.events
        assert (event.cache_creation_input_tokens, event.cache_creation_1h_input_tokens) == (2056, 2056)
        assert event.cost_usd is not None

    def test_a_waiting_streamed_call_holds_none_of_the_streams_objects(self) -> None:
        """A streamed call waits with its usage as plain dicts too, read from the events the user may keep."""
        events = stream_events(output_tokens=9)
        events[0]["message"]["usage"] = {**SPLIT_USAGE, "output_tokens": 1}  # message_delta gives the 9
        api = FakeAnthropicAPI(responder=lambda _request: FakeReply(sse=sse_body(events)))
        memory = MemorySink()
        fluxgate.init(sinks=[memory], flush_interval_s=3600, max_batch_size=1000)  # the call waits in the queue
        kept = list(api.client().messages.create(**KW, stream=True))
        split = kept[0].message.usage.cache_creation
        if not isinstance(split, dict):  # a model of its own, where the SDK declares the field
            holders = [holder for holder in gc.get_referrers(split) if not inspect.isframe(holder)]
            assert holders == [kept[0].message.usage.__dict__]
        assert fluxgate.flush()
        [event] = memory.events
        assert (event.input_tokens, event.output_tokens, event.cache_creation_1h_input_tokens) == (40, 9, 2056)
        assert event.cost_usd is not None
