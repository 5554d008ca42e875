"""Message Batches: context kept at create, each result priced at the batch rate, once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import fluxgate
from fluxgate import AiEventUser, CostEvent, Status, track_context
from fluxgate._models import ContextFrame
from fluxgate._store import default_db_path
from fluxgate._store.batches import BatchStore, context_from_json, context_to_json
from fluxgate.testing import FakeAnthropicAPI, MemorySink

from ..helpers import HELLO, message_body

IN, OUT = 1000, 200
HALF = Decimal("0.5")
ROOT = Path(__file__).resolve().parents[2]


def batch_cost(input_tokens: int = IN, output_tokens: int = OUT) -> Decimal:
    """Claude Sonnet 4.6 at $3 / $15 per million tokens, halved for the Batch API."""
    return (input_tokens * Decimal(3) + output_tokens * Decimal(15)) / Decimal(1_000_000) * HALF


def requests(*custom_ids: str, model: str = "claude-sonnet-4-6") -> list[dict[str, Any]]:
    return [{"custom_id": cid, "params": {"model": model, "max_tokens": 64, "messages": HELLO}} for cid in custom_ids]


def succeeded(input_tokens: int = IN, output_tokens: int = OUT) -> dict[str, Any]:
    return {"type": "succeeded", "message": message_body(input_tokens=input_tokens, output_tokens=output_tokens)}


def flushed(sink: MemorySink) -> list[CostEvent]:
    assert fluxgate.flush(timeout_s=10)
    return sink.events


def by_custom_id(events: list[CostEvent]) -> dict[str | None, CostEvent]:
    return {event.custom_id: event for event in events}


class TestCreateThenRead:
    def test_results_carry_the_creators_context(self, sink: MemorySink) -> None:
        """Each succeeded result is one event at the batch rate, with the context of batches.create."""
        api = FakeAnthropicAPI()
        api.script_batch_result("a", succeeded(1000, 200))
        api.script_batch_result("b", succeeded(3000, 50))
        client = api.batches_client()
        user = AiEventUser("u9", email="u9@example.com", monthly_revenue=20.0)
        with track_context(feature="nightly-digest", user=user, step="summarize", metadata={"run": 4}):
            batch = client.messages.batches.create(requests=requests("a", "b"))
        assert flushed(sink) == []  # creating a batch costs nothing yet
        results = list(client.messages.batches.results(batch.id))
        events = by_custom_id(flushed(sink))
        assert set(events) == {"a", "b"}
        a, b = events["a"], events["b"]
        assert (a.input_tokens, a.output_tokens, a.cost_usd) == (1000, 200, batch_cost(1000, 200))
        assert (b.input_tokens, b.output_tokens, b.cost_usd) == (3000, 50, batch_cost(3000, 50))
        for event in (a, b):
            assert (event.api, event.batch_id, event.status) == ("messages.batches.results", batch.id, Status.SUCCESS)
            assert (event.feature, event.user, event.step) == ("nightly-digest", user, "summarize")
            assert event.metadata == {"run": 4}
            assert (event.model, event.platform, event.streamed) == ("claude-sonnet-4-6", "anthropic", False)
            assert event.latency_ms is None
        assert {r.custom_id: r.fluxgate_cost_tracking_response.tracking_id for r in results} == {
            "a": a.tracking_id,
            "b": b.tracking_id,
        }

    def test_reading_twice_counts_once(self, sink: MemorySink) -> None:
        """Reading the same results again yields them all, and records nothing new."""
        api = FakeAnthropicAPI()
        client = api.batches_client()
        batch = client.messages.batches.create(requests=requests("a", "b", "c"))
        first = list(client.messages.batches.results(batch.id))
        second = list(client.messages.batches.results(batch.id))
        assert [r.custom_id for r in first] == [r.custom_id for r in second] == ["a", "b", "c"]
        assert len(flushed(sink)) == 3

    def test_early_exit_then_reread(self, sink: MemorySink) -> None:
        """Leaving the results early and reading them again later counts every result exactly once."""
        api = FakeAnthropicAPI()
        client = api.batches_client()
        ids = [f"r{i:03d}" for i in range(250)]
        batch = client.messages.batches.create(requests=requests(*ids))
        for _ in client.messages.batches.results(batch.id):
            break
        assert len(flushed(sink)) == 1  # read one, recorded one: nothing is read ahead
        assert [r.custom_id for r in client.messages.batches.results(batch.id)] == ids
        events = flushed(sink)
        assert sorted(e.custom_id for e in events) == ids  # type: ignore[type-var]

    @pytest.mark.parametrize(
        ("result", "status", "error_type"),
        [
            (
                {
                    "type": "errored",
                    "error": {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}},
                },
                Status.MALFORMED_REQUEST,
                "invalid_request_error",
            ),
            (
                {"type": "errored", "error": {"type": "error", "error": {"type": "api_error", "message": "oops"}}},
                Status.ERROR,
                "api_error",
            ),
            ({"type": "expired"}, Status.ERROR, "expired"),
            ({"type": "canceled"}, Status.ERROR, "canceled"),
        ],
    )
    def test_failed_results_cost_nothing(
        self, sink: MemorySink, result: dict[str, Any], status: Status, error_type: str
    ) -> None:
        """Errored, expired and canceled results are recorded with no cost and the creator's context."""
        api = FakeAnthropicAPI()
        api.script_batch_result("x", result)
        client = api.batches_client()
        with track_context(feature="etl"):
            batch = client.messages.batches.create(requests=requests("x", model="claude-haiku-4-5"))
        list(client.messages.batches.results(batch.id))
        [event] = flushed(sink)
        assert (event.status, event.error_type, event.cost_usd) == (status, error_type, 0)
        assert (event.feature, event.custom_id, event.model) == ("etl", "x", "claude-haiku-4-5")

    def test_beta_batches(self, sink: MemorySink) -> None:
        """Beta batches work the same, named beta.messages.batches.results."""
        api = FakeAnthropicAPI()
        api.script_batch_result("only", succeeded())
        client = api.batches_client()
        with track_context(feature="beta-batch"):
            batch = client.beta.messages.batches.create(requests=requests("only"))
        list(client.beta.messages.batches.results(batch.id))
        [event] = flushed(sink)
        assert (event.api, event.feature, event.cost_usd) == (
            "beta.messages.batches.results",
            "beta-batch",
            batch_cost(),
        )

    @pytest.mark.parametrize("beta", [False, True])
    def test_async(self, sink: MemorySink, beta: bool) -> None:
        """Async create and results, in a task's own context."""
        api = FakeAnthropicAPI()
        api.script_batch_result("a", succeeded())

        async def main() -> list[Any]:
            client = api.async_batches_client()
            batches = client.beta.messages.batches if beta else client.messages.batches
            async with track_context(feature="async-batch"):
                batch = await batches.create(requests=requests("a", "b"))
            return [item async for item in await batches.results(batch.id)]

        items = asyncio.run(main())
        events = by_custom_id(flushed(sink))
        assert set(events) == {"a", "b"}
        assert events["a"].cost_usd == batch_cost()
        assert {e.feature for e in events.values()} == {"async-batch"}
        assert items[0].fluxgate_cost_tracking_response.tracking_id == events[items[0].custom_id].tracking_id

    def test_raw_create_keeps_context(self, sink: MemorySink) -> None:
        """batches.with_raw_response.create stores the context as well."""
        api = FakeAnthropicAPI()
        client = api.batches_client()
        with track_context(feature="raw-batch"):
            batch = client.messages.batches.with_raw_response.create(requests=requests("a")).parse()
        list(client.messages.batches.results(batch.id))
        [event] = flushed(sink)
        assert event.feature == "raw-batch"


