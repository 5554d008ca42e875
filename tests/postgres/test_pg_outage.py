"""PostgreSQL stopped mid-run: writes fail as transient, the flusher retries, and all lands once."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import fluxgate
from fluxgate import Budget, CostEvent, RetryPolicy, TransientSinkError
from fluxgate._store.pg_batches import PostgresBatchStore
from fluxgate._store.pg_spend import PostgresSpendStore
from fluxgate._store.postgres import StoreUnavailableError
from fluxgate.sinks.postgres import PostgresSink
from fluxgate.testing import FakeAnthropicAPI, MemorySink

from .conftest import PostgresServer, make_event, spawn

PATIENT = RetryPolicy(
    max_attempts=10_000,
    max_delay_s=120.0,
    backoff_multiplier_s=0.01,
    backoff_max_s=0.2,
    breaker_failures=10_000,
    breaker_cooldown_s=0.05,
    breaker_max_cooldown_s=0.2,
)


class Watched:
    """A PostgresSink that tells the test when a write has failed."""

    def __init__(self, inner: PostgresSink) -> None:
        self.inner = inner
        self.changed = threading.Condition()
        self.errors: list[BaseException] = []

    def write(self, batch: Sequence[CostEvent]) -> None:
        try:
            self.inner.write(batch)
        except BaseException as exc:
            with self.changed:
                self.errors.append(exc)
                self.changed.notify_all()
            raise

    def wait_for_failures(self, count: int, timeout_s: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.errors) >= count, timeout=timeout_s)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def outage(pg_server: PostgresServer) -> Iterator[PostgresServer]:
    """The server, restarted after the test whatever happened."""
    yield pg_server
    if not pg_server.running:
        pg_server.start()


def ids(server: PostgresServer, db: str) -> list[str]:
    return [r[0] for r in server.query(db, "SELECT tracking_id FROM fluxgate_events ORDER BY tracking_id")]


class TestOutage:
    @pytest.mark.parametrize("mode", ["fast", "immediate"])
    def test_sink_write_transient_then_succeeds(self, outage: PostgresServer, pg_db: str, mode: str) -> None:
        """While the server is down a write raises TransientSinkError; after restart the same sink writes."""
        sink = PostgresSink(outage.url(pg_db), connect_timeout_s=2)
        sink.write([make_event(1)])
        outage.stop(mode)
        with pytest.raises(TransientSinkError):
            sink.write([make_event(2)])
        outage.start()
        sink.write([make_event(2)])
        assert ids(outage, pg_db) == ["evt-1", "evt-2"]

    def test_flusher_retries_across_a_restart(self, outage: PostgresServer, pg_db: str) -> None:
        """Calls tracked before, during and after an outage are all stored once, once the server is back."""
        watched = Watched(PostgresSink(outage.url(pg_db), connect_timeout_s=2))
        memory = MemorySink()
        fluxgate.init(sinks=[watched, memory], retry=PATIENT, flush_interval_s=0.05)
        client = FakeAnthropicAPI().client()

        def call() -> None:
            client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "x"}])

        call()
        assert fluxgate.flush(timeout_s=30)
        outage.stop("fast")
        call()
        call()
        # The server stays down until the flusher has retried a few times.
        assert watched.wait_for_failures(5, timeout_s=60), "the sink never saw the outage"
        assert all(isinstance(e, TransientSinkError) for e in watched.errors)
        outage.start()
        call()
        assert fluxgate.flush(timeout_s=60)
        assert len(memory.events) == 4
        assert ids(outage, pg_db) == sorted(e.tracking_id for e in memory.events)

    def test_spend_store_fails_closed_then_recovers(self, outage: PostgresServer, pg_db: str) -> None:
        """With the server down, reserve raises instead of allowing; after restart the same store reserves."""
        store = PostgresSpendStore(outage.url(pg_db), connect_timeout_s=2)
        claim = ("k", 0, 2**62, 100)
        assert store.reserve([claim], 10, 1) is not None
        outage.stop("immediate")
        with pytest.raises(StoreUnavailableError):
            store.reserve([claim], 10, 1)
        outage.start()
        assert store.reserve([claim], 10, 1) is not None
        assert store.spent("k", 0, 2**62) == 20

    def test_batch_store_recovers(self, outage: PostgresServer, pg_db: str) -> None:
        """The batch store raises while the server is down and claims normally after it is back."""
        store = PostgresBatchStore(outage.url(pg_db), connect_timeout_s=2)
        assert store.claim("b", ["r0"]).keys() == {"r0"}
        outage.stop("fast")
        with pytest.raises(StoreUnavailableError):
            store.claim("b", ["r1"])
        outage.start()
        assert store.claim("b", ["r0", "r1"]).keys() == {"r1"}

    def test_budget_keeps_counting_after_restart(self, outage: PostgresServer, pg_db: str) -> None:
        """Spend recorded before a restart still counts after it (it is in the database, not in memory)."""
        store = PostgresSpendStore(outage.url(pg_db))
        fluxgate.init(sinks=[MemorySink()], budgets=[Budget(1)], budget_store=store)
        client = FakeAnthropicAPI().client()
        client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "x"}])
        [(before,)] = outage.query(pg_db, "SELECT SUM(amount_pusd) FROM fluxgate_budget_ledger")
        outage.stop("fast")
        outage.start()
        [(after,)] = outage.query(pg_db, "SELECT SUM(amount_pusd) FROM fluxgate_budget_ledger")
        assert before == after > 0


OUTAGE_APP = """
import sys, time
import fluxgate
from fluxgate.testing import FakeAnthropicAPI

fluxgate.init(store=sys.argv[1], spill_path=sys.argv[2], exit_timeout_s=3)
client = FakeAnthropicAPI().client()
slowest = 0.0
for _ in range(20):
    began = time.perf_counter()
    client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    slowest = max(slowest, time.perf_counter() - began)
print(f"slowest {slowest:.4f}", flush=True)
"""

REPLAY_APP = """
import sys
import fluxgate

fg = fluxgate.init(store=sys.argv[1], spill_path=sys.argv[2])
print("flushed", fluxgate.flush(timeout_s=60), flush=True)
"""


@pytest.mark.slow
class TestOutageAcrossExit:
    def test_spilled_at_exit_then_replayed(self, outage: PostgresServer, pg_db: str, tmp_path: Path) -> None:
        """PostgreSQL down: calls never fail or stall, the exiting process spills, and the next one delivers."""
        url, spill = outage.url(pg_db), tmp_path / "spill"
        PostgresSink(url).write([make_event(0)])  # the table exists, as on a running system
        outage.stop("fast")
        proc = spawn(OUTAGE_APP, url, str(spill))
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert float(out.split()[-1]) < 0.5  # no call waited on the database
        assert any(spill.iterdir()), "nothing was spilled at exit"
        outage.start()
        replay = spawn(REPLAY_APP, url, str(spill))
        out, err = replay.communicate(timeout=120)
        assert replay.returncode == 0, err
        assert len(ids(outage, pg_db)) == 21
        assert "password" not in err.lower()
