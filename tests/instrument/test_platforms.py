"""Bedrock and Vertex clients: their model ids price right, the event names the platform.

The fake serves the platforms' real routes: Bedrock's ``/model/{id}/invoke``
and ``invoke-with-response-stream`` (AWS event-stream frames), Vertex's
``:rawPredict`` and ``:streamRawPredict``. Where botocore is not installed,
the Bedrock client decodes the frames with ``fluxgate._recording.wire`` instead of the
SDK's botocore decoder; fluxgate sees the same decoded events either way.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import zlib
from decimal import Decimal
from typing import Any

import anthropic
import pytest

import fluxgate
from fluxgate import CostEvent
from fluxgate._instrument.routes import platform_of
from fluxgate._recording.wire import EventStreamParser, SSEParser
from fluxgate.testing import (
    FakeAnthropicAPI,
    FakeReply,
    FakeRequest,
    MemorySink,
    sse_body,
)
from fluxgate.testing._fake_wire import event_stream_body as _event_stream_body
from fluxgate.testing._fake_wire import event_stream_frame as _event_stream_frame
from fluxgate.testing._fake_wire import http_library as _httpx

from ..helpers import HELLO, message_body, stream_events

IN, OUT = 2000, 300
MTOK = Decimal(1_000_000)
REGIONAL = Decimal("1.1")


def cost(rate_in: str, rate_out: str, *, times: Decimal = Decimal(1)) -> Decimal:
    return (IN * Decimal(rate_in) + OUT * Decimal(rate_out)) / MTOK * times


def fixed(request: FakeRequest) -> FakeReply:
    """Fixed usage; the platforms' replies carry the first-party model name, as they do."""
    streamed = request.path.endswith(("invoke-with-response-stream", ":streamRawPredict"))
    if streamed or (isinstance(request.body, dict) and request.body.get("stream")):
        return FakeReply(sse=sse_body(stream_events(input_tokens=IN, output_tokens=OUT)))
    return FakeReply(json_body=message_body(input_tokens=IN, output_tokens=OUT, model="claude-sonnet-4-5-20250929"))


def flushed(sink: MemorySink) -> list[CostEvent]:
    assert fluxgate.flush(timeout_s=10)
    return sink.events


def run(client: Any, ns: str, how: str, model: str, mode: str) -> Any:
    """One call through ``how``; returns the object the summary should hang on."""
    m = client.beta.messages if ns == "beta" else client.messages
    kwargs = {"model": model, "max_tokens": 512, "messages": HELLO}

    async def arun() -> Any:
        if how == "create":
            return await m.create(**kwargs)
        if how == "create-stream":
            stream = await m.create(**kwargs, stream=True)
            async for _ in stream:
                pass
            return stream
        if how == "stream":
            async with m.stream(**kwargs) as stream:
                return await stream.get_final_message()
        if how == "parse":
            return await m.parse(**kwargs)
        response = await m.with_raw_response.create(**kwargs)
        parsed = response.parse()
        return await parsed if asyncio.iscoroutine(parsed) else parsed

    if mode == "async":
        return asyncio.run(arun())
    if how == "create":
        return m.create(**kwargs)
    if how == "create-stream":
        stream = m.create(**kwargs, stream=True)
        for _ in stream:
            pass
        return stream
    if how == "stream":
        with m.stream(**kwargs) as stream:
            return stream.get_final_message()
    if how == "parse":
        return m.parse(**kwargs)
    return m.with_raw_response.create(**kwargs).parse()


HOWS = ["create", "create-stream", "stream", "parse", "raw"]


def available(client: Any, ns: str, how: str) -> bool:
    m = client.beta.messages if ns == "beta" else client.messages
    return how not in ("parse", "stream") or hasattr(m, how)


def streamed(how: str) -> bool:
    return how in ("create-stream", "stream")


