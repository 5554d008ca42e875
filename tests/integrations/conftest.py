"""Helpers for the integration tests: a real uvicorn server, a fake API whose streams stall, direct ASGI calls.

Framework imports happen inside the helpers, so this file loads (and the
tests skip cleanly) without Starlette, FastAPI or uvicorn.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import importlib
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import pytest

from fluxgate.testing import FakeAnthropicAPI

MODEL = "claude-sonnet-4-6"

Probe = Callable[[], Any]


class LiveServer:
    """An ASGI app served by uvicorn on 127.0.0.1 from a thread of its own.

    When a request's app call returns, the server runs ``probe`` (if given)
    and keeps its result in ``at_end[path]``, then sets ``finished(path)``: a
    test can see what was true the moment the server was done with a request.
    ``disconnected(path)`` is set when the app learns that the client left.
    """

    def __init__(self, app: Any, *, probe: Probe | None = None) -> None:
        import uvicorn

        self.app = app
        self.at_end: dict[str, Any] = {}
        self._probe = probe
        self._done: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        config = uvicorn.Config(
            self._asgi,
            host="127.0.0.1",
            port=0,
            http="h11",
            interface="asgi3",
            proxy_headers=False,
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        ready = self._ready

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                try:
                    await super().startup(sockets=sockets)
                finally:
                    ready.set()  # also when startup fails: start() then reports it

        self._server = Server(config)
        self._thread = threading.Thread(target=self._server.run, name="uvicorn-test", daemon=True)
        self.port = 0

    def start(self) -> LiveServer:
        """Start serving; returns once uvicorn is listening."""
        self._thread.start()
        assert self._ready.wait(timeout=10), "uvicorn did not start"
        assert self._server.started, "uvicorn failed to start"
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "uvicorn did not stop"

    def finished(self, path: str) -> threading.Event:
        """Set once the app call of a request to ``path`` has returned."""
        with self._lock:
            return self._done.setdefault(path, threading.Event())

    def connect(self) -> http.client.HTTPConnection:
        """A new connection to the server."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def request(
        self, method: str, path: str, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request and read the whole response: status, headers, body."""
        conn = self.connect()
        try:
            conn.request(method, path, headers=dict(headers or {}))
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def disconnected(self, path: str) -> threading.Event:
        """Set once the app has been told that the client of a request to ``path`` went away."""
        return self.finished(f"disconnect {path}")

    async def _asgi(self, scope: Any, receive: Any, send: Any) -> None:
        async def watched_receive() -> Any:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnected(scope["path"]).set()
            return message

        try:
            await self.app(scope, watched_receive, send)
        finally:
            if scope["type"] == "http":
                if self._probe is not None:
                    self.at_end[scope["path"]] = self._probe()
                self.finished(scope["path"]).set()


@pytest.fixture
def serve() -> Iterator[Callable[..., LiveServer]]:
    """Start apps under uvicorn; every server started is stopped after the test."""
    pytest.importorskip("uvicorn")
    servers: list[LiveServer] = []

    def start(app: Any, *, probe: Probe | None = None) -> LiveServer:
        server = LiveServer(app, probe=probe)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def no_gc() -> Iterator[None]:
    """No garbage collection pass runs during the test (reference counting still frees)."""
    was_enabled = gc.isenabled()
    gc.disable()
    yield
    if was_enabled:
        gc.enable()


def open_stream(server: LiveServer, path: str, headers: Mapping[str, str] | None = None) -> socket.socket:
    """Send a GET, read the headers and the first body chunk, and return the socket.

    Returns the raw socket so that the caller can walk away from the response.
    """
    conn = server.connect()
    conn.request("GET", path, headers=dict(headers or {}))
    response = conn.getresponse()
    assert response.status == 200
    assert response.read1(65536), "no first chunk"
    sock = conn.sock
    assert sock is not None
    return sock


def abandon(sock: socket.socket) -> None:
    """Leave a response part-way, as a client that closed the tab does."""
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def stalling_client(api: FakeAnthropicAPI, *, after: int) -> Any:
    """An ``AsyncAnthropic`` on ``api`` whose streamed replies stop after ``after`` SSE events.

    The rest of the body never comes, as with a model still generating when
    the user leaves: the request handling the stream waits until it is
    cancelled. Other replies are served whole.
    """
    import anthropic

    inner = api.transport()
    # httpx or httpx2, whichever the installed anthropic uses (the fake knows).
    httpx = importlib.import_module(type(inner).__module__.partition(".")[0])

    async def handle(request: Any) -> Any:
        response = await inner.handle_async_request(request)
        body = await response.aread()
        if "text/event-stream" not in response.headers.get("content-type", ""):
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        frames = [frame + b"\n\n" for frame in body.split(b"\n\n") if frame.strip()]
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(response.status_code, headers=headers, content=_stall(frames[:after]))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return anthropic.AsyncAnthropic(api_key="sk-ant-fake-key", max_retries=0, http_client=client)


def stalling_sync_client(api: FakeAnthropicAPI, *, after: int, until: threading.Event) -> Any:
    """The sync twin of :func:`stalling_client`: the rest of a streamed body waits for ``until``."""
    import anthropic

    inner = api.transport()
    httpx = importlib.import_module(type(inner).__module__.partition(".")[0])

    def handle(request: Any) -> Any:
        response = inner.handle_request(request)
        body = response.read()
        if "text/event-stream" not in response.headers.get("content-type", ""):
            return httpx.Response(response.status_code, headers=response.headers, content=body)
        frames = [frame + b"\n\n" for frame in body.split(b"\n\n") if frame.strip()]
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return httpx.Response(response.status_code, headers=headers, content=_stall_sync(frames, after, until))

    client = httpx.Client(transport=httpx.MockTransport(handle))
    return anthropic.Anthropic(api_key="sk-ant-fake-key", max_retries=0, http_client=client)


def _stall_sync(frames: list[bytes], after: int, until: threading.Event) -> Iterator[bytes]:
    yield from frames[:after]
    until.wait(timeout=30)
    yield from frames[after:]


async def _stall(frames: list[bytes]) -> AsyncIterator[bytes]:
    for frame in frames:
        yield frame
    await asyncio.Event().wait()  # never set: only a cancellation ends this


def call_asgi(
    app: Any,
    path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    kind: str = "http",
) -> list[dict[str, Any]]:
    """Call an ASGI app in process, without a server, and return the messages it sent."""
    scope: dict[str, Any] = {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "scheme": "http" if kind == "http" else "ws",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in {"host": "testserver", **(headers or {})}.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []
    inbox = [{"type": "websocket.connect"}] if kind == "websocket" else [{"type": "http.request", "body": b""}]

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await asyncio.Event().wait()  # the app would wait for a disconnect that never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def body_of(messages: list[dict[str, Any]]) -> bytes:
    """The concatenated body of the ``http.response.body`` messages."""
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


def status_of(messages: list[dict[str, Any]]) -> int:
    """The status of the ``http.response.start`` message."""
    return int(next(m["status"] for m in messages if m["type"] == "http.response.start"))