class TestReadAsTheUserReads:
    @staticmethod
    def counting_client(api: FakeAnthropicAPI, pulled: list[int]) -> Any:
        """A batches client that notes, in ``pulled``, each piece of a results body taken off the wire."""
        import anthropic

        from fluxgate.testing._fake_wire import http_library

        httpx = http_library()
        inner = api.platform_transport(chunk_size=256)

        def handle(request: Any) -> Any:
            response = inner.handle_request(request)
            if not request.url.path.endswith("/results"):
                return response

            def pieces() -> Any:
                for piece in response.iter_raw():
                    pulled.append(len(piece))
                    yield piece

            return httpx.Response(response.status_code, headers=response.headers, content=pieces())

        transport = httpx.MockTransport(handle)
        return anthropic.Anthropic(
            api_key="sk-ant-fake-key", max_retries=0, http_client=httpx.Client(transport=transport)
        )

    def test_no_read_ahead(self, sink: MemorySink) -> None:
        """The first result is handed over, and recorded, with only its own bytes read from the wire."""
        api = FakeAnthropicAPI()
        pulled: list[int] = []
        client = self.counting_client(api, pulled)
        ids = [f"r{i:03d}" for i in range(150)]
        batch = client.messages.batches.create(requests=requests(*ids))
        results = client.messages.batches.results(batch.id)
        first = next(results)
        assert first.custom_id == "r000"
        [event] = flushed(sink)
        assert first.fluxgate_cost_tracking_response.tracking_id == event.tracking_id
        line = len(json.dumps(api._batch_state()["batches"][batch.id][0])) + 1
        assert sum(pulled) <= line + 2 * 256  # the first line, and at most the pieces around it
        assert [r.custom_id for r in results] == ids[1:]
        assert len(flushed(sink)) == 150

    def test_download_error_when_it_happens(self, sink: MemorySink) -> None:
        """A download that breaks after the first results is not read into on the user's first read."""
        import anthropic

        from fluxgate.testing._fake_wire import http_library

        httpx = http_library()
        api = FakeAnthropicAPI()
        inner = api.platform_transport()
        broke: list[bool] = []

        def handle(request: Any) -> Any:
            response = inner.handle_request(request)
            if not request.url.path.endswith("/results"):
                return response
            lines = b"".join(response.iter_raw()).splitlines(keepends=True)

            def pieces() -> Any:
                yield b"".join(lines[:2])
                broke.append(True)
                raise httpx.ReadError("connection reset")

            return httpx.Response(200, headers=response.headers, content=pieces())

        client = anthropic.Anthropic(
            api_key="sk-ant-fake-key", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(handle))
        )
        batch = client.messages.batches.create(requests=requests("a", "b", "c"))
        results = client.messages.batches.results(batch.id)
        assert next(results).custom_id == "a"
        assert broke == []  # the broken part of the body is still unread
        assert len(flushed(sink)) == 1
        # What the SDK raises, untouched: anthropic 2.17 and later wrap the read error in an
        # APIConnectionError (raised from it); earlier releases let the ReadError through.
        with pytest.raises((httpx.ReadError, anthropic.APIConnectionError)) as raised:
            list(results)
        assert isinstance(raised.value, httpx.ReadError) or isinstance(raised.value.__cause__, httpx.ReadError)
        assert broke == [True]