class TestBedrock:
    @pytest.mark.parametrize("mode", ["sync", "async"])
    @pytest.mark.parametrize("ns", ["messages", "beta"])
    @pytest.mark.parametrize("how", HOWS)
    def test_regional_profile(self, sink: MemorySink, how: str, ns: str, mode: str) -> None:
        """A ``us.`` inference profile prices Sonnet 4.5 at the regional rate, on every path."""
        api = FakeAnthropicAPI(responder=fixed)
        client = api.bedrock_client(asynchronous=mode == "async")
        if not available(client, ns, how):
            pytest.skip(f"{ns}.{how} is not on this release's Bedrock client")
        model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
        tagged = run(client, ns, how, model, mode)
        [event] = flushed(sink)
        assert (event.platform, event.model) == ("bedrock", model)
        assert (event.input_tokens, event.output_tokens, event.streamed) == (IN, OUT, streamed(how))
        assert event.cost_usd == cost("3", "15", times=REGIONAL)
        assert event.api.startswith("beta.messages." if ns == "beta" else "messages.")
        assert tagged.fluxgate_cost_tracking_response.tracking_id == event.tracking_id
        [request] = api.requests
        suffix = "invoke-with-response-stream" if streamed(how) else "invoke"
        assert request.path == f"/model/{model}/{suffix}"

    @pytest.mark.parametrize(
        ("model", "rates"),
        [
            ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", ("3", "15", Decimal(1))),
            ("anthropic.claude-3-5-haiku-20241022-v1:0", ("0.80", "4", Decimal(1))),
            ("eu.anthropic.claude-haiku-4-5-20251001-v1:0", ("1", "5", REGIONAL)),
            ("anthropic.claude-opus-4-6-v1", ("5", "25", Decimal(1))),
        ],
    )
    def test_model_ids(self, sink: MemorySink, model: str, rates: tuple[str, str, Decimal]) -> None:
        """Bedrock ids resolve to the right price row: global and unprefixed ids carry no premium."""
        api = FakeAnthropicAPI(responder=fixed)
        api.bedrock_client().messages.create(model=model, max_tokens=10, messages=HELLO)
        [event] = flushed(sink)
        assert event.model == model
        assert event.cost_usd == cost(rates[0], rates[1], times=rates[2])

    def test_event_stream_read_as_bytes(self, sink: MemorySink) -> None:
        """A Bedrock stream read through with_streaming_response is decoded from its binary frames."""
        api = FakeAnthropicAPI(responder=fixed)
        client = api.bedrock_client()
        model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
        with client.messages.with_streaming_response.create(
            model=model, max_tokens=10, messages=HELLO, stream=True
        ) as response:
            assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
            body = b"".join(response.iter_bytes(chunk_size=5))
        [event] = flushed(sink)
        assert len(body) > 0
        assert (event.input_tokens, event.output_tokens, event.platform) == (IN, OUT, "bedrock")
        assert event.cost_usd == cost("3", "15", times=REGIONAL)

    def test_error_frame_in_stream(self, sink: MemorySink) -> None:
        """An exception frame mid-stream is recorded as an error, with the tokens seen."""
        events = stream_events(input_tokens=77)[:3]
        events.append({"type": "error", "error": {"type": "throttlingException", "message": "slow down"}})
        api = FakeAnthropicAPI()
        api.reply_sse(sse_body(events))
        stream = api.bedrock_client().messages.create(
            model="anthropic.claude-3-5-haiku-20241022-v1:0", max_tokens=10, messages=HELLO, stream=True
        )
        with pytest.raises(anthropic.APIError):
            for _ in stream:
                pass
        [event] = flushed(sink)
        assert (event.error_type, event.input_tokens) == ("throttlingException", 77)


