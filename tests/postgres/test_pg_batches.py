"""PostgresBatchStore: a batch's context recorded on one host, its results counted once anywhere."""

from __future__ import annotations

import json
import threading

import pytest

from fluxgate import AiEventUser
from fluxgate._models import ContextFrame
from fluxgate._store.pg_batches import PostgresBatchStore, context_from_dict, context_to_dict
from fluxgate._store.postgres import StoreUnavailableError

from .conftest import PostgresServer, free_port, run_together, spawn

CONTEXT = ContextFrame(
    feature="nightly-digest",
    user=AiEventUser("u7", name="Grace", monthly_revenue=19.0),
    step="summarize",
    session_id="s1",
    metadata={"team": "growth", "n": [1, 2]},
)


def remember(store: PostgresBatchStore, batch_id: str, count: int) -> None:
    store.remember(
        batch_id,
        api="messages.batches.create",
        platform="anthropic",
        created_at=1_790_000_000_000,
        context=CONTEXT,
        requests=[(f"r{i}", "claude-sonnet-4-6" if i % 2 else None) for i in range(count)],
    )


class TestPostgresBatchStore:
    def test_claim_returns_context_once(self, pg_url: str) -> None:
        """Each result is claimed once, with the creator's context, model, time and platform."""
        store = PostgresBatchStore(pg_url)
        remember(store, "msgbatch_1", 4)
        first = store.claim("msgbatch_1", ["r0", "r1"])
        assert list(first) == ["r0", "r1"]
        assert first["r1"].context == CONTEXT
        assert (first["r0"].model, first["r1"].model) == (None, "claude-sonnet-4-6")
        assert (first["r1"].created_at, first["r1"].platform) == (1_790_000_000_000, "anthropic")
        assert store.claim("msgbatch_1", ["r1", "r0", "r2", "r2"]).keys() == {"r2"}
        assert store.claim("msgbatch_1", ["r0", "r1", "r2"]) == {}

    def test_unknown_batch_claimed_once_without_context(self, pg_url: str) -> None:
        """Results of a batch nobody recorded count once, with no context."""
        store = PostgresBatchStore(pg_url)
        claims = store.claim("msgbatch_unknown", ["a", "b"])
        assert claims.keys() == {"a", "b"}
        assert claims["a"].context is None
        assert claims["a"].created_at is None
        assert store.claim("msgbatch_unknown", ["a", "b", "c"]).keys() == {"c"}

    def test_unannounced_result_of_known_batch(self, pg_url: str) -> None:
        """A result whose custom_id was not in the request list still gets the batch's context, once."""
        store = PostgresBatchStore(pg_url)
        remember(store, "msgbatch_2", 1)
        claims = store.claim("msgbatch_2", ["extra"])
        assert claims["extra"].context == CONTEXT
        assert claims["extra"].model is None
        assert store.claim("msgbatch_2", ["extra"]) == {}

    def test_remember_twice_keeps_first(self, pg_url: str) -> None:
        """Recording a batch again (a retried create) changes nothing and raises nothing."""
        store = PostgresBatchStore(pg_url)
        remember(store, "msgbatch_3", 2)
        store.remember(
            "msgbatch_3", api="x", platform="bedrock", created_at=1, context=ContextFrame(), requests=[("r0", "m")]
        )
        assert store.claim("msgbatch_3", ["r0"])["r0"].context == CONTEXT

    def test_threads_racing_claim_each_result_once(self, pg_url: str) -> None:
        """Six threads claiming overlapping chunks in different orders share out every result exactly once."""
        store = PostgresBatchStore(pg_url, max_connections=6)
        remember(store, "msgbatch_4", 300)
        ids = [f"r{i}" for i in range(300)] + ["stray-1", "stray-2"]
        got: list[str] = []
        lock = threading.Lock()

        def work(k: int) -> None:
            order = ids[k * 50 :] + ids[: k * 50]
            if k % 2:
                order.reverse()
            for start in range(0, len(order), 40):
                claimed = store.claim("msgbatch_4", order[start : start + 40])
                with lock:
                    got.extend(claimed)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(got) == sorted(ids)

    def test_context_round_trip(self) -> None:
        """A context survives the JSON the store keeps; junk gives an empty context."""
        assert context_from_dict(json.loads(json.dumps(context_to_dict(CONTEXT)))) == CONTEXT
        assert context_from_dict(["not", "a", "dict"]) == ContextFrame()

    def test_unreachable(self, pg_server: PostgresServer) -> None:
        """An unreachable database raises StoreUnavailableError (the caller logs it and carries on)."""
        store = PostgresBatchStore(pg_server.url("postgres", port=free_port()), connect_timeout_s=2)
        with pytest.raises(StoreUnavailableError):
            store.claim("b", ["r0"])


CREATOR = """
import sys
from fluxgate._store.pg_batches import PostgresBatchStore
from tests.postgres.test_pg_batches import CONTEXT
store = PostgresBatchStore(sys.argv[1])
store.remember(
    "msgbatch_x", api="messages.batches.create", platform="anthropic", created_at=1_790_000_000_000,
    context=CONTEXT, requests=[(f"r{i}", "claude-haiku-4-5") for i in range(400)],
)
"""

READER = """
import json, random, sys
from fluxgate._store.pg_batches import PostgresBatchStore
store = PostgresBatchStore(sys.argv[1])
ids = [f"r{i}" for i in range(400)]
random.Random(int(sys.argv[2])).shuffle(ids)
print("ready", flush=True)
sys.stdin.readline()
out = {}
for start in range(0, 400, 25):
    for cid, claim in store.claim("msgbatch_x", ids[start:start + 25]).items():
        out[cid] = [claim.context.feature, claim.context.user.id, claim.model]
print(json.dumps(out))
"""


@pytest.mark.slow
class TestProcesses:
    def test_created_in_one_process_attributed_in_others(self, pg_url: str) -> None:
        """A batch recorded by one process is read by three others: every result once, with its context."""
        creator = spawn(CREATOR, pg_url)
        _, err = creator.communicate(timeout=60)
        assert creator.returncode == 0, err
        readers = [spawn(READER, pg_url, str(k)) for k in range(3)]
        outputs = [json.loads(out) for out in run_together(readers)]
        claimed = [cid for out in outputs for cid in out]
        assert sorted(claimed) == sorted(f"r{i}" for i in range(400))
        for out in outputs:
            assert all(v == ["nightly-digest", "u7", "claude-haiku-4-5"] for v in out.values())
