"""finish_streams_at_exit: what a request leaves open is recorded when the request ends."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

import fluxgate
from fluxgate import CostEvent, track_context
from fluxgate._recording import OpenStreams, finish_streams_at_exit
from fluxgate.testing import FakeAnthropicAPI, MemorySink, sse_body
from fluxgate.testing._fake_wire import http_library

from ..helpers import HELLO, stream_events

KW: dict[str, Any] = {"model": "claude-sonnet-4-6", "max_tokens": 512, "messages": HELLO}


def flushed(sink: MemorySink) -> list[CostEvent]:
    assert fluxgate.flush(timeout_s=10)
    return list(sink.events)


def stalling_client(api: FakeAnthropicAPI, *, after: int, release: threading.Event) -> Any:
    """An Anthropic client whose streamed replies stop after ``after`` SSE events until ``release`` is set."""
    httpx = http_library()

    def frames(parts: list[bytes]) -> Iterator[bytes]:
        yield from parts[:after]
        assert release.wait(timeout=30)
        yield from parts[after:]

    def handle(request: Any) -> Any:
        response = api.transport().handle_request(request)
        body = response.read()
        parts = [frame + b"\n\n" for frame in body.split(b"\n\n") if frame.strip()]
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(response.status_code, headers=headers, content=frames(parts))

    return anthropic.Anthropic(
        api_key="sk-ant-fake-key", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(handle))
    )


class TestFinishStreamsAtExit:
    def test_stream_blocked_in_a_worker_thread(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A stream a worker thread stopped reading is recorded when the block ends, once, in its own context."""
        api.reply_sse(sse_body(stream_events(input_tokens=120)))
        release, reading = threading.Event(), threading.Event()
        client = stalling_client(api, after=4, release=release)

        def body() -> None:
            stream = client.messages.create(**KW, stream=True)
            for event in stream:
                if event.type == "content_block_delta":
                    reading.set()  # the next read blocks until release

        try:
            with track_context(feature="request", user="hal"), finish_streams_at_exit():
                worker = threading.Thread(target=contextvars.copy_context().run, args=(body,))
                worker.start()
                assert reading.wait(timeout=10)
            [event] = flushed(sink)  # recorded by the block's end, while the worker still waits
            assert (event.user_id, event.feature, event.aborted, event.cost_status) == (
                "hal",
                "request",
                True,
                "estimated_usage",
            )
            assert (event.input_tokens, event.output_tokens) == (120, 1)
        finally:
            release.set()
        worker.join(timeout=10)
        assert not worker.is_alive()
        assert len(flushed(sink)) == 1  # the worker reading on to the end adds nothing

    def test_finished_streams_are_left_alone(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A stream read to its end inside the block is recorded once, complete."""
        api.reply_sse(sse_body(stream_events(input_tokens=7, output_tokens=3)))
        with finish_streams_at_exit():
            for _ in api.client().messages.create(**KW, stream=True):
                pass
        [event] = flushed(sink)
        assert (event.aborted, event.cost_status, event.output_tokens) == (False, "priced", 3)

    def test_raw_body_left_unread(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A streaming raw response left unread is recorded when the block ends."""
        api.reply_sse(sse_body(stream_events(input_tokens=9)))
        with finish_streams_at_exit():
            response = api.streamed_client().messages.with_streaming_response.create(**KW, stream=True).__enter__()
            assert flushed(sink) == []
        [event] = flushed(sink)
        assert (event.aborted, event.streamed) == (True, True)
        response.close()
        assert len(flushed(sink)) == 1

    def test_outside_a_block_nothing_is_finished_early(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """Without the block, a stream made in a scope and read after it is recorded whole, at its end."""
        api.reply_sse(sse_body(stream_events(input_tokens=7, output_tokens=3)))
        with track_context(feature="made-here"):
            stream = api.client().messages.create(**KW, stream=True)
        assert flushed(sink) == []
        for _ in stream:
            pass
        [event] = flushed(sink)
        assert (event.feature, event.aborted, event.output_tokens) == ("made-here", False, 3)

    def test_many_streams_in_one_block(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A long block keeps no more than it must: finished streams are dropped as new ones come."""
        for _ in range(150):
            api.reply_sse(sse_body(stream_events()))
        with finish_streams_at_exit():
            client = api.client()
            for _ in range(150):
                for _ in client.messages.create(**KW, stream=True):
                    pass
            last = client.messages.create(**KW, stream=True)
            next(last)
        events = flushed(sink)
        assert len(events) == 151
        assert [e.aborted for e in events].count(True) == 1

    def test_the_block_propagates_errors(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """An exception inside the block propagates, and the open streams are still recorded."""
        api.reply_sse(sse_body(stream_events()))

        def failing_request() -> None:
            with finish_streams_at_exit():
                next(api.client().messages.create(**KW, stream=True))
                raise LookupError("the request failed")

        with pytest.raises(LookupError):
            failing_request()
        [event] = flushed(sink)
        assert event.aborted


class TestOpenStreams:
    def test_finish_after_the_block(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """Streams noted while collecting are finished when finish() is called, later (a response's close)."""
        api.reply_sse(sse_body(stream_events(input_tokens=7, output_tokens=3)))
        api.reply_sse(sse_body(stream_events(input_tokens=8, output_tokens=4)))
        opened = OpenStreams()
        client = api.client()
        with opened.collecting():
            read_later = client.messages.create(**KW, stream=True)
            left = client.messages.create(**KW, stream=True)
        for _ in read_later:  # the body is read after the handler returned, as Django does
            pass
        next(left)
        assert [e.aborted for e in flushed(sink)] == [False]
        opened.finish()
        assert [(e.input_tokens, e.aborted) for e in flushed(sink)] == [(7, False), (8, True)]

    def test_nothing_noted_outside(self, api: FakeAnthropicAPI, sink: MemorySink) -> None:
        """A stream made after the collecting block is not the holder's to finish."""
        api.reply_sse(sse_body(stream_events()))
        opened = OpenStreams()
        with opened.collecting():
            pass
        stream = api.client().messages.create(**KW, stream=True)
        next(stream)
        opened.finish()
        assert flushed(sink) == []
        stream.close()
        assert len(flushed(sink)) == 1
