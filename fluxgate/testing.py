"""Helpers for testing code that uses fluxgate, and fluxgate itself.

- :class:`MemorySink` keeps events in a list.
- :func:`capture_events` records every event made inside a ``with`` block.
- :class:`FakeAnthropicAPI` is an in-process fake of the Messages API that
  speaks the real wire format (JSON bodies and server-sent event streams). It
  plugs into a real anthropic client as its HTTP transport, so everything
  above the transport (the SDK, fluxgate's patches) runs for real.

>>> api = FakeAnthropicAPI()
>>> client = api.client()
>>> with capture_events() as events:
...     _ = client.messages.create(model="claude-sonnet-4-6", max_tokens=64,
...                                messages=[{"role": "user", "content": "Hi"}])
>>> events[0].model
'claude-sonnet-4-6'
"""

from __future__ import annotations

import importlib
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from ._models import CostEvent
from ._runtime import active
from ._setup import init, shutdown

__all__ = ["FakeAnthropicAPI", "FakeReply", "FakeRequest", "MemorySink", "capture_events", "sse_body"]


class MemorySink:
    """A sink that keeps every event in ``.events`` (thread-safe appends)."""

    def __init__(self) -> None:
        self.events: list[CostEvent] = []
        self.closed = False
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemorySink({len(self.events)} events)"

    def write(self, batch: Sequence[CostEvent]) -> None:
        """Append the batch, skipping events already stored (retried batches)."""
        with self._lock:
            for event in batch:
                if event.tracking_id not in self._seen:
                    self._seen.add(event.tracking_id)
                    self.events.append(event)

    def close(self) -> None:
        """Mark the sink closed; the events stay readable."""
        self.closed = True


@contextmanager
def capture_events(**options: Any) -> Iterator[list[CostEvent]]:
    """Record the events of every tracked call made inside the block.

    Starts fluxgate with a :class:`MemorySink` (``options`` go to ``init``),
    yields the sink's list, and on exit flushes, so the list is complete,
    then shuts down. A FluxGate that was active before is restored.

    >>> with capture_events() as events:
    ...     pass
    >>> events
    []
    """
    previous = active()
    sink = MemorySink()
    fg = init(sinks=[sink], **options)
    try:
        yield sink.events
    finally:
        fg.flush(timeout_s=10)
        shutdown(timeout_s=10)
        if previous is not None:
            from ._instrument import instrument
            from ._runtime import set_active

            set_active(previous)
            instrument()


# -- the fake Messages API --------------------------------------------------


def _httpx() -> Any:
    """The HTTP library the installed anthropic uses: httpx2 (2.x) or httpx."""
    base = importlib.import_module("anthropic._base_client")
    return getattr(base, "httpx2", None) or base.httpx


