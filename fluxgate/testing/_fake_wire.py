"""What goes over the fake Messages API's wire, and how it is encoded.

:class:`FakeRequest` is a request the fake received and :class:`FakeReply`
a reply it sends. The encoders write bodies as the API sends them: server-sent
events (:func:`sse_body`) and, for Bedrock, AWS event-stream frames; bodies
can be served in chunks (:func:`achunks` for async clients) and, without
botocore, decoded by :class:`AWSEventStreamDecoder`. The fake itself is in
``_fake_messages`` and ``_fake_api``; ``fluxgate.testing`` re-exports the
public names.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "AWSEventStreamDecoder",
    "FakeReply",
    "FakeRequest",
    "achunks",
    "event_stream_body",
    "event_stream_frame",
    "http_library",
    "sse_body",
]


def http_library() -> Any:
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


def event_stream_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
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


def event_stream_body(sse: str) -> bytes:
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
            out += event_stream_frame(headers, json.dumps({"message": error.get("message", "")}).encode())
            continue
        payload = {"bytes": base64.b64encode(data.encode()).decode(), "p": "abcdefghijklmnop"}
        headers = {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
        out += event_stream_frame(headers, json.dumps(payload).encode())
    return out


async def achunks(pieces: Sequence[bytes]) -> Any:
    for piece in pieces:
        yield piece


class AWSEventStreamDecoder:
    """Stands in for the SDK's botocore-based Bedrock decoder when botocore is not installed."""

    def __init__(self, options: object = None) -> None:
        # anthropic 2.16 and later pass the request's options to _make_sse_decoder; a Bedrock
        # data-plane stream is event-stream framed whatever they say.
        del options

    def iter_bytes(self, iterator: Iterator[bytes]) -> Iterator[Any]:
        from anthropic._streaming import ServerSentEvent

        from .._recording import EventStreamParser

        parser = EventStreamParser()
        for chunk in iterator:
            for event in parser.feed(chunk):
                yield ServerSentEvent(event=str(event.get("type")), data=json.dumps(event))

    async def aiter_bytes(self, iterator: Any) -> Any:
        from anthropic._streaming import ServerSentEvent

        from .._recording import EventStreamParser

        parser = EventStreamParser()
        async for chunk in iterator:
            for event in parser.feed(chunk):
                yield ServerSentEvent(event=str(event.get("type")), data=json.dumps(event))