class TestNotCreatedHere:
    def test_unknown_batch_counted_once_without_context(self, sink: MemorySink) -> None:
        """Results of a batch fluxgate never saw are recorded once, with no context."""
        api = FakeAnthropicAPI()
        api.add_batch("msgbatch_elsewhere", [{"custom_id": "z", "result": succeeded()}])
        client = api.batches_client()
        with track_context(feature="reader"):
            list(client.messages.batches.results("msgbatch_elsewhere"))
            list(client.messages.batches.results("msgbatch_elsewhere"))
        [event] = flushed(sink)
        assert (event.custom_id, event.feature, event.cost_usd) == ("z", None, batch_cost())

    def test_concurrent_readers(self, sink: MemorySink) -> None:
        """Two threads reading the same results at once record each result once between them."""
        api = FakeAnthropicAPI()
        ids = [f"c{i}" for i in range(120)]
        batch = api.batches_client().messages.batches.create(requests=requests(*ids))
        barrier = threading.Barrier(2)

        def read() -> None:
            client = api.batches_client()
            barrier.wait()
            for _ in client.messages.batches.results(batch.id):
                pass

        threads = [threading.Thread(target=read) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(e.custom_id for e in flushed(sink)) == sorted(ids)  # type: ignore[type-var]

    @pytest.mark.slow
    def test_another_process_reads_the_results(self) -> None:
        """A batch created here and read by another process sharing its SQLite store is attributed to its creator."""
        sink = MemorySink()
        store = default_db_path()
        fluxgate.init(sinks=[sink], db_path=store)
        api = FakeAnthropicAPI()
        api.script_batch_result("p1", succeeded(400, 40))
        client = api.batches_client()
        with track_context(feature="made-by-parent", user="u-parent", step="enqueue"):
            batch = client.messages.batches.create(requests=requests("p1", "p2"))
        lines = api._batch_state()["batches"][batch.id]
        script = f"""
import json, fluxgate
from fluxgate.testing import FakeAnthropicAPI, MemorySink
api = FakeAnthropicAPI()
api.add_batch({batch.id!r}, json.loads({json.dumps(json.dumps(lines))}))
sink = MemorySink()
fluxgate.init(sinks=[sink], db_path={str(store)!r})
list(api.batches_client().messages.batches.results({batch.id!r}))
fluxgate.flush(timeout_s=10)
print(json.dumps([e.to_dict() for e in sink.events]))
"""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        events = {e["custom_id"]: e for e in json.loads(done.stdout.strip().splitlines()[-1])}
        assert set(events) == {"p1", "p2"}
        assert (events["p1"]["feature"], events["p1"]["user_id"], events["p1"]["step"]) == (
            "made-by-parent",
            "u-parent",
            "enqueue",
        )
        assert Decimal(events["p1"]["cost_usd"]) == batch_cost(400, 40)
        list(client.messages.batches.results(batch.id))  # the parent reading later adds nothing
        assert flushed(sink) == []


class TestStore:
    def test_write_failure_never_breaks_create(
        self, sink: MemorySink, swallowed: list[BaseException], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If the store cannot be written, batches.create still returns the SDK's batch."""

        def broken(*args: Any, **kwargs: Any) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(BatchStore, "remember", broken)
        api = FakeAnthropicAPI()
        batch = api.batches_client().messages.batches.create(requests=requests("a"))
        assert batch.id.startswith("msgbatch_fake_")
        assert [type(e) for e in swallowed] == [OSError]
        swallowed.clear()

    def test_tables_live_beside_the_events(self) -> None:
        """With the default SQLite store, the batch tables are in its file, in WAL mode."""
        import sqlite3

        fluxgate.init()
        api = FakeAnthropicAPI()
        api.batches_client().messages.batches.create(requests=requests("a"))
        path = default_db_path()
        with sqlite3.connect(path) as conn:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert {"fluxgate_batches", "fluxgate_batch_requests"} <= tables
        assert mode == "wal"

    def test_nothing_on_disk_with_memory_sinks(self, sink: MemorySink, tmp_path: Path) -> None:
        """With only in-memory sinks, batches are tracked without writing any file."""
        api = FakeAnthropicAPI()
        api.script_batch_result("a", succeeded())
        client = api.batches_client()
        with track_context(feature="in-memory"):
            batch = client.messages.batches.create(requests=requests("a"))
        list(client.messages.batches.results(batch.id))
        [event] = flushed(sink)
        assert (event.feature, event.cost_usd) == ("in-memory", batch_cost())
        assert not default_db_path().exists()
        assert list(tmp_path.iterdir()) == []

    def test_db_path_keeps_batches_there(self, tmp_path: Path) -> None:
        """db_path= alongside in-memory sinks keeps batch contexts in that SQLite file."""
        import sqlite3

        path = tmp_path / "chosen.db"
        fluxgate.init(sinks=[MemorySink()], db_path=path)
        FakeAnthropicAPI().batches_client().messages.batches.create(requests=requests("a"))
        with sqlite3.connect(path) as conn:
            [(count,)] = conn.execute("SELECT count(*) FROM fluxgate_batch_requests").fetchall()
        assert count == 1
        assert not default_db_path().exists()

    def test_claim_is_exactly_once(self, tmp_path: Path) -> None:
        """A custom_id is handed out once, whether it was stored at create or not."""
        store = BatchStore(tmp_path / "b.db")
        store.remember(
            "b1", api="x", platform="anthropic", created_at=1, context=ContextFrame(feature="f"), requests=[("a", "m")]
        )
        first = store.claim("b1", ["a", "new", "a"])
        assert set(first) == {"a", "new"}
        assert first["a"].context == ContextFrame(feature="f")
        assert (first["a"].model, first["a"].created_at) == ("m", 1)
        assert store.claim("b1", ["a", "new"]) == {}

    def test_context_round_trip(self) -> None:
        """Every context field survives the store."""
        frame = ContextFrame.build(
            feature="f",
            user=AiEventUser("u", name="N", email="e@x.io", monthly_revenue=3.5),
            step="s",
            session_id="sess",
            conversation_id="conv",
            service_tier="batch",
            metadata={"k": [1, 2]},
        )
        assert context_from_json(context_to_json(frame)) == frame
        assert context_from_json("not json") == ContextFrame()
