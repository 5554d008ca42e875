"""PostgresSpendStore: one budget shared by processes that share nothing else."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import fluxgate
from fluxgate import Budget, BudgetExceeded
from fluxgate._store.pg_spend import PostgresSpendStore, lock_id
from fluxgate._store.postgres import StoreUnavailableError
from fluxgate.testing import FakeAnthropicAPI, FakeReply, FakeRequest, MemorySink

from .conftest import PASSWORD, PostgresServer, free_port, run_together, spawn

EVER = (0, 2**62)


def claim(key: str, limit: int) -> tuple[str, int, int, int]:
    return (key, *EVER, limit)


class TestPostgresSpendStore:
    def test_reserve_until_full(self, pg_url: str) -> None:
        """Reservations succeed until the next would cross the limit, exactly."""
        store = PostgresSpendStore(pg_url)
        got = [store.reserve([claim("k", 100)], 30, 1) for _ in range(4)]
        assert [g is not None for g in got] == [True, True, True, False]
        assert store.spent("k", *EVER) == 90

    def test_settle_replaces_reservation(self, pg_url: str) -> None:
        """Settling swaps the worst case for the real cost, making room."""
        store = PostgresSpendStore(pg_url)
        rid = store.reserve([claim("k", 100)], 80, 1)
        assert rid is not None
        assert store.reserve([claim("k", 100)], 30, 1) is None
        store.settle(rid, 50)
        assert store.spent("k", *EVER) == 50
        assert store.reserve([claim("k", 100)], 30, 1) is not None

    def test_all_or_nothing(self, pg_url: str) -> None:
        """When one of several budgets is full, none is charged."""
        store = PostgresSpendStore(pg_url)
        assert store.reserve([claim("a", 100), claim("b", 10)], 20, 1) is None
        assert (store.spent("a", *EVER), store.spent("b", *EVER)) == (0, 0)
        assert store.reserve([claim("a", 100), claim("b", 100)], 20, 1) is not None
        assert (store.spent("a", *EVER), store.spent("b", *EVER)) == (20, 20)

    def test_windows_are_separate(self, pg_url: str) -> None:
        """Spend in one window does not count in the next."""
        store = PostgresSpendStore(pg_url)
        assert store.reserve([("k", 0, 1000, 100)], 100, 500) is not None
        assert store.reserve([("k", 0, 1000, 100)], 1, 999) is None
        assert store.reserve([("k", 1000, 2000, 100)], 100, 1000) is not None
        assert (store.spent("k", 0, 1000), store.spent("k", 1000, 2000)) == (100, 100)

    def test_ids_are_distinct(self, pg_url: str) -> None:
        """Every reservation gets its own id, and settling one leaves the others."""
        store = PostgresSpendStore(pg_url)
        first, second = store.reserve([claim("k", 100)], 10, 1), store.reserve([claim("k", 100)], 10, 1)
        assert first is not None
        assert second is not None
        assert first != second
        store.settle(first, 0)
        assert store.spent("k", *EVER) == 10

    def test_unsettled_reservation_expires(self, pg_url: str) -> None:
        """A reservation never settled stops counting after the TTL; settling late counts the real cost."""
        lasting = PostgresSpendStore(pg_url)
        rid = lasting.reserve([claim("held", 100)], 60, 1)
        assert rid is not None
        assert lasting.spent("held", *EVER) == 60
        expiring = PostgresSpendStore(pg_url, reservation_ttl_s=0)
        late = expiring.reserve([claim("lost", 100)], 60, 1)
        assert late is not None
        assert expiring.spent("lost", *EVER) == 0
        assert lasting.reserve([claim("lost", 100)], 95, 1) is not None  # the room came back
        expiring.settle(late, 5)
        assert lasting.spent("lost", *EVER) == 100

    def test_threads_never_overspend(self, pg_url: str) -> None:
        """Eight threads of one process take exactly what fits."""
        store = PostgresSpendStore(pg_url, max_connections=3)
        taken: list[int] = []

        def work() -> None:
            for _ in range(200):
                rid = store.reserve([claim("t", 1_000)], 7, 1)
                if rid is None:
                    return
                taken.append(rid)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(taken) == 1_000 // 7 == len(set(taken))
        assert store.spent("t", *EVER) == 7 * (1_000 // 7)

    def test_lock_ids_are_stable_and_signed_64_bit(self) -> None:
        """A key's lock id is the same in every process and fits pg_advisory_xact_lock(bigint)."""
        assert lock_id("daily#global") == lock_id("daily#global") != lock_id("daily#u1")
        assert -(2**63) <= lock_id("x") < 2**63

    def test_unreachable_fails_closed(self, pg_server: PostgresServer) -> None:
        """With nobody listening, every method raises StoreUnavailableError instead of allowing."""
        store = PostgresSpendStore(pg_server.url("postgres", port=free_port()), connect_timeout_s=2)
        with pytest.raises(StoreUnavailableError):
            store.reserve([claim("k", 100)], 1, 1)
        with pytest.raises(StoreUnavailableError):
            store.spent("k", *EVER)

    def test_bad_options_rejected(self) -> None:
        """A non-URL, a negative TTL and no connections are configuration errors."""
        for kwargs in (
            {"url": "budget.db"},
            {"url": "postgresql://u:p@h/db", "reservation_ttl_s": -1},
            {"url": "postgresql://u:p@h/db", "max_connections": 0},
        ):
            with pytest.raises(fluxgate.ConfigurationError):
                PostgresSpendStore(**kwargs)


