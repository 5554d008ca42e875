"""A real ingest server on 127.0.0.1 with scripted faults, and event factories.

``tests/delivery/test_fork.py`` and the benchmark import these too.
"""

from __future__ import annotations

import gzip
import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs
import pytest

from fluxgate import CostEvent, RetryPolicy, Status
from fluxgate._delivery import flusher
from fluxgate._models import ContextFrame, Usage, UsageFacts
from fluxgate._pricing import PriceTable
from fluxgate._recording import PendingEvent

_counter = itertools.count()


def make_event(**overrides: Any) -> CostEvent:
    """A priced, successful event with a fresh tracking id."""
    n = next(_counter)
    fields: dict[str, Any] = {
        "tracking_id": uuid.uuid4().hex,
        "created_at": 1_750_000_000_000 + n,
        "status": Status.SUCCESS,
        "cost_usd": Decimal("0.000123"),
        "cost_status": "priced",
        "cost_breakdown": {"input": Decimal("0.0001"), "output": Decimal("0.000023")},
        "price_version": "test",
        "model": "claude-sonnet-4-6",
        "input_tokens": 100 + n % 7,
        "output_tokens": 20,
        "latency_ms": 812.5,
        "feature": "summarize",
    }
    fields.update(overrides)
    return CostEvent(**fields)


def make_events(count: int, **overrides: Any) -> list[CostEvent]:
    """``count`` events from :func:`make_event`."""
    return [make_event(**overrides) for _ in range(count)]


def make_pending(
    *, context: ContextFrame | None = None, usage: Usage | UsageFacts | None = None, **facts: Any
) -> PendingEvent:
    """What a finished tracked call hands the flusher: its facts, priced with the default table."""
    values: dict[str, Any] = {
        "api": "messages.create",
        "platform": "anthropic",
        "streamed": False,
        "created_at": 1_750_000_000_000 + next(_counter),
        "regional": None,
        "batch_id": None,
        "custom_id": None,
        "tracking_id": uuid.uuid4().hex,
        "status": Status.SUCCESS,
        "model": "claude-sonnet-4-6",
        "stop_reason": "end_turn",
        "request_id": "req_1",
        "error_type": None,
        "error_message": None,
        "estimated": False,
        "latency_ms": 812.5,
        "first_token_ms": None,
        "stream_ms": None,
        "aborted": False,
    }
    values.update(facts)
    return PendingEvent(
        PriceTable.default(),
        context=context or ContextFrame.build(feature="summarize"),
        usage=Usage(input_tokens=120, output_tokens=30) if usage is None else usage,
        **values,
    )


#: Quick retries and a quick breaker, so fault tests take milliseconds.
FAST = RetryPolicy(
    max_attempts=8,
    max_delay_s=10.0,
    backoff_multiplier_s=0.005,
    backoff_max_s=0.02,
    breaker_failures=3,
    breaker_cooldown_s=0.05,
    breaker_max_cooldown_s=0.2,
)


@attrs.frozen(kw_only=True)
class Reply:
    """What the server does with one request.

    ``stored`` None keeps the events of 2xx answers only; True keeps them
    whatever the answer (a server that stored a batch, then hung).
    """

    status: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b'{"accepted": true}'
    hang_s: float = 0.0
    stored: bool | None = None


Plan = Callable[[int, list[dict[str, Any]]], Reply]


def script(*replies: Reply) -> Plan:
    """Answer request *n* with ``replies[n]``, and 200 after the last."""

    def plan(index: int, events: list[dict[str, Any]]) -> Reply:
        return replies[index] if index < len(replies) else Reply()

    return plan


@attrs.frozen(kw_only=True)
class Seen:
    """One request as the server saw it."""

    at: float
    status: int
    events: int
    headers: Mapping[str, str]
    body: Mapping[str, Any]


def reserve_port() -> int:
    """A free port on 127.0.0.1, closed again: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class IngestServer:
    """A FluxGate ingest endpoint (``docs/ingest-protocol.md``) on 127.0.0.1.

    Args:
        plan: Decides each reply from the request's index and events.
        port: 0 for any free port, or one from :func:`reserve_port`.
        api_key: When set, requests without this Bearer key get 401.
    """

    def __init__(self, plan: Plan | None = None, *, port: int = 0, api_key: str | None = None) -> None:
        self.plan: Plan = plan or script()
        self.port = port
        self.api_key = api_key
        self.received: list[dict[str, Any]] = []
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> IngestServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else delayed ACKs add 40 ms per request

            def do_POST(self) -> None:
                owner._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that gave up on a hung request

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> IngestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        raw = request.rfile.read(int(request.headers.get("Content-Length", "0")))
        if request.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        body = json.loads(raw)
        events: list[dict[str, Any]] = body.get("events", [])
        headers = {k.lower(): v for k, v in request.headers.items()}
        if request.path != "/v1/events":
            reply = Reply(status=404)
        elif self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            # A careless server that echoes the credential it refused.
            reply = Reply(status=401, body=f"bad key: {headers.get('authorization')}".encode())
        else:
            with self._lock:
                reply = self.plan(len(self.requests), events)
        with self._lock:
            self.requests.append(
                Seen(at=time.monotonic(), status=reply.status, events=len(events), headers=headers, body=body)
            )
            if reply.stored or (reply.stored is None and 200 <= reply.status < 300):
                self.received.extend(events)
        if reply.hang_s:
            self._stopping.wait(reply.hang_s)
        try:
            request.send_response(reply.status)
            for name, value in reply.headers.items():
                request.send_header(name, value)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(reply.body)))
            request.end_headers()
            request.wfile.write(reply.body)
        except OSError:
            pass  # the client timed out and left

    def tracking_ids(self) -> list[str]:
        """Tracking ids of every stored event, duplicates included."""
        with self._lock:
            return [event["tracking_id"] for event in self.received]


def assert_all_arrived(server: IngestServer, sent: Sequence[CostEvent]) -> None:
    """Every sent event arrived intact, nothing else did, and duplicates are copies of one event."""
    expected = {event.tracking_id: json.loads(json.dumps(event.to_dict())) for event in sent}
    with server._lock:
        received = list(server.received)
    assert {event["tracking_id"] for event in received} == set(expected)
    for event in received:
        assert event == expected[event["tracking_id"]]


@pytest.fixture
def ingest() -> Iterator[IngestServer]:
    """A healthy ingest server, stopped after the test."""
    with IngestServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _close_flushers() -> Iterator[None]:
    """Sure every flusher a test made is closed when it ends, so no worker keeps retrying into the next test."""
    yield
    for left in list(flusher._live):
        left.close(0.1)


@pytest.fixture(autouse=True)
def _no_endpoint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sure the developer's FLUXGATE_ENDPOINT never leaks into a test."""
    monkeypatch.delenv("FLUXGATE_ENDPOINT", raising=False)
    monkeypatch.delenv("FLUXGATE_API_KEY", raising=False)