class TestVertex:
    @pytest.mark.parametrize("mode", ["sync", "async"])
    @pytest.mark.parametrize("ns", ["messages", "beta"])
    @pytest.mark.parametrize("how", HOWS)
    def test_regional_endpoint(self, sink: MemorySink, how: str, ns: str, mode: str) -> None:
        """A regional Vertex endpoint prices Sonnet 4.5 at the regional rate, on every path."""
        api = FakeAnthropicAPI(responder=fixed)
        client = api.vertex_client(region="us-east5", asynchronous=mode == "async")
        if not available(client, ns, how):
            pytest.skip(f"{ns}.{how} is not on this release's Vertex client")
        model = "claude-sonnet-4-5@20250929"
        tagged = run(client, ns, how, model, mode)
        [event] = flushed(sink)
        assert (event.platform, event.model) == ("vertex", model)
        assert (event.input_tokens, event.output_tokens, event.streamed) == (IN, OUT, streamed(how))
        assert event.cost_usd == cost("3", "15", times=REGIONAL)
        assert tagged.fluxgate_cost_tracking_response.tracking_id == event.tracking_id
        [request] = api.requests
        verb = "streamRawPredict" if streamed(how) else "rawPredict"
        assert request.path.endswith(f"/locations/us-east5/publishers/anthropic/models/{model}:{verb}")

    def test_global_endpoint(self, sink: MemorySink) -> None:
        """The global Vertex endpoint carries no regional premium."""
        api = FakeAnthropicAPI(responder=fixed)
        api.vertex_client(region="global").messages.create(
            model="claude-sonnet-4-5@20250929", max_tokens=10, messages=HELLO
        )
        [event] = flushed(sink)
        assert event.cost_usd == cost("3", "15")

    def test_default_alias(self, sink: MemorySink) -> None:
        """``@default`` Vertex ids resolve too."""
        api = FakeAnthropicAPI(responder=fixed)
        api.vertex_client(region="global").messages.create(
            model="claude-opus-4-6@default", max_tokens=10, messages=HELLO
        )
        [event] = flushed(sink)
        assert (event.model, event.cost_usd) == ("claude-opus-4-6@default", cost("5", "25"))


class TestPlatformNames:
    @pytest.mark.parametrize(
        ("name", "platform"),
        [
            ("Anthropic", "anthropic"),
            ("AsyncAnthropic", "anthropic"),
            ("AnthropicBedrock", "bedrock"),
            ("AsyncAnthropicBedrock", "bedrock"),
            ("AnthropicBedrockMantle", "bedrock"),
            ("AnthropicVertex", "vertex"),
            ("AsyncAnthropicVertex", "vertex"),
            ("AnthropicFoundry", "foundry"),
            ("AnthropicAWS", "aws"),
            ("AnthropicGoogleCloud", "google-cloud"),
        ],
    )
    def test_every_platform_client(self, name: str, platform: str) -> None:
        """Each platform client the SDK ships is named on its events."""
        cls = getattr(anthropic, name, None)
        if cls is None:
            pytest.skip(f"anthropic {anthropic.__version__} has no {name}")
        assert platform_of(cls.__new__(cls)) == platform

    @pytest.mark.parametrize(
        ("name", "options", "platform"),
        [
            ("AnthropicFoundry", {"resource": "fake-resource", "api_key": "k"}, "foundry"),
            ("AnthropicAWS", {"api_key": "k", "aws_region": "us-east-1", "workspace_id": "ws"}, "aws"),
            (
                "AnthropicGoogleCloud",
                {"project": "p", "location": "global", "workspace_id": "ws", "skip_auth": True},
                "google-cloud",
            ),
            ("AnthropicBedrockMantle", {"api_key": "k", "aws_region": "us-east-1"}, "bedrock"),
        ],
    )
    def test_first_party_api_platforms(
        self, sink: MemorySink, name: str, options: dict[str, Any], platform: str
    ) -> None:
        """Clients that speak the first-party API on another platform are tracked and named."""
        cls = getattr(anthropic, name, None)
        if cls is None:
            pytest.skip(f"anthropic {anthropic.__version__} has no {name}")
        api = FakeAnthropicAPI(responder=fixed)
        client = cls(http_client=_httpx().Client(transport=api.transport()), max_retries=0, **options)
        message = client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=HELLO)
        [event] = flushed(sink)
        assert (event.platform, event.api, event.input_tokens, event.output_tokens) == (
            platform,
            "messages.create",
            IN,
            OUT,
        )
        assert message.fluxgate_cost_tracking_response.tracking_id == event.tracking_id

    def test_subclass(self) -> None:
        """A user's subclass of a platform client keeps the platform."""

        class MyBedrock(anthropic.AnthropicBedrock):  # type: ignore[misc]
            pass

        assert platform_of(MyBedrock.__new__(MyBedrock)) == "bedrock"


