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

import hashlib
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


def _cached_prefix(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The request text up to its last ``cache_control`` mark, and that mark's ttl."""
    parts: list[Any] = []
    found: tuple[str | None, str | None] = (None, None)
    for key in ("tools", "system", "messages"):
        value = body.get(key)
        blocks = value if isinstance(value, list) else [value]
        for block in blocks:
            parts.append(block)
            inner = block.get("content") if isinstance(block, Mapping) else None
            marks = [block, *(inner if isinstance(inner, list) else [])]
            for mark in marks:
                control = mark.get("cache_control") if isinstance(mark, Mapping) else None
                if isinstance(control, Mapping):
                    found = (json.dumps(parts, sort_keys=True, default=str), control.get("ttl"))
    return found


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
        self._cache: set[str] = set()

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
        received = FakeRequest(method=request.method, path=request.url.path, headers=dict(request.headers), body=body)
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

    def _input_usage(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Input tokens as the API counts them, with prompt caching.

        The prefix up to the last block marked ``cache_control`` is written to
        the cache the first time it is seen (at the 5-minute or 1-hour rate, by
        its ``ttl``) and read from it afterwards, as the real API does.
        """
        total = _estimate_tokens(body)
        prefix, ttl = _cached_prefix(body)
        if prefix is None:
            return {"input_tokens": total, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        cached = min(total, max(1, len(prefix) // 4))
        key = hashlib.sha256(prefix.encode()).hexdigest()
        with self._lock:
            hit = key in self._cache
            self._cache.add(key)
        if hit:
            return {"input_tokens": total - cached, "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}
        split = {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0}
        split["ephemeral_1h_input_tokens" if ttl == "1h" else "ephemeral_5m_input_tokens"] = cached
        return {
            "input_tokens": total - cached,
            "cache_creation_input_tokens": cached,
            "cache_read_input_tokens": 0,
            "cache_creation": split,
        }

    def _default(self, request: FakeRequest, number: int) -> FakeReply:
        body = request.body if isinstance(request.body, Mapping) else {}
        model = str(body.get("model", "claude-sonnet-4-6"))
        max_tokens = int(body.get("max_tokens", 1024))
        words = _REPLY_TEXT.split(" ")
        # A reply length that varies with the prompt (and repeats for the same
        # prompt), from a short answer to a few hundred tokens.
        digest = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True, default=str).encode()).digest()
        wanted = 24 + int.from_bytes(digest[:2], "big") % 360
        output_tokens = min(max_tokens, wanted)
        stop_reason = "end_turn" if output_tokens < max_tokens else "max_tokens"
        count = max(1, output_tokens * 3 // 4)
        text = " ".join(words[i % len(words)] for i in range(count))
        usage = {**self._input_usage(body), "output_tokens": output_tokens, "service_tier": "standard"}
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

    # -- Bedrock, Vertex and Message Batches (appended for the call-path tests) --

    def streamed_client(self, **options: Any) -> Any:
        """An ``anthropic.Anthropic`` whose fake sends each body in chunks, as a network does.

        With :meth:`client` every body is in memory before the SDK sees it;
        here nothing is read until the SDK or the user reads it, so a test can
        tell whether a body was consumed.
        """
        import anthropic

        options.setdefault("api_key", "sk-ant-fake-key")
        options.setdefault("max_retries", 0)
        return anthropic.Anthropic(http_client=_httpx().Client(transport=self.platform_transport()), **options)

    def async_streamed_client(self, **options: Any) -> Any:
        """The async twin of :meth:`streamed_client`."""
        import anthropic

        options.setdefault("api_key", "sk-ant-fake-key")
        options.setdefault("max_retries", 0)
        transport = self.platform_transport(asynchronous=True)
        return anthropic.AsyncAnthropic(http_client=_httpx().AsyncClient(transport=transport), **options)

    def platform_transport(self, *, asynchronous: bool = False, chunk_size: int = 64) -> Any:
        """A ``MockTransport`` that also serves Bedrock, Vertex and the Message Batches routes.

        Bedrock: ``/model/{id}/invoke`` (JSON) and ``/model/{id}/invoke-with-response-stream``
        (AWS event-stream frames). Vertex: ``.../models/{id}:rawPredict`` and
        ``:streamRawPredict`` (SSE). The model id is in the path, as the SDK
        sends it; replies are scripted or made as for ``/v1/messages``.
        Batches: ``POST /v1/messages/batches`` (ended at once), ``GET`` the
        batch and its JSONL ``results``. Other paths go to the plain fake.
        Every body is sent in chunks of ``chunk_size`` bytes, unread until read
        (``asynchronous`` for an ``AsyncClient``).
        """
        httpx = _httpx()

        def handle(request: Any) -> Any:
            response = self._serve_platforms(request)
            body = response.content
            pieces = [body[i : i + chunk_size] for i in range(0, len(body), chunk_size)]
            content = _achunks(pieces) if asynchronous else iter(pieces)
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return httpx.MockTransport(handle)

    def batches_client(self, **options: Any) -> Any:
        """An ``anthropic.Anthropic`` whose fake also serves Message Batches."""
        import anthropic

        options.setdefault("api_key", "sk-ant-fake-key")
        options.setdefault("max_retries", 0)
        return anthropic.Anthropic(http_client=_httpx().Client(transport=self.platform_transport()), **options)

    def async_batches_client(self, **options: Any) -> Any:
        """An ``anthropic.AsyncAnthropic`` whose fake also serves Message Batches."""
        import anthropic

        options.setdefault("api_key", "sk-ant-fake-key")
        options.setdefault("max_retries", 0)
        transport = self.platform_transport(asynchronous=True)
        return anthropic.AsyncAnthropic(http_client=_httpx().AsyncClient(transport=transport), **options)

    def bedrock_client(self, *, asynchronous: bool = False, **options: Any) -> Any:
        """An ``AnthropicBedrock`` (or the async one) talking to this fake, with no AWS credentials.

        Releases with Bedrock API keys get a fake key; older ones (SigV4 only)
        get their request signing switched off on this client. Without
        botocore, the SDK cannot decode Bedrock's event stream, so this client
        gets a decoder of the same frames (``fluxgate._wire``).
        """
        import importlib.util
        import inspect

        import anthropic

        cls = anthropic.AsyncAnthropicBedrock if asynchronous else anthropic.AnthropicBedrock
        httpx = _httpx()
        http_client = httpx.AsyncClient if asynchronous else httpx.Client
        options.setdefault("aws_region", "us-east-1")
        options.setdefault("max_retries", 0)
        keyed = "api_key" in inspect.signature(cls.__init__).parameters
        if keyed:
            options.setdefault("api_key", "fake-bedrock-api-key")
        else:
            options.setdefault("aws_access_key", "AKIAFAKE")
            options.setdefault("aws_secret_key", "fake-secret")
        client = cls(http_client=http_client(transport=self.platform_transport(asynchronous=asynchronous)), **options)
        if not keyed:  # no SigV4 signing: it needs boto3 and real credentials
            vars(client)["_prepare_request"] = _unsigned_async if asynchronous else _unsigned
        if importlib.util.find_spec("botocore") is None:
            vars(client)["_make_sse_decoder"] = _AWSEventStreamDecoder
        return client

    def vertex_client(self, *, asynchronous: bool = False, **options: Any) -> Any:
        """An ``AnthropicVertex`` (or the async one) talking to this fake, with a fake access token."""
        import anthropic

        cls = anthropic.AsyncAnthropicVertex if asynchronous else anthropic.AnthropicVertex
        httpx = _httpx()
        http_client = httpx.AsyncClient if asynchronous else httpx.Client
        options.setdefault("region", "us-east5")
        options.setdefault("project_id", "fake-project")
        options.setdefault("access_token", "fake-vertex-token")
        options.setdefault("max_retries", 0)
        return cls(http_client=http_client(transport=self.platform_transport(asynchronous=asynchronous)), **options)

    def script_batch_result(self, custom_id: str, result: Mapping[str, Any]) -> None:
        """Make the next batch that contains ``custom_id`` return ``result`` for it.

        ``result`` is the ``result`` object of a results line, e.g.
        ``{"type": "succeeded", "message": {...}}`` or ``{"type": "expired"}``.
        """
        self._batch_state()["scripted"][custom_id] = dict(result)

    def add_batch(self, batch_id: str, results: Sequence[Mapping[str, Any]]) -> None:
        """Serve a batch this fake did not create (one made elsewhere), ended, with these result lines."""
        self._batch_state()["batches"][batch_id] = [dict(line) for line in results]

    def _batch_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.__dict__.setdefault("_fluxgate_batches", {"batches": {}, "scripted": {}})
        return state

    def _serve_platforms(self, request: Any) -> Any:
        import re

        path = request.url.path
        bedrock = re.search(r"/model/(?P<model>[^/]+)/(?P<op>invoke-with-response-stream|invoke)$", path)
        vertex = re.search(r"/publishers/anthropic/models/(?P<model>[^/:]+):(?P<op>streamRawPredict|rawPredict)$", path)
        if bedrock is None and vertex is None and not path.startswith("/v1/messages/batches"):
            return self._handle(request)
        httpx = _httpx()
        raw = request.read() if hasattr(request, "read") else request.content
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        received = FakeRequest(method=request.method, path=path, headers=dict(request.headers), body=body)
        with self._lock:
            self.requests.append(received)
            self._count += 1
            number = self._count
        if bedrock is None and vertex is None:
            return self._serve_batches(request.method, path, body, number)
        found = bedrock or vertex
        assert found is not None
        streamed = found.group("op") in ("invoke-with-response-stream", "streamRawPredict")
        with self._lock:
            reply = self._scripted.popleft() if self._scripted else None
        if reply is None and self._responder is not None:
            reply = self._responder(received)
        if reply is None:
            synthetic = {**(body if isinstance(body, dict) else {}), "model": found.group("model"), "stream": streamed}
            reply = self._default(attrs.evolve(received, body=synthetic), number)
        headers = {"request-id": f"req_fake_{number:06d}", **reply.headers}
        if reply.sse is not None and bedrock is not None:
            headers["content-type"] = "application/vnd.amazon.eventstream"
            return httpx.Response(reply.status, headers=headers, content=_event_stream_body(reply.sse))
        if reply.sse is not None:
            headers["content-type"] = "text/event-stream"
            return httpx.Response(reply.status, headers=headers, content=reply.sse.encode())
        return httpx.Response(reply.status, headers=headers, json=reply.json_body)

    def _serve_batches(self, method: str, path: str, body: Any, number: int) -> Any:
        httpx = _httpx()
        state = self._batch_state()
        parts = path.rstrip("/").split("/")  # ["", "v1", "messages", "batches", id?, "results"?]
        if method == "POST" and len(parts) == 4:
            batch_id = f"msgbatch_fake_{number:06d}"
            lines = []
            for i, request in enumerate((body or {}).get("requests", [])):
                custom_id = request["custom_id"]
                result = state["scripted"].pop(custom_id, None)
                if result is None:
                    params = FakeRequest(method="POST", path="/v1/messages", headers={}, body=request["params"])
                    message = self._default(params, number * 1000 + i).json_body
                    result = {"type": "succeeded", "message": message}
                lines.append({"custom_id": custom_id, "result": result})
            state["batches"][batch_id] = lines
            return httpx.Response(200, json=_batch_json(batch_id, lines))
        batch_id = parts[4] if len(parts) > 4 else ""
        lines = state["batches"].get(batch_id)
        if lines is None:
            error = {"type": "error", "error": {"type": "not_found_error", "message": f"no batch {batch_id}"}}
            return httpx.Response(404, json=error)
        if len(parts) == 6 and parts[5] == "results":
            text = "".join(json.dumps(line) + "\n" for line in lines)
            return httpx.Response(200, headers={"content-type": "application/binary"}, content=text.encode())
        return httpx.Response(200, json=_batch_json(batch_id, lines))


def _batch_json(batch_id: str, lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    for line in lines:
        kind = line["result"]["type"]
        counts[kind] = counts.get(kind, 0) + 1
    return {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": "ended",
        "request_counts": counts,
        "created_at": "2026-11-27T00:00:00Z",
        "ended_at": "2026-11-27T00:05:00Z",
        "expires_at": "2026-11-28T00:00:00Z",
        "archived_at": None,
        "cancel_initiated_at": None,
        "results_url": f"https://api.anthropic.com/v1/messages/batches/{batch_id}/results",
    }


def _event_stream_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude, CRC, string headers, payload, CRC."""
    import struct
    import zlib

    raw_headers = b""
    for name, value in headers.items():
        encoded_name, encoded_value = name.encode(), value.encode()
        raw_headers += struct.pack(">B", len(encoded_name)) + encoded_name
        raw_headers += struct.pack(">BH", 7, len(encoded_value)) + encoded_value
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw_headers + payload
    return head + struct.pack(">I", zlib.crc32(head))


def _event_stream_body(sse: str) -> bytes:
    """An SSE body re-encoded as Bedrock's ``invoke-with-response-stream`` sends it."""
    import base64

    out = b""
    for block in sse.split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in block.split("\n") if line.startswith("data:"))
        if not data:
            continue
        event = json.loads(data)
        if event.get("type") == "error":
            error = event.get("error") or {}
            headers = {
                ":message-type": "exception",
                ":exception-type": str(error.get("type", "error")),
                ":content-type": "application/json",
            }
            out += _event_stream_frame(headers, json.dumps({"message": error.get("message", "")}).encode())
            continue
        payload = {"bytes": base64.b64encode(data.encode()).decode(), "p": "abcdefghijklmnop"}
        headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
        out += _event_stream_frame(headers, json.dumps(payload).encode())
    return out


async def _achunks(pieces: Sequence[bytes]) -> Any:
    for piece in pieces:
        yield piece


def _unsigned(request: Any) -> None:
    """A Bedrock client's request signing, switched off (the fake needs no credentials)."""


async def _unsigned_async(request: Any) -> None:
    """The async twin of ``_unsigned``."""


class _AWSEventStreamDecoder:
    """Stands in for the SDK's botocore-based Bedrock decoder when botocore is not installed."""

    def iter_bytes(self, iterator: Iterator[bytes]) -> Iterator[Any]:
        from anthropic._streaming import ServerSentEvent

        from ._wire import EventStreamParser

        parser = EventStreamParser()
        for chunk in iterator:
            for event in parser.feed(chunk):
                yield ServerSentEvent(event=str(event.get("type")), data=json.dumps(event))

    async def aiter_bytes(self, iterator: Any) -> Any:
        from anthropic._streaming import ServerSentEvent

        from ._wire import EventStreamParser

        parser = EventStreamParser()
        async for chunk in iterator:
            for event in parser.feed(chunk):
                yield ServerSentEvent(event=str(event.get("type")), data=json.dumps(event))
