"""Budgets fail closed: a store that cannot be read, or is locked by another writer, blocks the call in bounded time."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

import fluxgate
from fluxgate import Budget, BudgetExceeded, Status
from fluxgate.testing import FakeAnthropicAPI, MemorySink

HI = [{"role": "user", "content": "hi"}]


def _call(api: FakeAnthropicAPI) -> object:
    return api.client().messages.create(model="claude-haiku-4-5", max_tokens=64, messages=HI)


def _corrupt(path: Path) -> None:
    path.write_bytes(b"this is not a database" * 100)


class TestCorruptStore:
    def test_blocks_with_the_reason(self, tmp_path: Path) -> None:
        """A corrupt budget store blocks the call (nothing is sent) with a message saying why."""
        store = tmp_path / "store.db"
        _corrupt(store)
        sink = MemorySink()
        fluxgate.init(sinks=[sink], db_path=store, budgets=[Budget("0.0000001")])
        api = FakeAnthropicAPI()
        for _ in range(3):
            with pytest.raises(BudgetExceeded, match="could not be read or reserved"):
                _call(api)
        assert api.requests == []
        assert fluxgate.flush(timeout_s=10)
        assert [e.status for e in sink.events] == [Status.BLOCKED] * 3

    def test_allow_lets_calls_through(self, tmp_path: Path) -> None:
        """budget_on_error='allow' lets calls through while the store fails."""
        store = tmp_path / "store.db"
        _corrupt(store)
        fluxgate.init(sinks=[MemorySink()], db_path=store, budgets=[Budget(1)], budget_on_error="allow")
        api = FakeAnthropicAPI()
        _call(api)
        assert len(api.requests) == 1


class TestLockedStore:
    def test_waits_a_bounded_time_then_blocks(self, tmp_path: Path) -> None:
        """A store locked by another writer blocks the call after budget_lock_timeout_s, not after 10 s."""
        store = tmp_path / "store.db"
        fluxgate.init(sinks=[MemorySink()], db_path=store, budgets=[Budget(1)], budget_lock_timeout_s=0.5)
        api = FakeAnthropicAPI()
        _call(api)  # creates the ledger
        holder = sqlite3.connect(store, isolation_level=None)  # another process would do the same
        holder.execute("BEGIN IMMEDIATE")
        try:
            began = time.monotonic()
            with pytest.raises(BudgetExceeded, match="could not be read or reserved"):
                _call(api)
            waited = time.monotonic() - began
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert 0.4 <= waited < 5
        assert len(api.requests) == 1  # the blocked call was never sent
        _call(api)  # the lock gone, calls pass again
        assert len(api.requests) == 2