@attrs.frozen(kw_only=True)
class FakeRequest:
    """A request the fake received."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Any


@attrs.frozen(kw_only=True)
class FakeReply:
    """A scripted reply: a JSON body or a raw SSE body."""

    status: int = 200
    json_body: Any = None
    sse: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)


def sse_body(events: Sequence[Mapping[str, Any]]) -> str:
    """Encode events as a ``text/event-stream`` body, as the API sends them."""
    return "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events)


def _estimate_tokens(body: Mapping[str, Any]) -> int:
    text = json.dumps([body.get("system"), body.get("messages"), body.get("tools")])
    return max(1, len(text) // 4)


_REPLY_TEXT = (
    "Here is a concise answer from the fake Messages API. It has no model behind it, "
    "but it has the shape, the usage and the timing of a real reply."
)


class FakeAnthropicAPI:
    """An in-process fake of the Anthropic Messages API.

    Unscripted requests get a plausible reply: the requested model, input
    tokens estimated from the request's size, a short text, and for
    ``stream=True`` the real event sequence. Script exact replies with
    :meth:`reply` (or the ``reply_*`` shortcuts); they are served in order.
    ``.requests`` lists everything received, so tests can assert that a call
    was (or was not) sent.

    Args:
        responder: Decides the reply for unscripted requests instead of the
            default; called with the parsed JSON body.
    """

    def __init__(self, *, responder: Callable[[FakeRequest], FakeReply | None] | None = None) -> None:
        self.requests: list[FakeRequest] = []
        self._scripted: deque[FakeReply] = deque()
        self._responder = responder
        self._lock = threading.Lock()
        self._count = 0

    # -- scripting --

    def reply(self, reply: FakeReply) -> None:
        """Serve ``reply`` to the next request."""
        self._scripted.append(reply)

    def reply_json(self, body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        """Serve a JSON body next."""
        self.reply(FakeReply(status=status, json_body=body, headers=dict(headers or {})))

    def reply_sse(self, body: str, *, headers: Mapping[str, str] | None = None) -> None:
        """Serve a raw server-sent-events body next."""
        self.reply(FakeReply(sse=body, headers=dict(headers or {})))

    def reply_error(self, status: int, error_type: str, message: str) -> None:
        """Serve an API error next, in the API's error body shape."""
        body = {"type": "error", "error": {"type": error_type, "message": message}}
        self.reply_json(body, status=status, headers={"request-id": f"req_fake_error_{status}"})

    def reply_recording(self, recording: Mapping[str, Any] | str | Path) -> None:
        """Serve a recorded interaction (a file of ``shared/fixtures/anthropic``)."""
        data: Mapping[str, Any] = (
            recording if isinstance(recording, Mapping) else json.loads(Path(recording).read_text())
        )
        if data.get("sse") is not None:
            self.reply(FakeReply(status=int(data.get("status", 200)), sse=data["sse"]))
        else:
            self.reply_json(data.get("response"), status=int(data.get("status", 200)))

    # -- clients --

    def transport(self) -> Any:
        """An httpx(2) ``MockTransport`` serving this fake (sync and async)."""
        return _httpx().MockTransport(self._handle)

    def client(self, **options: Any) -> Any:
        """An ``anthropic.Anthropic`` talking to this fake."""
        import anthropic

        httpx = _httpx()
        options.setdefault("api_key", "sk-ant-fake-key")
        options.setdefault("max_retries", 0)
        return anthropic.Anthropic(http_client=httpx.Client(transport=self.transport()), **options)

    def async_client(self, **options: Any) -> Any:
        """An ``anthropic.AsyncAnthropic`` talking to this fake."""
        import anthropic

        httpx = _httpx()
        options.setdefault("api_key", "sk-ant-fake-key")
        options.setdefault("max_retries", 0)
        return anthropic.AsyncAnthropic(http_client=httpx.AsyncClient(transport=self.transport()), **options)

    # -- serving --

    def _handle(self, request: Any) -> Any:
        httpx = _httpx()
        raw = request.read() if hasattr(request, "read") else request.content
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        received = FakeRequest(
            method=request.method, path=request.url.path, headers=dict(request.headers), body=body
        )
        with self._lock:
            self.requests.append(received)
            self._count += 1
            number = self._count
            reply = self._scripted.popleft() if self._scripted else None
        if reply is None and self._responder is not None:
            reply = self._responder(received)
        if reply is None:
            reply = self._default(received, number)
        headers = {"request-id": f"req_fake_{number:06d}", **reply.headers}
        if reply.sse is not None:
            headers["content-type"] = "text/event-stream"
            return httpx.Response(reply.status, headers=headers, content=reply.sse.encode())
        return httpx.Response(reply.status, headers=headers, json=reply.json_body)

    def _default(self, request: FakeRequest, number: int) -> FakeReply:
        body = request.body if isinstance(request.body, Mapping) else {}
        model = str(body.get("model", "claude-sonnet-4-6"))
        max_tokens = int(body.get("max_tokens", 1024))
        words = _REPLY_TEXT.split(" ")
        output_tokens = min(max_tokens, len(words) * 4 // 3 + 1)
        stop_reason = "end_turn" if output_tokens < max_tokens else "max_tokens"
        text = " ".join(words[: max(1, output_tokens * 3 // 4)])
        usage = {
            "input_tokens": _estimate_tokens(body),
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        }
        message_id = f"msg_fake_{number:06d}"
        if not body.get("stream"):
            return FakeReply(
                json_body={
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": usage,
                }
            )
        start_usage = {**usage, "output_tokens": 1}
        events: list[dict[str, Any]] = [
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": start_usage,
                },
            },
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "ping"},
        ]
        pieces = text.split(" ")
        for i in range(0, len(pieces), 4):
            chunk = " ".join(pieces[i : i + 4]) + (" " if i + 4 < len(pieces) else "")
            events.append({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}})
        events += [
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
            {"type": "message_stop"},
        ]
        return FakeReply(sse=sse_body(events))
