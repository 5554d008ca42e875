"""Every way an application reaches Claude, sync and async: one event each, exact tokens and cost.

The table ``PATHS`` walks each entry point of the installed SDK against the
fake transport. Entry points a release does not have are skipped there (and
listed in docs/call-paths.md); ``test_coverage_of_sdk.py`` checks that the
table and the SDK agree.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, NamedTuple

import anthropic
import pytest

import fluxgate
from fluxgate import CostEvent, Status, track_context
from fluxgate.testing import FakeAnthropicAPI, FakeReply, FakeRequest, MemorySink, sse_body

from .conftest import load_recording
from .helpers import HELLO, message_body, sonnet_46_cost, stream_events

IN, OUT = 1234, 567
KW: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 1024, "messages": HELLO}
HAS_PARSE = hasattr(anthropic.resources.messages.Messages, "parse")
HAS_BETA_PARSE = hasattr(anthropic.resources.beta.messages.Messages, "parse")
HAS_RUNNER = hasattr(anthropic.resources.beta.messages.Messages, "tool_runner")
try:
    import anthropic.resources.completions

    HAS_COMPLETIONS = True
except ImportError:
    HAS_COMPLETIONS = False

COMPLETION = {
    "type": "completion",
    "id": "compl_fake",
    "completion": " Hello!",
    "stop_reason": "stop_sequence",
    "model": "claude-2.1",
    "stop": "\n\nHuman:",
    "log_id": "compl_fake",
}


def completion_events() -> list[dict[str, Any]]:
    return [
        {"type": "completion", "completion": " Hel", "stop_reason": None, "model": "claude-2.1"},
        {"type": "completion", "completion": "lo!", "stop_reason": None, "model": "claude-2.1"},
        {"type": "completion", "completion": "", "stop_reason": "stop_sequence", "model": "claude-2.1"},
    ]


def fixed(request: FakeRequest) -> FakeReply:
    """Every request gets the same usage (IN, OUT): JSON, or SSE when it asked for a stream."""
    body = request.body if isinstance(request.body, dict) else {}
    if request.path == "/v1/complete":
        if body.get("stream"):
            return FakeReply(sse=sse_body(completion_events()))
        return FakeReply(json_body=COMPLETION)
    if body.get("stream"):
        return FakeReply(sse=sse_body(stream_events(input_tokens=IN, output_tokens=OUT)))
    return FakeReply(json_body=message_body(input_tokens=IN, output_tokens=OUT))


def flushed(sink: MemorySink) -> list[CostEvent]:
    assert fluxgate.flush(timeout_s=10)
    return sink.events


async def maybe(value: Any) -> Any:
    """``await`` it if the SDK made it awaitable (AsyncAPIResponse) but not LegacyAPIResponse."""
    return await value if inspect.isawaitable(value) else value


def resource(client: Any, ns: str) -> Any:
    return client.beta.messages if ns == "beta" else client.messages


# -- the entry points ----------------------------------------------------------------
# Each reads the whole result as a user would, checks it got the fake's data,
# and returns the object fluxgate should hang its summary on.

Sync = Callable[[Any], Any]
Async = Callable[[Any], Awaitable[Any]]


def p_create(m: Any) -> Any:
    message = m.create(**KW)
    assert message.content[0].text == "ok"
    return message


async def a_create(m: Any) -> Any:
    message = await m.create(**KW)
    assert message.content[0].text == "ok"
    return message


def p_create_stream(m: Any) -> Any:
    stream = m.create(**KW, stream=True)
    assert "".join(e.delta.text for e in stream if e.type == "content_block_delta") == "Hello"
    return stream


async def a_create_stream(m: Any) -> Any:
    stream = await m.create(**KW, stream=True)
    assert "".join([e.delta.text async for e in stream if e.type == "content_block_delta"]) == "Hello"
    return stream


def p_create_stream_with(m: Any) -> Any:
    with m.create(**KW, stream=True) as stream:
        for _ in stream:
            pass
    return stream


async def a_create_stream_with(m: Any) -> Any:
    async with await m.create(**KW, stream=True) as stream:
        async for _ in stream:
            pass
    return stream


def p_stream_text(m: Any) -> Any:
    with m.stream(**KW) as stream:
        assert "".join(stream.text_stream) == "Hello"
    return stream


async def a_stream_text(m: Any) -> Any:
    async with m.stream(**KW) as stream:
        assert "".join([t async for t in stream.text_stream]) == "Hello"
    return stream


def p_stream_final(m: Any) -> Any:
    with m.stream(**KW) as stream:
        message = stream.get_final_message()
    assert message.usage.output_tokens == OUT
    return message


async def a_stream_final(m: Any) -> Any:
    async with m.stream(**KW) as stream:
        message = await stream.get_final_message()
    assert message.usage.output_tokens == OUT
    return message


def p_stream_events(m: Any) -> Any:
    with m.stream(**KW) as stream:
        kinds = [event.type for event in stream]
    assert kinds[-1] == "message_stop"
    return stream


async def a_stream_events(m: Any) -> Any:
    async with m.stream(**KW) as stream:
        kinds = [event.type async for event in stream]
    assert kinds[-1] == "message_stop"
    return stream


def p_parse(m: Any) -> Any:
    message = m.parse(**KW)
    assert message.content[0].text == "ok"
    return message


async def a_parse(m: Any) -> Any:
    message = await m.parse(**KW)
    assert message.content[0].text == "ok"
    return message


def p_raw(m: Any) -> Any:
    response = m.with_raw_response.create(**KW)
    assert response.headers["request-id"]
    message = response.parse()
    assert message.content[0].text == "ok"
    return message


async def a_raw(m: Any) -> Any:
    response = await m.with_raw_response.create(**KW)
    message = await maybe(response.parse())
    assert message.content[0].text == "ok"
    return response


def p_raw_stream(m: Any) -> Any:
    response = m.with_raw_response.create(**KW, stream=True)
    stream = response.parse()
    assert [e.type for e in stream][-1] == "message_stop"
    return response


async def a_raw_stream(m: Any) -> Any:
    response = await m.with_raw_response.create(**KW, stream=True)
    stream = await maybe(response.parse())
    assert [e.type async for e in stream][-1] == "message_stop"
    return stream


def p_streaming_parse(m: Any) -> Any:
    with m.with_streaming_response.create(**KW) as response:
        message = response.parse()
    assert message.content[0].text == "ok"
    return message


async def a_streaming_parse(m: Any) -> Any:
    async with m.with_streaming_response.create(**KW) as response:
        message = await response.parse()
    assert message.content[0].text == "ok"
    return response


def p_streaming_json(m: Any) -> Any:
    with m.with_streaming_response.create(**KW) as response:
        assert response.json()["content"][0]["text"] == "ok"
    return response


async def a_streaming_json(m: Any) -> Any:
    async with m.with_streaming_response.create(**KW) as response:
        assert (await response.json())["content"][0]["text"] == "ok"
    return response


def p_streaming_iter_lines(m: Any) -> Any:
    with m.with_streaming_response.create(**KW) as response:
        body = "\n".join(response.iter_lines())
    assert json.loads(body)["usage"]["input_tokens"] == IN
    return response


async def a_streaming_iter_lines(m: Any) -> Any:
    async with m.with_streaming_response.create(**KW) as response:
        body = "\n".join([line async for line in response.iter_lines()])
    assert json.loads(body)["usage"]["input_tokens"] == IN
    return response


def p_streaming_sse_lines(m: Any) -> Any:
    with m.with_streaming_response.create(**KW, stream=True) as response:
        lines = list(response.iter_lines())
    assert "event: message_stop" in lines
    return response


async def a_streaming_sse_lines(m: Any) -> Any:
    async with m.with_streaming_response.create(**KW, stream=True) as response:
        lines = [line async for line in response.iter_lines()]
    assert "event: message_stop" in lines
    return response


def p_streaming_sse_bytes(m: Any) -> Any:
    with m.with_streaming_response.create(**KW, stream=True) as response:
        body = b"".join(response.iter_bytes(chunk_size=7))
    assert body.count(b"event: ") == 7
    return response


async def a_streaming_sse_bytes(m: Any) -> Any:
    async with m.with_streaming_response.create(**KW, stream=True) as response:
        body = b"".join([chunk async for chunk in response.iter_bytes(chunk_size=7)])
    assert body.count(b"event: ") == 7
    return response


def p_streaming_sse_parse(m: Any) -> Any:
    with m.with_streaming_response.create(**KW, stream=True) as response:
        stream = response.parse()
        assert [e.type for e in stream][-1] == "message_stop"
    return stream


async def a_streaming_sse_parse(m: Any) -> Any:
    async with m.with_streaming_response.create(**KW, stream=True) as response:
        stream = await response.parse()
        assert [e.type async for e in stream][-1] == "message_stop"
    return stream


class Path(NamedTuple):
    name: str
    method: str  # on messages / beta.messages
    run: Sync
    arun: Async
    streamed: bool
    view: bool = False  # a with_raw_response / with_streaming_response path


PATHS = [
    Path("create", "create", p_create, a_create, False),
    Path("create-stream", "create", p_create_stream, a_create_stream, True),
    Path("create-stream-with", "create", p_create_stream_with, a_create_stream_with, True),
    Path("stream-text_stream", "stream", p_stream_text, a_stream_text, True),
    Path("stream-get_final_message", "stream", p_stream_final, a_stream_final, True),
    Path("stream-events", "stream", p_stream_events, a_stream_events, True),
    Path("parse", "parse", p_parse, a_parse, False),
    Path("raw", "create", p_raw, a_raw, False, view=True),
    Path("raw-stream", "create", p_raw_stream, a_raw_stream, True, view=True),
    Path("streaming-parse", "create", p_streaming_parse, a_streaming_parse, False, view=True),
    Path("streaming-json", "create", p_streaming_json, a_streaming_json, False, view=True),
    Path("streaming-iter_lines", "create", p_streaming_iter_lines, a_streaming_iter_lines, False, view=True),
    Path("streaming-sse-iter_lines", "create", p_streaming_sse_lines, a_streaming_sse_lines, True, view=True),
    Path("streaming-sse-iter_bytes", "create", p_streaming_sse_bytes, a_streaming_sse_bytes, True, view=True),
    Path("streaming-sse-parse", "create", p_streaming_sse_parse, a_streaming_sse_parse, True, view=True),
]


def cases() -> list[Any]:
    out = []
    for path in PATHS:
        for ns in ("messages", "beta"):
            for mode in ("sync", "async"):
                for touched in ("after", "before") if path.view else ("after",):
                    marks = []
                    if path.method == "parse" and not (HAS_BETA_PARSE if ns == "beta" else HAS_PARSE):
                        marks.append(pytest.mark.skip(reason=f"{ns}.parse is not in this anthropic release"))
                    name = f"{ns}.{path.name}-{mode}" + ("-view-touched-before-init" if touched == "before" else "")
                    out.append(pytest.param(path, ns, mode, touched, id=name, marks=marks))
    return out


class TestEveryPath:
    @pytest.mark.parametrize(("path", "ns", "mode", "touched"), cases())
    def test_one_event_exact(self, path: Path, ns: str, mode: str, touched: str) -> None:
        """Each entry point gives exactly one event: exact tokens, cost, api name and context."""
        api = FakeAnthropicAPI(responder=fixed)
        client = api.async_streamed_client() if mode == "async" else api.streamed_client()
        m = resource(client, ns)
        if touched == "before":  # the views cache the bound create when first touched
            _ = (m.with_raw_response, m.with_streaming_response)
        sink = MemorySink()
        fluxgate.init(sinks=[sink])
        with track_context(feature="paths", step=path.name):
            if mode == "async":

                async def main() -> Any:
                    return await path.arun(m)

                tagged = asyncio.run(main())
            else:
                tagged = path.run(m)
        [event] = flushed(sink)
        assert len(api.requests) == 1
        assert (event.input_tokens, event.output_tokens) == (IN, OUT)
        assert event.cost_usd == sonnet_46_cost(IN, OUT)
        assert event.cost_status == "priced"
        prefix = "beta.messages" if ns == "beta" else "messages"
        assert event.api == f"{prefix}.{path.method}"
        assert (event.streamed, event.model, event.platform) == (path.streamed, "claude-sonnet-4-6", "anthropic")
        assert (event.feature, event.step, event.status) == ("paths", path.name, Status.SUCCESS)
        assert event.request_id == "req_fake_000001"
        assert tagged.fluxgate_cost_tracking_response.tracking_id == event.tracking_id


class TestNeverBreaksAPath:
    @pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
    def test_pricing_fault(self, path: Path, swallowed: list[BaseException], monkeypatch: pytest.MonkeyPatch) -> None:
        """A fault inside fluxgate on any path is swallowed: the user reads everything the SDK returns."""
        if path.method == "parse" and not HAS_PARSE:
            pytest.skip("messages.parse is not in this anthropic release")
        fg = fluxgate.init(sinks=[MemorySink()])

        def explode(*args: Any, **kwargs: Any) -> Any:
            raise ZeroDivisionError("bug in fluxgate")

        monkeypatch.setattr(fg.prices, "price_exact", explode)
        api = FakeAnthropicAPI(responder=fixed)
        path.run(resource(api.streamed_client(), "messages"))
        assert fg.flush(timeout_s=10)  # pricing runs on the flusher's thread
        assert swallowed
        assert {type(e) for e in swallowed} == {ZeroDivisionError}
        swallowed.clear()

    def test_decoder_fault(self, swallowed: list[BaseException], monkeypatch: pytest.MonkeyPatch) -> None:
        """A fault while decoding bytes the user reads never reaches the user's read."""
        from fluxgate._recording import wire as _wire

        def explode(self: Any, chunk: bytes) -> Any:
            raise ValueError("decoder bug")

        monkeypatch.setattr(_wire.SSEParser, "feed", explode)
        fluxgate.init(sinks=[MemorySink()])
        api = FakeAnthropicAPI(responder=fixed)
        with api.streamed_client().messages.with_streaming_response.create(**KW, stream=True) as response:
            assert "event: message_stop" in list(response.iter_lines())
        assert swallowed
        swallowed.clear()