def frames(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


class TestWire:
    def test_event_stream_any_chunking(self) -> None:
        """The event-stream parser gives the same events however the bytes are split."""
        events = stream_events(input_tokens=5, output_tokens=6)
        body = _event_stream_body(sse_body(events))
        for size in (1, 3, 7, 64, len(body)):
            parser = EventStreamParser()
            got = [e for chunk in frames(body, size) for e in parser.feed(chunk)]
            assert got == events

    def test_event_stream_bad_crc_skipped(self) -> None:
        """A frame whose CRC does not match is dropped; the next one is read."""
        first = _event_stream_frame({":message-type": "event", ":event-type": "chunk"}, b'{"bytes": "e30="}')
        broken = bytearray(first)
        broken[-5] ^= 0xFF  # payload byte
        good = {"type": "message_stop"}
        payload = json.dumps({"bytes": base64.b64encode(json.dumps(good).encode()).decode()}).encode()
        second = _event_stream_frame({":message-type": "event", ":event-type": "chunk"}, payload)
        assert EventStreamParser().feed(bytes(broken) + second) == [good]

    def test_event_stream_corrupt_prelude(self) -> None:
        """A corrupt prelude stops the parser instead of misreading what follows."""
        parser = EventStreamParser()
        assert parser.feed(b"\x00\x00\x00\x10" + b"\x00" * 20) == []
        assert parser.feed(_event_stream_body(sse_body(stream_events()))) == []

    def test_frame_crc_is_crc32(self) -> None:
        """The fake's frames carry the CRC32 the format defines."""
        frame = _event_stream_frame({":message-type": "event"}, b"{}")
        assert int.from_bytes(frame[8:12], "big") == zlib.crc32(frame[:8])
        assert int.from_bytes(frame[-4:], "big") == zlib.crc32(frame[:-4])

    @pytest.mark.skipif(importlib.util.find_spec("botocore") is None, reason="botocore is not installed")
    def test_botocore_reads_the_fakes_frames(self) -> None:
        """Where botocore is installed, it decodes the fake's frames to the same events."""
        from botocore.eventstream import EventStreamBuffer

        events = stream_events()
        buffer = EventStreamBuffer()
        buffer.add_data(_event_stream_body(sse_body(events)))
        decoded = [json.loads(base64.b64decode(json.loads(m.payload)["bytes"])) for m in buffer]
        assert decoded == events

    def test_sse_any_chunking_and_crlf(self) -> None:
        """The SSE parser handles any split, CRLF line ends and multi-line data."""
        events = stream_events(input_tokens=9, output_tokens=8)
        text = sse_body(events).replace("\n", "\r\n").encode()
        useful = [e for e in events if e["type"] in ("message_start", "message_delta", "message_stop")]
        for size in (1, 5, 33, len(text)):
            parser = SSEParser()
            got = [e for chunk in frames(text, size) for e in parser.feed(chunk)]
            assert got + parser.end() == useful
        parser = SSEParser()
        assert parser.feed(b'data: {"type":\ndata: "message_stop"}\n\n') == [{"type": "message_stop"}]
