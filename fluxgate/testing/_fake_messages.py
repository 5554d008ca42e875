"""The ``/v1/messages`` half of the fake Anthropic API (``fluxgate.testing``).

:class:`FakeMessagesAPI` serves scripted replies in order and makes up a
plausible one for anything unscripted, with prompt caching counted as the
real API counts it. :class:`~fluxgate._fake_api.FakeAnthropicAPI` extends it
with the Bedrock, Vertex and Message Batches routes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._fake_wire import FakeReply, FakeRequest, http_library, sse_body

__all__ = ["FakeMessagesAPI"]


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


class FakeMessagesAPI:
    """The Messages API part of :class:`~fluxgate._fake_api.FakeAnthropicAPI`, documented there."""

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
        return http_library().MockTransport(self._handle)

    def client(self, **options: Any) -> Any:
        """An ``anthropic.Anthropic`` talking to this fake."""
        import anthropic

        httpx = http_library()
        options.setdefault("api_key", "sk-ant-fake-key")
        options.setdefault("max_retries", 0)
        return anthropic.Anthropic(http_client=httpx.Client(transport=self.transport()), **options)

    def async_client(self, **options: Any) -> Any:
        """An ``anthropic.AsyncAnthropic`` talking to this fake."""
        import anthropic

        httpx = http_library()
        options.setdefault("api_key", "sk-ant-fake-key")
        options.setdefault("max_retries", 0)
        return anthropic.AsyncAnthropic(http_client=httpx.AsyncClient(transport=self.transport()), **options)

    # -- serving --

    def _handle(self, request: Any) -> Any:
        httpx = http_library()
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
        # prompt): a short prompt gets a short answer, a long one up to a few
        # hundred tokens.
        digest = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True, default=str).encode()).digest()
        spread = min(360, 16 + 2 * _estimate_tokens(body))
        wanted = 24 + int.from_bytes(digest[:2], "big") % spread
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
