"""PostgresSink against a real server: exact money, idempotence, schema, errors."""

from __future__ import annotations

import gc
import json
import os
import threading
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fluxgate
from fluxgate import AiEventUser, CostEvent, SinkError, Status, TransientSinkError
from fluxgate._delivery.flusher import Flusher
from fluxgate._handoff import Handoff
from fluxgate._models import ContextFrame, Usage
from fluxgate._recording import PendingEvent
from fluxgate._store.pg_schema import EVENT_COLUMNS, quoted
from fluxgate.sinks.postgres import PostgresSink, event_from_row

from ..pricing.test_bill import ID_FORMS, usages
from ..sinks.conftest import make_pending
from .conftest import LIMITED, REPO, PostgresServer, free_port, make_event, run_together, spawn


def stored(server: PostgresServer, db: str, where: str = "TRUE") -> list[dict[str, Any]]:
    """The rows of fluxgate_events as dicts, oldest first."""
    with server.admin(db) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM fluxgate_events WHERE {where} ORDER BY created_at")
        names = [col.name for col in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class TestPostgresSink:
    def test_round_trip(self, pg_server: PostgresServer, pg_db: str) -> None:
        """An event written and read back is equal, its cost exact as numeric and as pico-dollars."""
        sink = PostgresSink(pg_server.url(pg_db))
        event = make_event(7)
        sink.write([event])
        sink.close()
        [row] = stored(pg_server, pg_db)
        assert event_from_row(row) == event
        assert row["cost_usd"] == Decimal("0.000123456796")
        assert row["cost_pusd"] == 123_456_796

    def test_one_column_per_field(self, pg_server: PostgresServer, pg_db: str) -> None:
        """The table has a column for every CostEvent field, plus cost_pusd."""
        PostgresSink(pg_server.url(pg_db)).write([make_event()])
        columns = {
            name
            for (name,) in pg_server.query(
                pg_db, "SELECT column_name FROM information_schema.columns WHERE table_name = 'fluxgate_events'"
            )
        }
        assert columns == set(EVENT_COLUMNS)
        assert {a.name for a in CostEvent.__attrs_attrs__} | {"cost_pusd"} == columns

    def test_schema_version_recorded(self, pg_server: PostgresServer, pg_db: str) -> None:
        """First use records the events schema's version."""
        PostgresSink(pg_server.url(pg_db)).write([make_event()])
        assert pg_server.query(pg_db, "SELECT component, version FROM fluxgate_schema") == [("events", 1)]

    def test_retried_batch_stored_once(self, pg_server: PostgresServer, pg_db: str) -> None:
        """Writing a batch again (a retry, or another process) leaves one row per event."""
        sink = PostgresSink(pg_server.url(pg_db))
        batch = [make_event(i) for i in range(5)]
        sink.write(batch)
        sink.write(batch)
        sink.write([*batch[2:], make_event(9)])
        sink.write([make_event(11), make_event(11)])  # twice in one batch
        assert [r["tracking_id"] for r in stored(pg_server, pg_db)] == [f"evt-{i}" for i in (0, 1, 2, 3, 4, 9, 11)]

    def test_unpriced_event(self, pg_server: PostgresServer, pg_db: str) -> None:
        """An unpriced event stores NULL cost, never 0."""
        PostgresSink(pg_server.url(pg_db)).write(
            [make_event(cost_usd=None, cost_status="unpriced_model", cost_breakdown={})]
        )
        [row] = stored(pg_server, pg_db)
        assert (row["cost_usd"], row["cost_pusd"]) == (None, None)
        assert event_from_row(row).cost_usd is None

    def test_huge_cost_keeps_numeric_and_nulls_pusd(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A cost too large for bigint pico-dollars is stored exactly as numeric, with NULL pusd."""
        cost = Decimal("12345678.123456789012")
        PostgresSink(pg_server.url(pg_db)).write([make_event(cost_usd=cost), make_event(1)])
        rows = stored(pg_server, pg_db)
        assert (rows[0]["cost_usd"], rows[0]["cost_pusd"]) == (cost, None)
        assert rows[1]["cost_pusd"] == 123_456_790

    def test_nul_characters_do_not_lose_the_batch(self, pg_server: PostgresServer, pg_db: str) -> None:
        """Text with NUL characters, which PostgreSQL cannot hold, is stored with them replaced."""
        PostgresSink(pg_server.url(pg_db)).write([make_event(feature="a\x00b", metadata={"k\x00": "v\x00"})])
        [row] = stored(pg_server, pg_db)
        assert row["feature"] == "a\ufffdb"
        assert row["metadata"] == {"k\ufffd": "v\ufffd"}

    def test_text_that_copy_escapes_round_trips(self, pg_server: PostgresServer, pg_db: str) -> None:
        """Tabs, newlines, backslashes and quotes in text and JSON come back as written (a batch goes as COPY)."""
        odd = "a\tb\nc\\d\r\"e' \\N \u00e9\U0001f600"
        event = make_event(1, error_message=odd, feature=odd, metadata={odd: odd}, user=AiEventUser(odd, name=odd))
        PostgresSink(pg_server.url(pg_db)).write([event, make_event(2, latency_ms=float("inf"))])
        first, second = stored(pg_server, pg_db)
        assert event_from_row(first) == event
        assert second["latency_ms"] == float("inf")

    def test_refused_event_dropped_alone(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A row the server refuses (a count beyond bigint) is dropped alone as unserializable; the rest is stored."""
        import fluxgate

        dropped: list[tuple[str, str]] = []
        fg = fluxgate.FluxGate(
            sinks=[PostgresSink(pg_server.url(pg_db))], on_drop=lambda e, why: dropped.append((e.tracking_id, why))
        )
        for event in [make_event(1), make_event(2, input_tokens=2**70), make_event(3)]:
            fg.record(event)
        assert not fg.flush(timeout_s=30)  # something was dropped: flush says so
        fg.shutdown()
        assert [r["tracking_id"] for r in stored(pg_server, pg_db)] == ["evt-1", "evt-3"]
        assert dropped == [("evt-2", "unserializable")]

    def test_adds_columns_of_newer_versions(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A table lacking columns (an older fluxgate's, or one made by hand) gets them on first write."""
        with pg_server.admin(pg_db) as conn:
            conn.execute("CREATE TABLE fluxgate_events (tracking_id text PRIMARY KEY, created_at bigint)")
            conn.execute("ALTER TABLE fluxgate_events OWNER TO fluxgate_app")
        PostgresSink(pg_server.url(pg_db)).write([make_event()])
        [row] = stored(pg_server, pg_db)
        assert event_from_row(row) == make_event()

    def test_partitioned_table(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A table partitioned by created_at, made by an operator (docs/scaling.md), works and de-duplicates."""
        columns = ", ".join(f"{quoted(name)} {kind}" for name, kind in EVENT_COLUMNS.items())
        with pg_server.admin(pg_db) as conn:
            conn.execute(
                f"CREATE TABLE fluxgate_events ({columns}, PRIMARY KEY (tracking_id, created_at))"
                " PARTITION BY RANGE (created_at)"
            )
            conn.execute("CREATE TABLE fluxgate_events_default PARTITION OF fluxgate_events DEFAULT")
            conn.execute("ALTER TABLE fluxgate_events OWNER TO fluxgate_app")
            conn.execute("ALTER TABLE fluxgate_events_default OWNER TO fluxgate_app")
        sink = PostgresSink(pg_server.url(pg_db))
        sink.write([make_event(1), make_event(2)])
        sink.write([make_event(1), make_event(2)])
        assert len(stored(pg_server, pg_db)) == 2

    def test_missing_partition_is_transient(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A row no partition takes is retried (transient) until the operator adds one, never dropped."""
        columns = ", ".join(f"{quoted(name)} {kind}" for name, kind in EVENT_COLUMNS.items())
        pg_server.execute(
            pg_db,
            f"CREATE TABLE fluxgate_events ({columns}, PRIMARY KEY (tracking_id, created_at))"
            " PARTITION BY RANGE (created_at)",
            "CREATE TABLE fluxgate_events_old PARTITION OF fluxgate_events FOR VALUES FROM (0) TO (1)",
            "ALTER TABLE fluxgate_events OWNER TO fluxgate_app",
        )
        sink = PostgresSink(pg_server.url(pg_db))
        with pytest.raises(TransientSinkError, match="23514"):
            sink.write([make_event(1)])
        pg_server.execute(pg_db, "CREATE TABLE fluxgate_events_default PARTITION OF fluxgate_events DEFAULT")
        sink.write([make_event(1)])
        assert len(stored(pg_server, pg_db)) == 1

    def test_url_options_are_kept(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A search_path set in the URL's options puts the tables in that schema; our timeouts still apply."""
        pg_server.execute(pg_db, "CREATE SCHEMA fluxgate AUTHORIZATION fluxgate_app")
        url = pg_server.url(pg_db) + "?options=-csearch_path%3Dfluxgate&application_name=billing"
        sink = PostgresSink(url, statement_timeout_s=7)
        sink.write([make_event(1)])
        assert pg_server.query(pg_db, "SELECT count(*) FROM fluxgate.fluxgate_events") == [(1,)]
        seen = sink._conns.run(
            lambda conn: conn.execute(
                "SELECT current_setting('statement_timeout'), current_setting('application_name')"
            ).fetchall(),
            what="probe",
        )
        assert seen == [("7s", "billing")]

    def test_table_dropped_under_the_sink(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A table dropped while the sink runs is a transient error; the retry creates it again."""
        sink = PostgresSink(pg_server.url(pg_db))
        sink.write([make_event(1)])
        pg_server.execute(pg_db, "DROP TABLE fluxgate_events", "DELETE FROM fluxgate_schema")
        with pytest.raises(TransientSinkError, match="UndefinedTable"):
            sink.write([make_event(2)])
        sink.write([make_event(2)])
        assert [r["tracking_id"] for r in stored(pg_server, pg_db)] == ["evt-2"]

    def test_permission_denied_is_permanent(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A table the role may not write is a permanent SinkError, not a retry."""
        sink = PostgresSink(pg_server.url(pg_db))
        sink.write([make_event(1)])
        pg_server.execute(pg_db, "ALTER TABLE fluxgate_events OWNER TO postgres")
        with pytest.raises(SinkError) as info:
            sink.write([make_event(2)])
        assert not isinstance(info.value, TransientSinkError)
        assert "InsufficientPrivilege" in str(info.value)

    def test_unreachable_is_transient(self, pg_server: PostgresServer) -> None:
        """Nobody listening on the port is a TransientSinkError."""
        sink = PostgresSink(pg_server.url("postgres", port=free_port()), connect_timeout_s=2)
        with pytest.raises(TransientSinkError, match="connection"):
            sink.write([make_event()])

    def test_statement_timeout_is_transient(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A write stuck behind a lock ends at the statement timeout, as a transient error."""
        sink = PostgresSink(pg_server.url(pg_db), statement_timeout_s=0.3)
        sink.write([make_event(1)])
        with pg_server.admin(pg_db) as conn, conn.transaction():
            conn.execute("LOCK TABLE fluxgate_events IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(TransientSinkError, match="QueryCanceled"):
                sink.write([make_event(2)])
        sink.write([make_event(2)])
        assert len(stored(pg_server, pg_db)) == 2

    def test_concurrent_threads(self, pg_server: PostgresServer, pg_db: str) -> None:
        """Several threads writing through one sink, and through sinks of their own, lose nothing."""
        shared = PostgresSink(pg_server.url(pg_db))
        own = [PostgresSink(pg_server.url(pg_db)) for _ in range(3)]

        def work(k: int) -> None:
            for i in range(20):
                (shared if i % 2 else own[k]).write([make_event(k * 1000 + i)])

        threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(stored(pg_server, pg_db)) == 60

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
    def test_forked_child_opens_its_own_connection(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A child forked after the parent wrote uses a connection of its own; the parent's pooled one still works."""
        sink = PostgresSink(pg_server.url(pg_db))
        sink.write([make_event(1)])
        backend = sink._conns.run(lambda conn: conn.info.backend_pid, what="probe")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                sink.write([make_event(2)])  # drops the parent's connections from the child's pool
                gc.collect()  # and their finalizers must not close the parent's sockets
            except BaseException:
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        sink.write([make_event(3)])
        assert os.waitstatus_to_exitcode(status) == 0
        assert sink._conns.run(lambda conn: conn.info.backend_pid, what="probe") == backend  # same connection
        assert [r["tracking_id"] for r in stored(pg_server, pg_db)] == ["evt-1", "evt-2", "evt-3"]

    def test_through_init(self, pg_server: PostgresServer, pg_db: str) -> None:
        """Tracked calls reach the table through the flusher, with the costs the pipeline computed."""
        from fluxgate.testing import FakeAnthropicAPI, MemorySink

        memory = MemorySink()
        fluxgate.init(sinks=[PostgresSink(pg_server.url(pg_db)), memory])
        client = FakeAnthropicAPI().client()
        with fluxgate.track_context(feature="pg"):
            for _ in range(3):
                client.messages.create(
                    model="claude-sonnet-4-6", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
                )
        assert fluxgate.flush(timeout_s=30)
        assert [event_from_row(r) for r in stored(pg_server, pg_db)] == memory.events


def _reference_row(event: CostEvent) -> tuple[Any, ...]:
    """The row as the sink first made it, from ``to_dict()``: what ``_row`` must still give."""
    import json

    from fluxgate.sinks.postgres import _clean, to_pusd

    data = event.to_dict()
    data["cost_usd"] = event.cost_usd
    data["cost_pusd"] = to_pusd(event.cost_usd)
    out: list[Any] = []
    for name, kind in EVENT_COLUMNS.items():
        value = data.get(name)
        if value is None:
            out.append(None)
        elif kind == "jsonb":
            out.append(("jsonb", _clean(value)))
        elif kind == "text" and not isinstance(value, str):
            out.append(_clean(json.dumps(value, default=str)))
        else:
            out.append(_clean(value))
    return tuple(out)


class TestRows:
    @pytest.mark.parametrize(
        "overrides",
        [
            {},
            {"user": None, "metadata": None, "cost_usd": None, "cost_breakdown": {}, "cost_status": "unpriced_model"},
            {"feature": "a\x00b", "error_message": "\x00", "metadata": {"k\x00": ["v\x00", {"x": "\x00"}]}},
            {"metadata": {"price": Decimal("1.50"), "n": 3}, "status": Status.ERROR, "error_type": "api_error"},
            {"user": AiEventUser("u\x00", name="N\x00", email="a@b", monthly_revenue=1.5), "user_id": "u\x00"},
            {"model": 7, "step": Decimal("2"), "session_id": ["a", "b"], "cost_usd": Decimal(10) ** 9},
        ],
        ids=["usual", "empty", "nul", "decimal-metadata", "user", "odd-text"],
    )
    def test_a_row_holds_what_to_dict_gives(self, overrides: dict[str, Any]) -> None:
        """Each column's value is the event's field as ``to_dict()`` gives it, NULs replaced, the cost exact."""
        from fluxgate.sinks.postgres import _row

        event = make_event(3, **overrides)
        row = _row(event, lambda obj: ("jsonb", obj))
        assert len(row) == len(EVENT_COLUMNS)
        assert row == _reference_row(event)


def _as_json(text: str) -> tuple[str, Any]:
    """What the sink's JSON text holds (psycopg's ``Jsonb`` does not compare)."""
    return ("jsonb", json.loads(text))


def _facts_row(pending: PendingEvent) -> tuple[Any, ...]:
    return PostgresSink("postgresql://u@h/db")._pending_row(pending, _as_json)


def _event_row(event: CostEvent) -> tuple[Any, ...]:
    from fluxgate.sinks.postgres import _row

    return _row(event, lambda obj: ("jsonb", json.loads(json.dumps(obj))))


class TestCallFacts:
    """The flusher hands the sink a call's facts (``PendingEvent``); no ``CostEvent`` is built for it."""

    @settings(max_examples=200, deadline=None)
    @given(
        model=st.sampled_from([*ID_FORMS, "claude-unknown-9"]),
        usage=usages(),
        batch_id=st.none() | st.just("msgbatch_1"),
        estimated=st.booleans(),
    )
    def test_facts_give_the_row_their_event_gives(
        self, model: str, usage: Usage, batch_id: str | None, estimated: bool
    ) -> None:
        """For any usage, the cost to its last digit and exponent, its breakdown and every other column."""
        facts: dict[str, Any] = {"model": model, "batch_id": batch_id, "estimated": estimated}
        facts |= {"tracking_id": "a" * 32, "created_at": 1}
        pending = make_pending(usage=usage, **facts)
        row = _facts_row(pending)
        expected = _event_row(make_pending(usage=usage, **facts).materialize())
        assert row == expected
        cost = list(EVENT_COLUMNS).index("cost_usd")
        assert (row[cost] is None) is (expected[cost] is None)
        if row[cost] is not None:
            assert row[cost].as_tuple() == expected[cost].as_tuple()

    @pytest.mark.parametrize(
        "context",
        [
            ContextFrame(),
            ContextFrame.build(feature="f", user=AiEventUser("u1", name="Ada", monthly_revenue=49.5), step="s"),
            ContextFrame.build(feature="a\x00b", user=AiEventUser("u\x00"), metadata={"k\x00": ["v\x00", 1.5]}),
            ContextFrame.build(session_id="sess", conversation_id="c", service_tier="standard", metadata={"n": 1}),
        ],
        ids=["empty", "user", "nul", "session"],
    )
    def test_a_scope_gives_the_columns_its_event_gives(self, context: ContextFrame) -> None:
        """A scope's columns (NULs replaced, the user's and metadata's JSON made once) are those its event gives."""
        facts: dict[str, Any] = {
            "tracking_id": "b" * 32,
            "created_at": 2,
            "error_message": "x\x00",
            "status": Status.ERROR,
        }
        assert _facts_row(make_pending(context=context, **facts)) == _event_row(
            make_pending(context=context, **facts).materialize()
        )

    def test_stored_facts_read_back_as_their_events(self, pg_server: PostgresServer, pg_db: str) -> None:
        """Calls of several scopes, interleaved, beside an event recorded by hand: each row is its own event."""
        scopes = [
            ContextFrame.build(feature="a", user=AiEventUser("u1"), metadata={"k": [1]}),
            ContextFrame.build(step="s", session_id="sess"),
            ContextFrame(),
        ]
        batch: list[CostEvent | PendingEvent] = [
            make_pending(context=scopes[i % 3], tracking_id=f"{i:032x}", created_at=1_790_000_000_000 + i)
            for i in range(150)
        ]
        batch[7] = make_event(7, created_at=1_790_000_000_007)
        sink = PostgresSink(pg_server.url(pg_db))
        sink.write(batch)
        sink.close()
        expected = [item if isinstance(item, CostEvent) else item.materialize() for item in batch]
        assert [event_from_row(r) for r in stored(pg_server, pg_db)] == expected


class TestBusyCaller:
    """The writer waits for the GIL after each answer of the server; a busy caller hands it over (fluxgate._handoff)."""

    def test_each_wait_for_the_server_is_a_step(self, pg_server: PostgresServer, pg_db: str) -> None:
        """Each 64 rows made and each wait for the server is inside the write, at a step of its own."""
        steps: list[int] = []

        class Recording(Handoff):
            def advance(self) -> None:
                super().advance()
                steps.append(self.step)

        sink = PostgresSink(pg_server.url(pg_db))
        sink._handoff = sink._conns._handoff = Recording()  # before the first connection
        sink.write([make_event(0)])  # connects and makes the schema
        steps.clear()
        sink.write([make_event(n) for n in range(1, 201)])
        assert len(steps) >= 4 + 3  # 200 rows made 64 at a time; BEGIN, the COPY, COMMIT
        assert all(step % 2 == 1 for step in steps)
        assert len(set(steps)) == len(steps)
        assert sink._handoff.step % 2 == 0  # out again
        sink.close()

    def test_a_failed_write_leaves_its_steps(self) -> None:
        """A write that cannot reach the server leaves the writer out of its steps (callers never pause for it)."""
        sink = PostgresSink(f"postgresql://u:p@127.0.0.1:{free_port()}/db", connect_timeout_s=2)
        with pytest.raises(TransientSinkError):
            sink.write([make_event(1)])
        assert sink._handoff.step % 2 == 0

    def test_the_writer_keeps_pace_with_a_busy_caller(self, pg_server: PostgresServer, pg_db: str) -> None:
        """A caller that keeps the interpreter busy, letting go of the GIL only for moments, does not starve the writer.

        Handed the GIL when it waits for it after an answer of the server,
        the writer delivers batches while the caller is still at it, before the
        backlog (1,000 held) would make callers pause on the flusher's own
        rule; starved, it delivered none.
        """
        sink = PostgresSink(pg_server.url(pg_db))
        sink.write([make_event(0)])  # connected, the schema made
        f = Flusher([sink])  # default batching: wakes at 500 queued
        for n in range(1, 1001):
            sum(range(15_000))  # an application busy computing
            os.urandom(16)  # and a moment without the GIL
            f.submit(make_event(n))
        stats = f.snapshot()
        assert stats["sinks"]["PostgresSink"]["delivered"] >= 200, stats  # 400 seen; none without the hand-over
        assert f.flush(30)
        assert f.close(5)


class TestPrivileges:
    def test_documented_grants_suffice(self, pg_server: PostgresServer, pg_db: str) -> None:
        """Once the tables exist, a role with only the GRANTs of docs/scaling.md can use the sink and both stores."""
        from fluxgate._models import ContextFrame
        from fluxgate._store.pg_batches import PostgresBatchStore
        from fluxgate._store.pg_spend import PostgresSpendStore

        owner = pg_server.url(pg_db)
        PostgresSink(owner).write([make_event(1)])
        PostgresSpendStore(owner).spent("k", 0, 1)
        PostgresBatchStore(owner).claim("b", ["r0"])
        docs = (REPO / "docs" / "scaling.md").read_text()
        grants = [line.replace("fluxgate_app", LIMITED) for line in docs.splitlines() if line.startswith("GRANT ")]
        assert len(grants) >= 4
        pg_server.execute(pg_db, *grants)
        limited = pg_server.url(pg_db, user=LIMITED)
        sink, store, batches = PostgresSink(limited), PostgresSpendStore(limited), PostgresBatchStore(limited)
        sink.write([make_event(1), make_event(2)])
        rid = store.reserve([("k", 0, 2**62, 100)], 60, 1)
        assert rid is not None
        store.settle(rid, 50)
        assert store.spent("k", 0, 2**62) == 50
        batches.remember("b2", api="a", platform="p", created_at=1, context=ContextFrame(), requests=[("r0", None)])
        assert batches.claim("b2", ["r0", "r1"]).keys() == {"r0", "r1"}
        assert len(stored(pg_server, pg_db)) == 2


class TestOptions:
    def test_bad_options_rejected(self) -> None:
        """Non-URLs, bad ports, bad timeouts and pool sizes are configuration errors."""
        good = "postgresql://u:pw@localhost/db"
        for kwargs in (
            {"url": "/tmp/events.db"},
            {"url": "postgresql://u:pw@localhost:notaport/db"},
            {"url": good, "connect_timeout_s": 0},
            {"url": good, "statement_timeout_s": float("inf")},
            {"url": good, "pool_size": 0},
        ):
            with pytest.raises(fluxgate.ConfigurationError):
                PostgresSink(**kwargs)

    def test_repr_masks_password(self) -> None:
        """The sink shows its URL with the password masked."""
        sink = PostgresSink("postgresql://app:hunter2@db.internal:5432/fg")
        assert repr(sink) == "PostgresSink('postgresql://app:***@db.internal:5432/fg')"
        assert sink.url == "postgresql://app:***@db.internal:5432/fg"


WRITER = """
import sys
from fluxgate.sinks.postgres import PostgresSink
from tests.postgres.conftest import make_event

url, k = sys.argv[1], int(sys.argv[2])
sink = PostgresSink(url)
own = [make_event(k * 1000 + i) for i in range(60)]
shared = [make_event(900_000 + i) for i in range(20)]  # every process writes these too
print("ready", flush=True)
sys.stdin.readline()
for start in range(0, 60, 10):
    batch = own[start:start + 10] + shared[start // 3:start // 3 + 4]
    sink.write(batch)
    sink.write(batch[:5])  # a retry of part of it
sink.close()
print("done")
"""


@pytest.mark.slow
class TestProcesses:
    def test_events_from_several_processes_land_once(self, pg_server: PostgresServer, pg_db: str) -> None:
        """Four processes writing at once, with overlaps and retries, store each event once, costs exact."""
        procs = [spawn(WRITER, pg_server.url(pg_db), str(k)) for k in range(4)]
        run_together(procs)
        expected = {e.tracking_id: e for k in range(4) for e in (make_event(k * 1000 + i) for i in range(60))}
        expected.update({e.tracking_id: e for e in (make_event(900_000 + i) for i in range(20))})
        rows = stored(pg_server, pg_db)
        assert len(rows) == len(expected) == 260
        assert {r["tracking_id"]: event_from_row(r) for r in rows} == expected
        [(total_usd, total_pusd)] = pg_server.query(pg_db, "SELECT SUM(cost_usd), SUM(cost_pusd) FROM fluxgate_events")
        exact = sum((e.cost_usd or Decimal(0) for e in expected.values()), Decimal(0))
        assert total_usd == exact
        assert total_pusd == exact * 10**12
