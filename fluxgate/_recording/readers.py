"""What a call returned, read as the user reads it, until its event is recorded.

``_instrument`` feeds a :class:`StreamRecorder` a stream's events and a
:class:`BodyRecorder` the bytes of a raw body the user reads.
Each records its call (``call.Call``) exactly once, whichever of end, close,
error, interruption, garbage collection or the end of a
``finish_streams_at_exit`` block comes first, from whichever thread.
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

from .._guard import guarded, logger, swallow
from .outcome import STOP_STATUS, SUCCESS, header, read_content, str_or_none
from .usage import StreamAccumulator, event_type, get
from .wire import EVENTSTREAM, SSE, EventStreamParser, SSEParser, body_kind

if TYPE_CHECKING:
    from .call import Call

__all__ = ["ABORTED", "BodyRecorder", "StreamRecorder"]

# A JSON body bigger than this is not a Message; stop buffering it.
_MAX_JSON_BYTES = 32 * 1024 * 1024

#: How a stream can end before the API finished it: ``close()`` (or leaving
#: its ``with`` block), dropped unfinished (garbage collection, the end of a
#: ``finish_streams_at_exit`` block), or interrupted while being read
#: (``CancelledError``, ``KeyboardInterrupt``, ``GeneratorExit``).
ABORTED = frozenset({"closed", "abandoned", "interrupted"})

# Finishing is claimed under one lock: a request's end may finish a stream in
# one thread while the thread reading it finishes it too. Taken once per call.
_claiming = threading.Lock()


class StreamRecorder:
    """The state of one streamed call; never holds the stream itself."""

    __slots__ = ("acc", "call", "done", "first_event", "first_token", "request_id")

    def __init__(self, call: Call, request_id: str | None = None) -> None:
        self.call = call
        self.acc = StreamAccumulator()
        self.done = False
        self.first_event: float | None = None
        self.first_token: float | None = None
        self.request_id = request_id

    def claim(self) -> bool:
        """True for the one caller that gets to record this call; False for every later one."""
        with _claiming:
            if self.done:
                return False
            self.done = True
            return True

    def feed(self, event: Any) -> None:
        """Take one event (an SDK model or a dict); never raises."""
        try:
            if self.first_event is None:
                self.first_event = time.perf_counter()
            kind = event_type(event)
            if kind == "content_block_delta":  # most events: nothing to fold in
                if self.first_token is None:
                    self.first_token = time.perf_counter()
                return
            if kind == "completion" and self.first_token is None:
                self.first_token = time.perf_counter()
            self.acc.feed(event, kind)
        except Exception as exc:  # noqa: BLE001 - swallow() reports it (or re-raises in debug mode)
            swallow(exc)

    def finish(self, how: str, exc: BaseException | None = None) -> None:
        """Record the event once: ``how`` is ``"end"``, ``"error"`` (with ``exc``) or one of :data:`ABORTED`."""
        if self.done or not self.claim():
            return
        with guarded():
            acc = self.acc
            if exc is not None:
                self.call.fail(exc, usage=acc.usage(), model=acc.model)
                return
            aborted = how in ABORTED and not acc.finished
            complete = acc.finished or (acc.saw_delta and how == "end")
            usage: Any = acc.sdk_usage()  # read into UsageFacts on the flusher's thread
            if usage is None and aborted:
                usage = self.call.prompt_usage()  # left before message_start: the prompt was read
            stop = acc.stop_reason
            self.call.event(
                status=STOP_STATUS.get(stop or "", SUCCESS),
                usage=usage,
                model=acc.model,
                stop_reason=stop,
                request_id=self.request_id,
                estimated=not complete,
                aborted=aborted,
                first_token=self.first_token,
                first_event=self.first_event,
            )
            if aborted:
                logger.debug("fluxgate: a stream ended early (%s); recorded the tokens seen", how)

    def error_event(self, event: Any) -> None:
        """An ``error`` event inside a stream read as bytes (the SDK would have raised)."""
        if self.done or not self.claim():
            return
        with guarded():
            error = get(event, "error")
            self.call.error(
                str_or_none(get(error, "type")) or "error",
                str_or_none(get(error, "message")) or "",
                usage=self.acc.usage(),
                model=self.acc.model,
                request_id=self.request_id,
            )


class BodyRecorder:
    """Records a raw-response call from the body bytes the user reads.

    ``parse()`` may hand the same state a decoded stream instead (``stream``),
    so however the user reads the body, the call is recorded once.
    """

    __slots__ = ("_buffer", "_fed", "_parser", "call", "http", "kind", "stream")

    def __init__(self, call: Call, http: Any) -> None:
        self.call = call
        self.http = http
        self.kind = body_kind(header(http, "content-type"))
        self.stream = StreamRecorder(call, header(http))
        self._fed = False
        self._parser: SSEParser | EventStreamParser | None = None
        if self.kind == SSE:
            self._parser = SSEParser()
        elif self.kind == EVENTSTREAM:
            self._parser = EventStreamParser()
        self._buffer: bytearray | None = bytearray()

    @property
    def done(self) -> bool:
        """True once the call is recorded."""
        return self.stream.done

    def read_content(self) -> bytes | None:
        """The whole body if the HTTP response has been read (by any means), else None."""
        return read_content(self.http)

    def feed(self, chunk: bytes) -> None:
        """Bytes the user just read (decoded, in order); never raises."""
        if self.stream.done:
            return
        self._fed = True
        try:
            if self._parser is not None:
                self._dispatch(self._parser.feed(chunk))
            elif self._buffer is not None:
                self._buffer += chunk
                if len(self._buffer) > _MAX_JSON_BYTES:
                    self._buffer = None
        except Exception as exc:  # noqa: BLE001 - swallow() reports it (or re-raises in debug mode)
            swallow(exc)

    def _dispatch(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if event.get("type") == "error":
                self.stream.error_event(event)
                return
            self.stream.feed(event)

    def complete(self, content: bytes) -> None:
        """The whole body, read at once (``read()``, ``json()``...): record from it."""
        if self.stream.done:
            return
        self._fed = True
        if self._parser is not None:
            self.feed(content)
        else:
            self._buffer = bytearray(content)
        self.finish("end")

    def finish(self, how: str) -> None:
        """Record the call once, from whatever was read (``how`` as for :meth:`StreamRecorder.finish`)."""
        if self.stream.done:
            return
        if not self._fed:
            # Read some way we did not see (LegacyAPIResponse.content, http_response.read()...).
            content = self.read_content()
            if content is not None:
                self.complete(content)
                return
        if self._parser is not None:
            with guarded():
                self._dispatch(self._parser.end())
            self.stream.finish(how)
            return
        if not self.stream.claim():
            return
        body: Any = None
        if self._buffer:
            try:
                body = json.loads(bytes(self._buffer))
            except ValueError:  # a body left part-way: what was read is not JSON yet
                body = None
        self._buffer = None
        with guarded():
            if isinstance(body, dict) and body.get("type") == "error":
                error = body.get("error")
                self.call.error(
                    str(get(error, "type") or "error"),
                    str(get(error, "message") or ""),
                    request_id=self.stream.request_id,
                )
            elif isinstance(body, dict):
                self.call.succeed(body, request_id=self.stream.request_id)
            else:
                # Closed before the body was read: billed, but the usage is unknown.
                self.call.event(status=SUCCESS, usage=None, model=None, request_id=self.stream.request_id)

    def succeed(self, message: Any) -> None:
        """``parse()`` decoded the JSON body into ``message``."""
        if self.stream.done or not self.stream.claim():
            return
        with guarded():
            self.call.succeed(message, request_id=self.stream.request_id)
