"""Response bodies -> event dicts, read incrementally from the bytes a user reads.

Only raw-response paths need this (``with_raw_response`` with ``stream=True``
and ``with_streaming_response``): there the SDK hands the user the HTTP body,
and fluxgate may only look at the bytes the user pulls through, never read
ahead. Everywhere else the SDK has already decoded the events.

Three body formats reach us:

- ``text/event-stream``: the first-party and Vertex streams (server-sent events);
- ``application/vnd.amazon.eventstream``: Bedrock's ``invoke-with-response-stream``
  (AWS event-stream binary frames, each carrying ``{"bytes": base64(event JSON)}``);
- anything else is one JSON document (a ``Message`` or an error body).

The decoders are pure and never raise on bad input: a frame or line they cannot
read is skipped, so the worst case is an event with less usage, never an error
in the user's read.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import zlib
from typing import Any

__all__ = ["EVENTSTREAM", "JSON", "SSE", "EventStreamParser", "SSEParser", "body_kind"]

SSE = "sse"
EVENTSTREAM = "eventstream"
JSON = "json"

#: Events worth decoding: the rest (text deltas, pings) carry no usage.
_USEFUL = (b"message_start", b"message_delta", b"message_stop", b"error", b"completion")


def body_kind(content_type: str | None) -> str:
    """``"sse"``, ``"eventstream"`` or ``"json"`` for a ``content-type`` header."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind == "text/event-stream":
        return SSE
    if kind == "application/vnd.amazon.eventstream":
        return EVENTSTREAM
    return JSON


def _load(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class SSEParser:
    """Server-sent events, fed in chunks of any size; yields the useful events as dicts."""

    __slots__ = ("_data", "_pending")

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """Take the next bytes; return the events they completed."""
        out: list[dict[str, Any]] = []
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            self._line(line.rstrip(b"\r"), out)
        return out

    def end(self) -> list[dict[str, Any]]:
        """The body ended: dispatch what is still buffered."""
        out: list[dict[str, Any]] = []
        if self._pending:
            self._line(self._pending.rstrip(b"\r"), out)
            self._pending = b""
        self._line(b"", out)
        return out

    def _line(self, line: bytes, out: list[dict[str, Any]]) -> None:
        if not line:
            if self._data:
                data = b"\n".join(self._data)
                self._data = []
                # Cheap filter first: most events are text deltas we do not need.
                if any(name in data for name in _USEFUL):
                    event = _load(data)
                    if event is not None:
                        out.append(event)
            return
        if line.startswith(b"data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(b" ") else value)


# AWS event-stream framing: https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html
# prelude = total length (u32) + headers length (u32) + CRC32 of those 8 bytes;
# then the headers, the payload, and a CRC32 of everything before it.
_PRELUDE = struct.Struct(">III")
_MAX_FRAME = 16 * 1024 * 1024
# Fixed-size header value types (bool true/false carry no bytes).
_FIXED = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}


def _headers(raw: bytes) -> dict[str, Any] | None:
    headers: dict[str, Any] = {}
    i = 0
    try:
        while i < len(raw):
            size = raw[i]
            name = raw[i + 1 : i + 1 + size].decode()
            i += 1 + size
            kind = raw[i]
            i += 1
            if kind in (6, 7):  # bytes, string: u16 length
                (length,) = struct.unpack_from(">H", raw, i)
                value: Any = raw[i + 2 : i + 2 + length]
                i += 2 + length
                headers[name] = value.decode() if kind == 7 else value
            elif kind in _FIXED:
                i += _FIXED[kind]
            else:
                return None
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    return headers


class EventStreamParser:
    """Bedrock's binary event stream, fed in chunks; yields the Anthropic events as dicts."""

    __slots__ = ("_broken", "_buffer")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._broken = False

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        """Take the next bytes; return the events whose frames they completed."""
        out: list[dict[str, Any]] = []
        if self._broken:
            return out
        self._buffer += chunk
        while len(self._buffer) >= _PRELUDE.size:
            total, header_size, prelude_crc = _PRELUDE.unpack_from(self._buffer)
            bad = (
                zlib.crc32(bytes(self._buffer[:8])) != prelude_crc
                or total > _MAX_FRAME
                or total < _PRELUDE.size + header_size + 4
            )
            if bad:
                # A corrupt prelude leaves no way to find the next frame.
                self._broken = True
                self._buffer.clear()
                return out
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            (crc,) = struct.unpack_from(">I", frame, total - 4)
            if zlib.crc32(frame[:-4]) != crc:
                continue
            headers = _headers(frame[12 : 12 + header_size])
            payload = frame[12 + header_size : -4]
            if headers is not None:
                event = self._event(headers, payload)
                if event is not None:
                    out.append(event)
        return out

    def end(self) -> list[dict[str, Any]]:
        """The body ended; a partial frame is dropped."""
        self._buffer.clear()
        return []

    @staticmethod
    def _event(headers: dict[str, Any], payload: bytes) -> dict[str, Any] | None:
        kind = headers.get(":message-type")
        body = _load(payload)
        if kind in {"exception", "error"}:
            error_type = headers.get(":exception-type") or headers.get(":error-code") or "error"
            message = body.get("message") if body is not None else None
            return {"type": "error", "error": {"type": error_type, "message": message or ""}}
        if kind != "event" or headers.get(":event-type") != "chunk" or body is None:
            return None
        raw = body.get("bytes")
        if not isinstance(raw, str):
            return None
        try:
            return _load(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError):
            return None