class TestStreamHelpers:
    def test_helper_and_final_message_share_the_summary(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """The stream() helper's stream and its final message carry the same summary."""
        with api.client().messages.stream(**KW) as stream:
            message = stream.get_final_message()
        [event] = flushed(sink)
        assert stream.fluxgate_cost_tracking_response.tracking_id == event.tracking_id
        assert message.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    def test_early_exit(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """Leaving a messages.stream() block early records the tokens seen, once, as estimated."""
        api.reply_sse(sse_body(stream_events(input_tokens=40, output_tokens=99)))
        with api.client().messages.stream(**KW) as stream:
            for text in stream.text_stream:
                assert text == "Hel"
                break
        [event] = flushed(sink)
        assert (event.input_tokens, event.output_tokens, event.cost_status) == (40, 1, "estimated_usage")
        assert event.api == "messages.stream"
        assert stream.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    def test_async_early_exit(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """The async helper left early records once too."""
        api.reply_sse(sse_body(stream_events(input_tokens=41)))

        async def main() -> None:
            async with api.async_client().beta.messages.stream(**KW) as stream:
                async for _ in stream:
                    break

        asyncio.run(main())
        [event] = flushed(sink)
        assert (event.input_tokens, event.cost_status, event.api) == (41, "estimated_usage", "beta.messages.stream")

    def test_never_entered(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A stream() manager that is never entered sends nothing and records nothing."""
        manager = api.client().messages.stream(**KW)
        del manager
        gc.collect()
        assert api.requests == []
        assert flushed(sink) == []

    def test_context_of_the_stream_call(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """The event has the context of the stream() call, even if the block is entered elsewhere."""
        with track_context(feature="made-here"):
            manager = api.client().messages.stream(**KW)
        with manager as stream:
            stream.until_done()
        [event] = flushed(sink)
        assert event.feature == "made-here"

    def test_error_on_enter(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """An API error when the stream opens is recorded and the SDK's exception propagates."""
        api.reply_error(529, "overloaded_error", "Overloaded")
        with pytest.raises(anthropic.APIStatusError) as info, api.client().messages.stream(**KW):
            pass
        [event] = flushed(sink)
        assert (event.status, event.error_type, event.api) == (Status.ERROR, "overloaded_error", "messages.stream")
        assert info.value.fluxgate_cost_tracking_response.tracking_id == event.tracking_id  # type: ignore[attr-defined]


class TestRawResponses:
    def test_response_and_message_share_the_summary(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A raw response and the message parsed from it carry the same summary."""
        response = api.client().messages.with_raw_response.create(**KW)
        message = response.parse()
        [event] = flushed(sink)
        assert response.fluxgate_cost_tracking_response.tracking_id == event.tracking_id
        assert message.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    def test_ordinary_calls_pass_one_wrapper(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """The SDK parses every response with ``APIResponse.parse``: it is patched only once a raw response is seen."""
        import anthropic._response

        sdk_parse = anthropic._response.APIResponse.__dict__["parse"]
        client = api.client()
        client.messages.create(**KW)
        assert anthropic._response.APIResponse.__dict__["parse"] is sdk_parse
        client.messages.with_raw_response.create(**KW).parse()
        assert anthropic._response.APIResponse.__dict__["parse"] is not sdk_parse
        fluxgate.shutdown()
        assert anthropic._response.APIResponse.__dict__["parse"] is sdk_parse
        assert len(sink.events) == 2

    def test_followed_again_after_a_restart(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """After shutdown() and a new init(), a raw response's parsed message carries its summary again."""
        client = api.client()
        assert client.messages.with_raw_response.create(**KW).parse().fluxgate_cost_tracking_response is not None
        fluxgate.shutdown()
        fluxgate.init(sinks=[sink])
        message = client.messages.with_raw_response.create(**KW).parse()
        [_, event] = flushed(sink)
        assert message.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    def test_closed_unread(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A streaming response closed before its body was read is recorded once, its cost unknown."""
        with api.streamed_client().messages.with_streaming_response.create(**KW) as response:
            assert response.status_code == 200
        [event] = flushed(sink)
        assert (event.status, event.cost_usd, event.cost_status) == (Status.SUCCESS, None, "unpriced_model")
        assert (event.input_tokens, event.model) == (0, "claude-sonnet-4-6")

    def test_body_is_not_read_ahead(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """Until the user reads a streamed body, fluxgate has read none of it."""
        api.reply_sse(sse_body(stream_events()))
        with api.streamed_client().messages.with_streaming_response.create(**KW, stream=True) as response:
            assert not response.http_response.is_stream_consumed
            assert fluxgate.flush(timeout_s=10)
            assert sink.events == []
            lines = list(response.iter_lines())
            assert fluxgate.flush(timeout_s=10)
            assert len(sink.events) == 1
        assert lines[0] == "event: message_start"

    def test_raw_error_in_stream_bytes(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """An error event read as raw bytes is recorded as an error with the tokens seen."""
        events = stream_events(input_tokens=12)[:3]
        events.append({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        api.reply_sse(sse_body(events))
        with api.streamed_client().messages.with_streaming_response.create(**KW, stream=True) as response:
            for _ in response.iter_lines():
                pass
        [event] = flushed(sink)
        assert (event.status, event.error_type, event.input_tokens) == (Status.ERROR, "overloaded_error", 12)

    def test_raw_api_error(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A raw call that fails is recorded once and raises as usual."""
        api.reply_error(400, "invalid_request_error", "bad")
        with pytest.raises(anthropic.BadRequestError):
            api.client().messages.with_raw_response.create(**KW)
        [event] = flushed(sink)
        assert (event.status, event.api) == (Status.MALFORMED_REQUEST, "messages.create")

    def test_direct_post(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """Even client.post('/v1/messages') is tracked, at the HTTP level."""
        api.reply_json(message_body(input_tokens=7, output_tokens=3))
        client = api.client()
        client.post("/v1/messages", body=KW, cast_to=anthropic.types.Message)
        [event] = flushed(sink)
        assert (event.api, event.input_tokens, event.output_tokens) == ("messages.create", 7, 3)

    def test_method_kept_from_before_init(self, api: FakeAnthropicAPI) -> None:
        """A stream method taken before init() is tracked once, and named from its request."""
        client = api.client()
        stream_method = client.messages.stream
        memory = MemorySink()
        fluxgate.init(sinks=[memory])
        with stream_method(**KW) as stream:
            stream.until_done()
        [event] = flushed(memory)
        assert (event.streamed, event.api) == (True, "messages.stream")


@pytest.mark.skipif(not HAS_RUNNER, reason="beta.messages.tool_runner is not in this anthropic release")
class TestToolRunner:
    @staticmethod
    def script(api: FakeAnthropicAPI) -> None:
        tool_use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
        api.reply_json(
            {**message_body(input_tokens=100, output_tokens=20, stop_reason="tool_use"), "content": [tool_use]}
        )
        api.reply_json(message_body(input_tokens=150, output_tokens=10))

    @staticmethod
    def tool() -> Any:
        @anthropic.beta_tool
        def get_weather(city: str) -> str:
            """The weather in a city."""
            return "sunny"

        return get_weather

    def test_each_turn_is_an_event(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """Every request of a tool runner is its own event, in the context the runner was made in."""
        self.script(api)
        with track_context(feature="agent", user="u7"):
            runner = api.client().beta.messages.tool_runner(**KW, tools=[self.tool()])
        messages = list(runner)  # iterated outside the scope: the runner's context still applies
        first, second = flushed(sink)
        assert [(e.input_tokens, e.output_tokens) for e in (first, second)] == [(100, 20), (150, 10)]
        assert {(e.feature, e.user_id) for e in (first, second)} == {("agent", "u7")}
        assert first.cost_usd == sonnet_46_cost(100, 20)
        assert first.api.startswith("beta.messages.")
        assert [m.fluxgate_cost_tracking_response.tracking_id for m in messages] == [
            first.tracking_id,
            second.tracking_id,
        ]

    def test_until_done_async(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """The async runner's until_done() records every turn."""
        self.script(api)

        @anthropic.beta_async_tool
        async def get_weather(city: str) -> str:
            """The weather in a city."""
            return "sunny"

        async def main() -> Any:
            async with track_context(feature="async-agent"):
                runner = api.async_client().beta.messages.tool_runner(**KW, tools=[get_weather])
                return await runner.until_done()

        final = asyncio.run(main())
        events = flushed(sink)
        assert [(e.input_tokens, e.feature) for e in events] == [(100, "async-agent"), (150, "async-agent")]
        assert final.fluxgate_cost_tracking_response.tracking_id == events[1].tracking_id


def legacy_client(api: FakeAnthropicAPI, mode: str) -> Any:
    return api.async_client() if mode == "async" else api.client()


@pytest.mark.skipif(not HAS_COMPLETIONS, reason="legacy completions were removed in anthropic 1.0")
class TestLegacyCompletions:
    @pytest.mark.parametrize("mode", ["sync", "async"])
    @pytest.mark.parametrize("stream", [False, True])
    def test_recorded_without_usage(self, sink: MemorySink, mode: str, stream: bool) -> None:
        """completions.create gives one event: model and stop reason, tokens unknown, cost None."""
        api = FakeAnthropicAPI(responder=fixed)
        client = legacy_client(api, mode)
        kwargs = {"model": "claude-2.1", "max_tokens_to_sample": 256, "prompt": "\n\nHuman: Hi\n\nAssistant:"}

        async def run_async() -> Any:
            result = await client.completions.create(**kwargs, stream=stream)
            if stream:
                assert "".join([c.completion async for c in result]) == " Hello!"
            return result

        if mode == "async":
            result = asyncio.run(run_async())
        else:
            result = client.completions.create(**kwargs, stream=stream)
            if stream:
                assert "".join(c.completion for c in result) == " Hello!"
        [event] = flushed(sink)
        assert (event.api, event.model, event.streamed) == ("completions.create", "claude-2.1", stream)
        assert (event.input_tokens, event.output_tokens) == (0, 0)
        assert (event.cost_usd, event.cost_status, event.status) == (None, "unpriced_model", Status.SUCCESS)
        assert event.stop_reason == "stop_sequence"
        assert result.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    def test_legacy_raw(self, sink: MemorySink) -> None:
        """completions.with_raw_response is tracked too."""
        api = FakeAnthropicAPI(responder=fixed)
        response = api.client().completions.with_raw_response.create(
            model="claude-2.1", max_tokens_to_sample=8, prompt="\n\nHuman: Hi\n\nAssistant:"
        )
        assert response.parse().completion == " Hello!"
        [event] = flushed(sink)
        assert (event.api, event.model) == ("completions.create", "claude-2.1")


class TestRecordingsThroughPaths:
    """The real recordings in tests/fixtures/anthropic, each through the paths that fit it."""

    BETA_JSON = (
        "beta-compaction-iterations-claude-sonnet-4-6.json",
        "beta-programmatic-tool-call-claude-opus-4-5.json",
        "beta-programmatic-tool-call-zero-usage-claude-opus-4-5.json",
        "beta-structured-output-claude-sonnet-4-5.json",
        "beta-thinking-tool-use-claude-sonnet-4.json",
        "beta-web-search-claude-haiku-4-5.json",
    )
    BETA_SSE = (
        "beta-stream-compaction-iterations-claude-sonnet-4-6.json",
        "beta-stream-redacted-thinking-claude-sonnet-4-5.json",
        "beta-stream-structured-output-claude-sonnet-4-5.json",
        "beta-stream-text-claude-3-5-haiku.json",
        "beta-stream-tool-search-input-grows-claude-sonnet-4-6.json",
        "beta-stream-tool-use-claude-haiku-4-5.json",
    )
    PLAIN_SSE = (
        "stream-text-claude-3-haiku.json",
        "stream-max-tokens-claude-3-opus.json",
        "stream-cache-read-claude-sonnet-4.json",
        "stream-cache-write-claude-sonnet-4.json",
        "stream-text-cumulative-delta-claude-sonnet-4.json",
        "stream-thinking-claude-3-7-sonnet.json",
        "stream-text-cache-creation-breakdown-claude-3-5-haiku.json",
        "stream-tool-use-two-calls-claude-3-5-sonnet.json",
        "stream-cache-read-claude-3-5-sonnet.json",
        "stream-cache-write-claude-3-5-sonnet.json",
    )
    PLAIN_JSON = (
        "text-claude-3-opus.json",
        "cache-read-claude-3-5-sonnet.json",
        "cache-write-claude-3-5-sonnet.json",
        "cache-write-1h-ttl-claude-sonnet-4.json",
        "thinking-claude-sonnet-4.json",
        "tool-use-two-calls-claude-3-5-sonnet.json",
    )

    @staticmethod
    def args(recording: dict[str, Any]) -> dict[str, Any]:
        request = dict(recording["request"])
        kwargs = {k: request.pop(k) for k in ("model", "max_tokens", "messages")}
        request.pop("stream", None)
        kwargs["extra_body"] = request or None
        return kwargs

    @staticmethod
    def check(event: CostEvent, recording: dict[str, Any], api_name: str) -> None:
        expected = recording["expected"]
        assert event.api == api_name
        assert (event.model, event.input_tokens, event.output_tokens) == (
            expected["model"],
            expected["input_tokens"],
            expected["output_tokens"],
        )
        assert event.cache_creation_input_tokens == (expected["cache_creation_input_tokens"] or 0)
        assert event.cache_read_input_tokens == (expected["cache_read_input_tokens"] or 0)
        assert event.stop_reason == expected["stop_reason"]
        server = expected.get("server_tool_use") or {}
        assert event.web_search_requests == (server.get("web_search_requests") or 0)
        assert event.web_fetch_requests == (server.get("web_fetch_requests") or 0)
        assert event.cost_status in ("priced", "estimated_price", "estimated_usage", "partial")

    @pytest.mark.parametrize("name", BETA_JSON)
    def test_beta_create_and_raw(self, sink: MemorySink, name: str) -> None:
        """Beta JSON recordings through beta.messages.create and its raw-response view."""
        recording = load_recording(name)
        api = FakeAnthropicAPI()
        api.reply_recording(recording)
        api.reply_recording(recording)
        client = api.client()
        message = client.beta.messages.create(**self.args(recording))
        raw = client.beta.messages.with_raw_response.create(**self.args(recording))
        first, second = flushed(sink)
        self.check(first, recording, "beta.messages.create")
        self.check(second, recording, "beta.messages.create")
        assert first.cost_usd == second.cost_usd
        assert message.fluxgate_cost_tracking_response.tracking_id == first.tracking_id
        assert raw.fluxgate_cost_tracking_response.tracking_id == second.tracking_id

    def test_web_search_is_priced(self, sink: MemorySink) -> None:
        """server_tool_use.web_search_requests is on the event and in its cost ($10 per 1,000)."""
        recording = load_recording("beta-web-search-claude-haiku-4-5.json")
        api = FakeAnthropicAPI()
        api.reply_recording(recording)
        api.client().beta.messages.create(**self.args(recording))
        [event] = flushed(sink)
        assert event.web_search_requests == 1
        assert event.cost_breakdown["web_search"] == Decimal("0.01")

    @pytest.mark.parametrize("name", BETA_SSE)
    def test_beta_streams(self, sink: MemorySink, name: str) -> None:
        """Beta stream recordings through beta.messages.create(stream=True) and the streaming-response view."""
        recording = load_recording(name)
        api = FakeAnthropicAPI()
        api.reply_recording(recording)
        api.reply_recording(recording)
        client = api.client()
        for _ in client.beta.messages.create(**self.args(recording), stream=True):
            pass
        with client.beta.messages.with_streaming_response.create(**self.args(recording), stream=True) as response:
            for _ in response.iter_lines():
                pass
        first, second = flushed(sink)
        self.check(first, recording, "beta.messages.create")
        self.check(second, recording, "beta.messages.create")
        assert first.cost_usd == second.cost_usd

    @pytest.mark.parametrize(
        "name", ["beta-stream-text-claude-3-5-haiku.json", "beta-stream-tool-use-claude-haiku-4-5.json"]
    )
    def test_beta_stream_helper(self, sink: MemorySink, name: str) -> None:
        """Plain beta streams through the beta.messages.stream() helper."""
        recording = load_recording(name)
        api = FakeAnthropicAPI()
        api.reply_recording(recording)
        with api.client().beta.messages.stream(**self.args(recording)) as stream:
            final = stream.get_final_message()
        [event] = flushed(sink)
        self.check(event, recording, "beta.messages.stream")
        assert final.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    @pytest.mark.parametrize("name", PLAIN_SSE)
    def test_stream_helper(self, sink: MemorySink, name: str) -> None:
        """Stream recordings through messages.stream() and get_final_message()."""
        recording = load_recording(name)
        api = FakeAnthropicAPI()
        api.reply_recording(recording)
        with api.client().messages.stream(**self.args(recording)) as stream:
            final = stream.get_final_message()
        [event] = flushed(sink)
        self.check(event, recording, "messages.stream")
        assert final.usage.output_tokens == event.output_tokens
        assert final.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    @pytest.mark.parametrize("name", PLAIN_JSON)
    def test_raw_and_streaming_views(self, sink: MemorySink, name: str) -> None:
        """JSON recordings through with_raw_response and with_streaming_response."""
        recording = load_recording(name)
        api = FakeAnthropicAPI()
        api.reply_recording(recording)
        api.reply_recording(recording)
        client = api.client()
        client.messages.with_raw_response.create(**self.args(recording)).parse()
        with client.messages.with_streaming_response.create(**self.args(recording)) as response:
            response.read()
        first, second = flushed(sink)
        self.check(first, recording, "messages.create")
        self.check(second, recording, "messages.create")

    def test_legacy_complete(self, sink: MemorySink) -> None:
        """The recorded /v1/complete call, which has no usage: tokens unknown, cost None, model kept."""
        recording = load_recording("legacy-complete-claude-instant-1-2.json")
        api = FakeAnthropicAPI()
        api.reply_recording(recording)
        client = api.client()
        if HAS_COMPLETIONS:
            client.completions.create(**recording["request"])
        else:  # no completions resource since anthropic 1.0: the HTTP level still sees the call
            client.post("/v1/complete", body=recording["request"], cast_to=object)
        [event] = flushed(sink)
        assert (event.api, event.model, event.stop_reason) == (
            "completions.create",
            "claude-instant-1.2",
            "stop_sequence",
        )
        assert (event.input_tokens, event.output_tokens, event.cost_usd) == (0, 0, None)
        assert event.cost_status == "unpriced_model"


@pytest.mark.skipif(
    not hasattr(anthropic.resources.beta.messages.Messages, "thread"),
    reason="beta.messages.thread is not in this release",
)
class TestThreads:
    def test_each_turn_is_an_event(self, sink: MemorySink) -> None:
        """Every turn of a message thread is its own event: a send is a create, a stream a stream."""
        api = FakeAnthropicAPI(responder=fixed)
        thread = api.client().beta.messages.thread(model="claude-sonnet-4-6", max_tokens=64)
        with track_context(feature="threaded"):
            reply = thread.send({"role": "user", "content": "Hi"})
            with thread.stream({"role": "user", "content": "More"}) as stream:
                stream.until_done()
        first, second = flushed(sink)
        assert [(e.api, e.streamed) for e in (first, second)] == [
            ("beta.messages.create", False),
            ("beta.messages.stream", True),
        ]
        assert {(e.input_tokens, e.output_tokens, e.feature) for e in (first, second)} == {(IN, OUT, "threaded")}
        assert reply.fluxgate_cost_tracking_response.tracking_id == first.tracking_id


class TestIsolation:
    def test_concurrent_tasks_on_lazy_paths(self, sink: MemorySink) -> None:
        """Concurrent tasks using stream helpers and streaming responses each record their own context."""
        api = FakeAnthropicAPI(responder=fixed)

        async def work(client: Any, i: int) -> None:
            async with track_context(feature=f"f{i}"):
                await asyncio.sleep(0)
                if i % 2:
                    async with client.messages.stream(**KW) as stream:
                        await stream.get_final_message()
                else:
                    async with client.messages.with_streaming_response.create(**KW, stream=True) as response:
                        async for _ in response.iter_lines():
                            await asyncio.sleep(0)

        async def main() -> None:
            client = api.async_streamed_client()
            await asyncio.gather(*(work(client, i) for i in range(60)))

        asyncio.run(main())
        events = flushed(sink)
        assert sorted(e.feature for e in events) == sorted(f"f{i}" for i in range(60))  # type: ignore[type-var]
        assert {e.api for e in events} == {"messages.stream", "messages.create"}
        assert all((e.input_tokens, e.output_tokens) == (IN, OUT) for e in events)
