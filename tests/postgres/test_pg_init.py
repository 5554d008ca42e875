"""init(store="postgresql://...") and FLUXGATE_DB: events, budgets and batches of every process in one database."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

import fluxgate
from fluxgate import Budget, BudgetExceeded
from fluxgate.sinks import PostgresSink
from fluxgate.testing import FakeAnthropicAPI

from .conftest import PostgresServer, run_together, spawn

HELLO = [{"role": "user", "content": "Hello"}]

WORKER = textwrap.dedent(
    """
    import os, sys
    import fluxgate
    from fluxgate import Budget, BudgetExceeded, track
    from fluxgate.testing import FakeAnthropicAPI

    os.chdir(sys.argv[2])  # each process has a local directory of its own
    fluxgate.init(budgets=[Budget("0.01", per="day")])  # the store comes from FLUXGATE_DB
    client = FakeAnthropicAPI().client()
    HI = [{"role": "user", "content": "hi"}]
    print("ready", flush=True)
    sys.stdin.readline()
    sent = blocked = 0
    with fluxgate.track_context(feature=sys.argv[1]):
        for _ in range(40):
            try:
                client.messages.create(model="claude-haiku-4-5", max_tokens=200, messages=HI)
                sent += 1
            except BudgetExceeded:
                blocked += 1
    fluxgate.shutdown()
    print(sent, blocked, flush=True)
    """
)


def _count(pg_server: PostgresServer, url: str, sql: str) -> list[tuple[object, ...]]:
    dbname = url.rsplit("/", 1)[1]
    return pg_server.query(dbname, sql)


class TestInit:
    def test_store_url_selects_postgres(self, pg_server: PostgresServer, pg_url: str) -> None:
        """init(store=URL) sends events to PostgreSQL with exact costs and the caller's context."""
        fg = fluxgate.init(store=pg_url)
        assert isinstance(fg.sinks[0], PostgresSink)
        assert "***" in repr(fg.sinks[0])
        client = FakeAnthropicAPI().client()
        with fluxgate.track_context(feature="pg", user="u1"):
            message = client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=HELLO)
        assert fluxgate.flush(timeout_s=20)
        cost = Decimal(str(message.fluxgate_cost_tracking_response.cost))
        rows = _count(pg_server, pg_url, "SELECT feature, user_id, cost_usd FROM fluxgate_events")
        assert [(f, u) for f, u, _ in rows] == [("pg", "u1")]
        assert Decimal(rows[0][2]) == cost

    def test_fluxgate_db_url(self, pg_server: PostgresServer, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """FLUXGATE_DB=postgresql://... selects PostgreSQL for events, budgets and batches alike."""
        monkeypatch.setenv("FLUXGATE_DB", pg_url)
        fg = fluxgate.init(budgets=[Budget(1, per="day")])
        assert fg.store == pg_url
        assert type(fg.budget_guard.store).__name__ == "PostgresSpendStore"  # type: ignore[union-attr]
        assert type(fg.batch_store).__name__ == "PostgresBatchStore"
        FakeAnthropicAPI().client().messages.create(model="claude-haiku-4-5", max_tokens=8, messages=HELLO)
        assert fluxgate.flush(timeout_s=20)
        assert _count(pg_server, pg_url, "SELECT COUNT(*) FROM fluxgate_events") == [(1,)]

    def test_store_and_db_path_together_is_a_mistake(self, pg_url: str, tmp_path: Path) -> None:
        """Naming two stores raises a ConfigurationError that says which to drop."""
        with pytest.raises(fluxgate.ConfigurationError, match="'store' or 'db_path'"):
            fluxgate.init(store=pg_url, db_path=tmp_path / "x.db")


@pytest.mark.slow
class TestSharedBudget:
    @pytest.mark.parametrize("run", [1, 2])
    def test_four_processes_never_overspend(
        self, pg_server: PostgresServer, pg_url: str, tmp_path: Path, run: int
    ) -> None:
        """Four processes with separate local directories share one $0.01 budget through PostgreSQL."""
        dirs = [tmp_path / f"host{i}" for i in range(4)]
        for d in dirs:
            d.mkdir()
        procs = [spawn(WORKER, f"w{i}", str(d), env={"FLUXGATE_DB": pg_url}) for i, d in enumerate(dirs)]
        outputs = run_together(procs, timeout_s=240)
        sent = sum(int(out.split()[0]) for out in outputs)
        blocked = sum(int(out.split()[1]) for out in outputs)
        assert sent + blocked == 160
        assert blocked > 0
        spent = _count(pg_server, pg_url, "SELECT COALESCE(SUM(cost_usd), 0) FROM fluxgate_events")
        assert Decimal(spent[0][0]) <= Decimal("0.01")
        assert _count(pg_server, pg_url, "SELECT COUNT(*) FROM fluxgate_events WHERE status = 'SUCCESS'") == [(sent,)]
        for d in dirs:
            assert list(d.iterdir()) == []  # nothing local: the budget lives in PostgreSQL
        assert BudgetExceeded  # the workers block with it