CRASHER = """
import os, sys
from fluxgate._store.pg_spend import PostgresSpendStore
store = PostgresSpendStore(sys.argv[1], reservation_ttl_s=float(sys.argv[2]))
assert store.reserve([(sys.argv[3], 0, 2**62, 100)], 70, 1) is not None
os._exit(0)  # dies mid-call: never settles
"""

RESERVER = """
import sys
from fluxgate._store.pg_spend import PostgresSpendStore
store = PostgresSpendStore(sys.argv[1])
limit, amount = int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
taken = 0
for _ in range(limit // amount + 10):
    rid = store.reserve([("shared", 0, 2**62, limit), ("other#" + sys.argv[4], 0, 2**62, limit)], amount, 1)
    if rid is None:
        break
    store.settle(rid, amount)
    taken += 1
print(taken)
"""


@pytest.mark.slow
class TestProcesses:
    @pytest.mark.parametrize(("ttl", "counted"), [(600, 70), (0, 0)])
    def test_crashed_call(self, pg_url: str, ttl: float, counted: int) -> None:
        """A process that dies holding a reservation holds it until the TTL, then no more."""
        proc = spawn(CRASHER, pg_url, str(ttl), "crash")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert PostgresSpendStore(pg_url).spent("crash", *EVER) == counted

    @pytest.mark.parametrize("round_", range(3))
    def test_four_processes_never_overspend(self, pg_url: str, tmp_path: Path, round_: int) -> None:
        """Four processes with separate local directories, released at once, take exactly what fits."""
        limit, amount = 1_000_000, 7_000 + round_
        procs = [
            spawn(
                RESERVER,
                pg_url,
                str(limit),
                str(amount),
                str(k),
                env={"FLUXGATE_DB": str(tmp_path / f"p{k}" / "events.db"), "XDG_DATA_HOME": str(tmp_path / f"p{k}")},
            )
            for k in range(4)
        ]
        taken = [int(out) for out in run_together(procs)]
        assert sum(taken) == limit // amount
        assert PostgresSpendStore(pg_url).spent("shared", *EVER) == sum(taken) * amount <= limit


# -- whole calls: fluxgate.init(budget_store=PostgresSpendStore(...)) ------------

