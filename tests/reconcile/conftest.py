"""A real Admin API fake on 127.0.0.1, a store with known calls, and a way to run the CLI.

The store holds four tracked Anthropic calls' worth of spend on two models and
two days (plus one Bedrock call), and the server reports the same calls plus
10 % extra spend on one model-day: Sonnet on 2026-11-24.
"""

from __future__ import annotations

import io
import threading
import urllib.parse
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import pytest

from fluxgate import CostEvent, Status
from fluxgate._reconcile import AnsweredCall, handle_admin_request, main
from fluxgate.sinks import SQLiteSink

ADMIN_KEY = "sk-ant-admin01-TESTKEY-d0n0tpr1nt-abcdef0123456789"
HAIKU = "claude-haiku-4-5-20251001"
SONNET = "claude-sonnet-4-5-20250929"
DAY1_MS = 1_795_478_400_000  # 2026-11-24T00:00:00Z
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
#: 2026-11-27T12:00Z: both test days are long closed, so no row is provisional.
NOW_MS = DAY1_MS + 3 * DAY_MS + 12 * HOUR_MS
RANGE = ["--since", "2026-11-24", "--until", "2026-11-26"]


def event(model: str, day: int, cost: str, *, inp: int, out: int, **overrides: Any) -> CostEvent:
    """A priced call on test day ``day`` (0 or 1) at 10:00 UTC, its cost split 60/40 between input and output."""
    total = Decimal(cost)
    fields: dict[str, Any] = {
        "tracking_id": uuid.uuid4().hex,
        "created_at": DAY1_MS + day * DAY_MS + 10 * HOUR_MS,
        "status": Status.SUCCESS,
        "cost_usd": total,
        "cost_status": "priced",
        "cost_breakdown": {"input": total * Decimal("0.6"), "output": total * Decimal("0.4")},
        "model": model,
        "input_tokens": inp,
        "output_tokens": out,
        "usage_service_tier": "standard",
    }
    fields.update(overrides)
    return CostEvent(**fields)


def tracked_events() -> list[CostEvent]:
    """Spend per model-day: Haiku $0.20 and $0.15, Sonnet $0.50 and $0.10 ($0.95), plus Bedrock $0.40."""
    return [
        event(HAIKU, 0, "0.12", inp=60_000, out=12_000),
        event(HAIKU, 0, "0.08", inp=40_000, out=8_000),
        event(SONNET, 0, "0.50", inp=100_000, out=20_000),
        event(HAIKU, 1, "0.15", inp=75_000, out=15_000),
        event(SONNET, 1, "0.10", inp=20_000, out=4_000),
        event("anthropic.claude-sonnet-4-5", 0, "0.40", inp=80_000, out=16_000, platform="bedrock"),
    ]


def answered(events: Sequence[CostEvent]) -> list[AnsweredCall]:
    """What Anthropic saw of these events: the Anthropic-platform ones."""
    return [AnsweredCall.from_event(e) for e in events if e.platform == "anthropic"]


#: 10 % more Sonnet spend on day 0 than was tracked: $0.05, 10,000 input and 2,000 output tokens.
EXTRA = AnsweredCall(
    at_ms=DAY1_MS + 15 * HOUR_MS,
    model=SONNET,
    input_tokens=10_000,
    output_tokens=2_000,
    cost_usd=Decimal("0.05"),
    cost_breakdown={"input": Decimal("0.03"), "output": Decimal("0.02")},
)


@attrs.define
class Received:
    """One request the server got."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@attrs.define
class AdminServer:
    """The documented report endpoints on a real socket, with scripted failures first."""

    url: str = ""
    calls: list[AnsweredCall] = attrs.field(factory=list)
    extra: list[AnsweredCall] = attrs.field(factory=list)
    page_size: int | None = 1
    script: deque[tuple[int, dict[str, str], bytes]] = attrs.field(factory=deque)
    always: tuple[int, dict[str, str], bytes] | None = None
    received: list[Received] = attrs.field(factory=list)

    def fail_next(self, status: int, *, headers: Mapping[str, str] | None = None, kind: str = "api_error") -> None:
        """Answer the next request with ``status`` and an API-shaped error body."""
        body = f'{{"type":"error","error":{{"type":"{kind}","message":"scripted {status}"}}}}'.encode()
        self.script.append((status, dict(headers or {}), body))

    def answer(self, method: str, target: str, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        parts = urllib.parse.urlsplit(target)
        self.received.append(Received(parts.path, urllib.parse.parse_qs(parts.query), dict(headers)))
        if self.script:
            return self.script.popleft()
        if self.always is not None:
            return self.always
        return handle_admin_request(
            method,
            parts.path,
            parts.query,
            headers,
            self.calls,
            self.extra,
            admin_key=ADMIN_KEY,
            page_size=self.page_size,
            now_ms=NOW_MS,
        )


def _handler(state: AdminServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._reply()

        def do_POST(self) -> None:
            self._reply()

        def _reply(self) -> None:
            status, headers, body = state.answer(self.command, self.path, dict(self.headers.items()))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep the test output quiet."""

    return Handler


@pytest.fixture
def admin_server() -> Iterator[AdminServer]:
    """The fake Admin API on 127.0.0.1, answering the tracked calls plus :data:`EXTRA`."""
    state = AdminServer(calls=answered(tracked_events()), extra=[EXTRA])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with :func:`tracked_events` in it."""
    path = tmp_path / "events.db"
    sink = SQLiteSink(path)
    sink.write(tracked_events())
    sink.close()
    return path


@pytest.fixture
def admin_env(monkeypatch: pytest.MonkeyPatch, admin_server: AdminServer) -> AdminServer:
    """The admin key and base URL set as a user would; no other Anthropic key, no proxy."""
    for name in ("ANTHROPIC_ADMIN_API_KEY", "ANTHROPIC_API_KEY", "FLUXGATE_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", admin_server.url)
    monkeypatch.setenv("NO_PROXY", "*")
    return admin_server


@attrs.frozen
class Run:
    """What one CLI run produced."""

    status: int
    out: str
    err: str
    sleeps: list[float]


def run(argv: Sequence[str], *, now_ms: int = NOW_MS) -> Run:
    """Run ``fluxgate reconcile`` in process, with a recording sleep."""
    out, err = io.StringIO(), io.StringIO()
    sleeps: list[float] = []
    status = main(list(argv), out=out, err=err, now_ms=now_ms, sleep=sleeps.append)
    return Run(status, out.getvalue(), err.getvalue(), sleeps)