MTOK = Decimal(1_000_000)
ACTUAL_USD = (500 * Decimal(3) + 200 * Decimal(15)) / MTOK  # claude-sonnet-4-6, 500 in / 200 out


def fixed_usage(request: FakeRequest) -> FakeReply:
    """Every call really uses 500 input and 200 output tokens."""
    body = request.body if isinstance(request.body, dict) else {}
    return FakeReply(
        json_body={
            "id": "msg_pg",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-sonnet-4-6"),
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 500, "output_tokens": 200},
        }
    )


REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 1000,
    "messages": [{"role": "user", "content": "Plan the next step."}],
}

CALLER = """
import sys
import fluxgate
from fluxgate import Budget, BudgetExceeded
from fluxgate._store.pg_spend import PostgresSpendStore
from fluxgate.testing import FakeAnthropicAPI
from tests.postgres.test_pg_spend import REQUEST, fixed_usage

fluxgate.init(
    budgets=[Budget(sys.argv[2], per="day", name="shared-team-budget")],
    budget_store=PostgresSpendStore(sys.argv[1]),
)
client = FakeAnthropicAPI(responder=fixed_usage).client()
print("ready", flush=True)
sys.stdin.readline()
sent = 0
try:
    for _ in range(1000):
        client.messages.create(**REQUEST)
        sent += 1
except BudgetExceeded:
    pass
assert fluxgate.flush(timeout_s=30)
print(sent)
"""


class _Spy(PostgresSpendStore):
    amounts: list[int]

    def reserve(self, claims: Any, amount_pusd: int, now_ms: int) -> int | None:
        self.amounts.append(amount_pusd)
        return super().reserve(claims, amount_pusd, now_ms)


@pytest.mark.slow
class TestCalls:
    def test_four_services_stop_at_the_exact_call(
        self, pg_server: PostgresServer, pg_db: str, pg_url: str, tmp_path: Path
    ) -> None:
        """Four processes under one budget in Postgres, each with its own local store, spend exactly what fits."""
        spy = _Spy(pg_url)
        spy.amounts = []
        fluxgate.init(sinks=[MemorySink()], budgets=[Budget(1, name="probe")], budget_store=spy)
        FakeAnthropicAPI(responder=fixed_usage).client().messages.create(**REQUEST)
        fluxgate.shutdown(timeout_s=5)
        worst = Decimal(spy.amounts[0]) / 10**12
        limit = ACTUAL_USD * 40
        fits, spent = 0, Decimal(0)
        while spent + worst <= limit:  # call k+1 is sent while spent + its worst case fits
            spent += ACTUAL_USD
            fits += 1

        procs = [
            spawn(
                CALLER,
                pg_url,
                str(limit),
                env={"FLUXGATE_DB": str(tmp_path / f"p{k}" / "events.db"), "XDG_DATA_HOME": str(tmp_path / f"p{k}")},
            )
            for k in range(4)
        ]
        sent = sum(int(out) for out in run_together(procs))
        [(total,)] = pg_server.query(
            pg_db,
            "SELECT COALESCE(SUM(amount_pusd), 0) FROM fluxgate_budget_ledger WHERE key LIKE 'shared-team-budget%%'",
        )
        assert Decimal(total) / 10**12 == sent * ACTUAL_USD <= limit
        assert sent == fits > 4

    def test_unreachable_store_blocks_the_call(self, pg_server: PostgresServer) -> None:
        """With the budget's database down, a call under a budget is blocked, not let through."""
        store = PostgresSpendStore(pg_server.url("postgres", port=free_port()), connect_timeout_s=2)
        api = FakeAnthropicAPI(responder=fixed_usage)
        fluxgate.init(sinks=[MemorySink()], budgets=[Budget(100)], budget_store=store)
        with pytest.raises(BudgetExceeded, match="StoreUnavailableError") as info:
            api.client().messages.create(**REQUEST)
        assert api.requests == []
        assert "***" in str(info.value)
        assert PASSWORD not in str(info.value)
