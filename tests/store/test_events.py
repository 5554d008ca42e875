"""The events table: rows read straight from an event's fields, and values made storable."""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxgate import AiEventUser, CostEvent, Status
from fluxgate._errors import TransientSinkError
from fluxgate._models import ContextFrame, Usage, UsageFacts
from fluxgate._recording import PendingEvent
from fluxgate._recording.event import EventSummary
from fluxgate._store import event_from_row
from fluxgate._store import events as store_events
from fluxgate._store.events import COLUMNS
from fluxgate.sinks import SQLiteSink

from ..pricing.test_bill import ID_FORMS, usages
from ..sinks.conftest import make_event, make_pending

SURROGATE = json.loads('"eve\\ud800"')


def rows(path: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM events ORDER BY created_at").fetchall()
    finally:
        conn.close()


def named(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row as the insert names its values: lean (no sparse column) or full."""
    assert len(row) in (len(store_events._LEAN_ORDER), len(store_events._INSERT_ORDER))
    return dict(zip(store_events._INSERT_ORDER, row))  # noqa: B905 - a lean row ends before the sparse columns


def stored(path: Path, batch: Sequence[CostEvent | PendingEvent]) -> list[sqlite3.Row]:
    sink = SQLiteSink(path)
    sink.write(batch)
    sink.close()
    return rows(path)


class TestRows:
    def test_the_fast_path_names_every_column(self) -> None:
        """The facts-to-row path covers every column of the table, in order (else it would be switched off)."""
        assert store_events._FAST_PENDING

    def test_pending_event_stores_what_its_event_would(self, tmp_path: Path) -> None:
        """A call's facts stored directly read back as the event materialize() builds."""
        context = ContextFrame.build(
            feature="f", user=AiEventUser("u1", name="Ada", monthly_revenue=49.5), step="s", metadata={"k": [1]}
        )
        usage = Usage(input_tokens=1200, output_tokens=300, cache_read_input_tokens=800, service_tier="standard")
        pending = make_pending(context=context, usage=usage, first_token_ms=40.0, stream_ms=700.0, streamed=True)
        [row] = stored(tmp_path / "a.db", [pending])
        assert event_from_row(row) == pending.materialize()
        assert row["cost_pusd"] == int(pending.materialize().cost_usd.scaleb(12))  # type: ignore[union-attr]

    @settings(max_examples=300, deadline=None)
    @given(
        model=st.sampled_from([*ID_FORMS, "claude-unknown-9"]),
        usage=usages(),
        batch_id=st.none() | st.just("msgbatch_1"),
        estimated=st.booleans(),
    )
    def test_pending_row_is_the_events_row(
        self, model: str, usage: Usage, batch_id: str | None, estimated: bool
    ) -> None:
        """A call's facts give the row its CostEvent gives, cost text and pico-dollars included, for any usage.

        The facts' row writes the bill's integer figures as text; the event's
        holds the Decimal figures: the two must be the same to the digit.
        """
        facts: dict[str, Any] = {
            "model": model,
            "batch_id": batch_id,
            "estimated": estimated,
            "tracking_id": "a" * 32,
            "created_at": 1,
        }
        pending = make_pending(usage=usage, **facts)
        sink = SQLiteSink(":memory:")
        assert sink._row(pending) == sink._row(pending.materialize())
        # As the flusher reads the SDK's usage: into UsageFacts, which plain_text prices on a short path.
        read = make_pending(usage=UsageFacts(**attrs.asdict(usage, recurse=False)), **facts)
        assert sink._row(read) == sink._row(pending)

    @pytest.mark.parametrize("read_first", [False, True])
    def test_the_usual_call_is_written_from_its_counts(self, read_first: bool) -> None:
        """Whether or not the user read the cost first, the row is the same; unread, the flusher keeps no figure."""
        usage = Usage(input_tokens=1200, output_tokens=300, cache_read_input_tokens=800, service_tier="standard")
        pending = make_pending(usage=usage, tracking_id="a" * 32, created_at=1)
        if read_first:
            assert EventSummary(pending).cost == pytest.approx(0.00834)
        row = named(SQLiteSink(":memory:")._row(pending))
        assert (row["cost_usd"], row["cost_pusd"], row["cost_status"]) == ("0.00834", 8_340_000_000, "priced")
        assert json.loads(row["cost_breakdown"]) == {"input": "0.0036", "cache_read": "0.00024", "output": "0.0045"}
        assert (pending._exact is not None) is read_first  # nothing priced twice, nothing kept for nothing

    @settings(max_examples=25, deadline=None)
    @given(kinds=st.lists(st.sampled_from(["lean", "error", "thinking", "cost_event"]), min_size=1, max_size=300))
    def test_a_batch_of_any_rows_stores_each_events_own_fields(self, kinds: list[str]) -> None:
        """Lean rows beside full ones, calls' facts beside events, in any order and number (one statement
        or many): each row reads back as its own event."""
        batch: list[CostEvent | PendingEvent] = []
        for i, kind in enumerate(kinds):
            facts: dict[str, Any] = {"tracking_id": f"{i:032x}", "created_at": i}
            if kind == "error":
                facts |= {"status": Status.ERROR, "error_type": "overloaded_error", "error_message": "busy"}
            usage = Usage(input_tokens=10 + i, output_tokens=5, reasoning_tokens=3 if kind == "thinking" else None)
            pending = make_pending(usage=usage, **facts)
            batch.append(pending.materialize() if kind == "cost_event" else pending)
        sink = SQLiteSink(":memory:")
        sink.write(batch)
        conn = sink._connect()
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM events ORDER BY created_at").fetchall()
        expected = [item if isinstance(item, CostEvent) else item.materialize() for item in batch]
        assert [event_from_row(row) for row in rows] == expected

    def test_calls_of_several_scopes_keep_their_own_fields(self, tmp_path: Path) -> None:
        """A scope's columns are made once per scope: calls of interleaved scopes each store their own."""
        scopes = [
            ContextFrame.build(feature="a", user=AiEventUser("u1"), metadata={"k": 1}),
            ContextFrame.build(step="s", session_id="sess", conversation_id="c", service_tier="standard"),
            ContextFrame(),
        ]
        batch = [make_pending(context=scopes[i % 3], created_at=i) for i in range(9)]
        got = [
            (row["feature"], row["user_id"], row["user"], row["step"], row["session_id"], row["metadata"])
            for row in stored(tmp_path / "a.db", batch)
        ]
        assert (
            got
            == [
                ("a", "u1", '{"id":"u1","name":null,"email":null,"monthly_revenue":null}', None, None, '{"k":1}'),
                (None, None, None, "s", "sess", None),
                (None, None, None, None, None, None),
            ]
            * 3
        )

    def test_unpriced_pending_event(self, tmp_path: Path) -> None:
        """A call to an unknown model stores NULL cost and pico-dollars, never 0."""
        pending = make_pending(model="claude-unknown-9")
        [row] = stored(tmp_path / "a.db", [pending])
        assert (row["cost_usd"], row["cost_pusd"], row["cost_status"]) == (None, None, "unpriced_model")

    @settings(max_examples=40, deadline=None)
    @given(
        tokens=st.integers(min_value=0, max_value=10**12),
        cost=st.none() | st.decimals(min_value=0, max_value=10**6, allow_nan=False, places=12),
        feature=st.none() | st.text(min_size=1).filter(str.strip),
        metadata=st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    )
    def test_row_matches_to_dict(
        self, tokens: int, cost: Decimal | None, feature: str | None, metadata: dict[str, object] | None
    ) -> None:
        """The row built from attribute reads holds what CostEvent.to_dict() says, column by column."""
        event = make_event(input_tokens=tokens, cost_usd=cost, feature=feature, metadata=metadata)
        sink = SQLiteSink(":memory:")
        # as stored: the row holds NaN where a value is missing, which SQLite stores as NULL
        values = (None if isinstance(value, float) and math.isnan(value) else value for value in sink._row(event))
        row = named(tuple(values))
        expected = event.to_dict()
        for name, value in expected.items():
            got = row.get(name)  # a lean row leaves the sparse columns (all empty) out
            if name in ("cost_breakdown", "user", "metadata"):
                got = None if got is None else json.loads(got)
            assert got == value, name


def read_back(sink: SQLiteSink) -> list[CostEvent]:
    conn = sqlite3.connect(sink.path)
    conn.row_factory = sqlite3.Row
    try:
        return [event_from_row(row) for row in conn.execute("SELECT * FROM events ORDER BY created_at")]
    finally:
        conn.close()


def scope_inserts(statements: list[str]) -> int:
    return sum(text.startswith("INSERT OR REPLACE INTO temp.fluxgate_scopes") for text in statements)


class TestLongScopes:
    """A scope that keeps making calls is written once, and its calls' rows name it."""

    def test_a_long_scope_is_written_once_and_each_call_keeps_its_fields(self, tmp_path: Path) -> None:
        """Sixty calls of one scope over three writes, beside one-call scopes and failed calls: the scope's
        columns are bound once, and every row reads back as its own event."""
        context = ContextFrame.build(feature="f", user=AiEventUser("u1", monthly_revenue=49.0), metadata={"k": 1})
        sink = SQLiteSink(tmp_path / "a.db")
        sink.write([make_pending()])
        statements: list[str] = []
        sink._connect().set_trace_callback(statements.append)
        batches = [
            [
                make_pending(context=context, status=Status.ERROR, error_type="api_error", error_message="boom")
                if i % 7 == 3
                else make_pending(context=context if i % 3 else None)
                for i in range(30 * w, 30 * w + 30)
            ]
            for w in range(3)
        ]
        for batch in batches:
            sink.write(batch)
        sink.close()
        assert scope_inserts(statements) == 1
        assert read_back(sink)[1:] == [item.materialize() for batch in batches for item in batch]

    def test_a_write_keeps_its_calls_order(self, tmp_path: Path) -> None:
        """Calls of a lasting scope, then a new scope's call, in one write: stored in the order they came
        (``fluxgate tail`` shows rows in the order they were written)."""
        lasting = ContextFrame.build(feature="worker")
        sink = SQLiteSink(tmp_path / "a.db")
        sink.write([make_pending(context=lasting, created_at=i) for i in range(10)])
        batch = [make_pending(context=lasting, created_at=100 + i) for i in range(3)]
        batch += [make_pending(context=ContextFrame.build(feature="request"), created_at=50)]
        batch += [make_pending(context=lasting, created_at=200, status=Status.ERROR, error_type="api_error")]
        sink.write(batch)
        sink.close()
        conn = sqlite3.connect(sink.path)
        written = [row[0] for row in conn.execute("SELECT tracking_id FROM events ORDER BY rowid")][10:]
        conn.close()
        assert written == [call.tracking_id for call in batch]

    def test_interleaved_calls_keep_their_order_and_are_written_inline(self, tmp_path: Path) -> None:
        """A worker's calls among requests' in one write: stored in order, and written as without keys
        (each row its scope's columns) for the next writes too, then keyed again."""
        worker = ContextFrame.build(feature="worker", user="w")
        sink = SQLiteSink(tmp_path / "a.db")
        calls = [make_pending(context=worker) for _ in range(10)]  # keyed from the eighth
        sink.write(calls)
        statements: list[str] = []
        sink._connect().set_trace_callback(statements.append)
        mixed = [make_pending(context=worker if i % 2 else ContextFrame.build(feature=f"r{i}")) for i in range(20)]
        sink.write(mixed)
        keyed_writes = []
        for _ in range(store_events._INLINE_WRITES + 1):
            statements.clear()
            batch = [make_pending(context=worker) for _ in range(4)]
            sink.write(batch)
            calls += batch
            keyed_writes.append(any("CROSS JOIN" in text for text in statements))
        assert keyed_writes == [False] * store_events._INLINE_WRITES + [True]
        sink.close()
        conn = sqlite3.connect(sink.path)
        written = [row[0] for row in conn.execute("SELECT tracking_id FROM events ORDER BY rowid")]
        conn.close()
        assert written == [call.tracking_id for call in calls[:10] + mixed + calls[10:]]
        assert read_back(sink) == sorted((call.materialize() for call in calls + mixed), key=lambda e: e.created_at)

    def test_keys_come_back_after_as_many_writes_whatever_they_hold(self, tmp_path: Path) -> None:
        """The writes that follow interleaved calls are counted once each, even one that needs a second
        pass to make its values storable (text with a lone surrogate)."""
        worker = ContextFrame.build(feature="worker", user="w")
        sink = SQLiteSink(tmp_path / "a.db")
        sink.write([make_pending(context=worker) for _ in range(10)])
        sink.write([make_pending(context=worker if i % 2 else ContextFrame.build(feature=f"r{i}")) for i in range(20)])
        statements: list[str] = []
        sink._connect().set_trace_callback(statements.append)
        keyed_writes = []
        for n in range(store_events._INLINE_WRITES + 1):
            statements.clear()
            odd = make_pending(context=ContextFrame(feature=f"{SURROGATE}{n}"))
            sink.write([odd, *(make_pending(context=worker) for _ in range(4))])
            keyed_writes.append(any("CROSS JOIN" in text for text in statements))
        sink.close()
        assert keyed_writes == [False] * store_events._INLINE_WRITES + [True]
        assert len(read_back(sink)) == 10 + 20 + 5 * (store_events._INLINE_WRITES + 1)

    @settings(max_examples=30, deadline=None)
    @given(
        writes=st.lists(
            st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["lean", "error", "thinking", "cost_event"]))),
            max_size=8,
        )
    )
    def test_writes_of_any_mix_store_each_events_own_fields(self, writes: list[list[tuple[int, str]]]) -> None:
        """Calls of three lasting scopes (one with text SQLite cannot bind as it is) and of one-call scopes,
        lean and full rows, calls' facts and events, over many writes: each row reads back as its own event
        (the unbindable text made storable)."""
        scopes = [
            ContextFrame.build(feature="a", user=AiEventUser("u1", name="Ada"), step="s"),
            ContextFrame.build(session_id="sess", conversation_id="c", service_tier="standard", metadata={"k": [1]}),
            ContextFrame(feature=SURROGATE),
        ]
        sink = SQLiteSink(":memory:")
        expected: list[CostEvent] = []
        for n, write in enumerate(writes):
            batch: list[CostEvent | PendingEvent] = []
            for i, (scope, kind) in enumerate(write):
                facts: dict[str, Any] = {"tracking_id": f"{n:016x}{i:016x}", "created_at": n * 10_000 + i}
                if kind == "error":
                    facts |= {"status": Status.ERROR, "error_type": "overloaded_error", "error_message": "busy"}
                usage = Usage(input_tokens=10 + i, output_tokens=5, reasoning_tokens=3 if kind == "thinking" else None)
                pending = make_pending(usage=usage, context=scopes[scope] if scope < 3 else None, **facts)
                batch.append(pending.materialize() if kind == "cost_event" else pending)
                expected.append(pending.materialize())
            sink.write(batch)
        conn = sink._connect()
        conn.row_factory = sqlite3.Row
        stored_rows = conn.execute("SELECT * FROM events ORDER BY created_at").fetchall()
        sink.close()
        assert [event_from_row(row) for row in stored_rows if row["feature"] != "eve\ufffd"] == [
            event for event in expected if event.feature != SURROGATE
        ]
        assert [row["feature"] for row in stored_rows] == [
            "eve\ufffd" if event.feature == SURROGATE else event.feature for event in expected
        ]

    def test_the_scopes_table_stays_small(self, tmp_path: Path) -> None:
        """Six hundred scopes of twelve calls, a write each (seven calls inline, five keyed): the connection
        keeps at most the cache's worth of scopes, and every call keeps its own fields."""
        sink = SQLiteSink(tmp_path / "a.db")
        scopes = [ContextFrame.build(feature=f"f{n}", user=f"u{n}") for n in range(600)]
        calls = [make_pending(context=context) for context in scopes for _ in range(12)]
        statements: list[str] = []
        sink._connect().set_trace_callback(statements.append)
        for start in range(0, len(calls), 12):
            sink.write(calls[start : start + 12])
        kept = sink._connect().execute("SELECT count(*) FROM temp.fluxgate_scopes").fetchone()[0]
        sink.close()
        assert scope_inserts(statements) == len(scopes)
        assert 0 < kept <= store_events._JSON_CACHE_SIZE
        assert [(event.feature, event.user_id) for event in read_back(sink)] == [
            (call.context.feature, call.context.user.id)  # type: ignore[union-attr]
            for call in calls
        ]

    def test_writes_that_keep_failing_hold_a_bounded_number_of_scopes(self, tmp_path: Path) -> None:
        """While the database stays locked, six hundred lasting scopes come and go (each keyed in a write
        that fails): the store holds at most the cache's worth, and writes again once it is free."""
        sink = SQLiteSink(tmp_path / "a.db", timeout_s=0.001)
        sink.write([make_pending()])
        other = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        for n in range(600):
            context = ContextFrame.build(feature=f"f{n}")
            batch = [make_pending(context=context) for _ in range(9)]
            with pytest.raises(TransientSinkError):
                sink.write(batch)
        held = (len(sink._unsent), len(sink._keyed_columns))
        other.execute("ROLLBACK")
        other.close()
        sink.write(batch)
        sink.close()
        assert max(held) <= store_events._JSON_CACHE_SIZE
        assert read_back(sink)[1:] == [call.materialize() for call in batch]

    def test_a_closed_store_writes_its_scopes_again(self, tmp_path: Path) -> None:
        """After close() (a new connection, without the old one's scopes) a lasting scope's calls are still stored."""
        context = ContextFrame.build(feature="f", user="u1")
        sink = SQLiteSink(tmp_path / "a.db")
        first = [make_pending(context=context) for _ in range(20)]
        sink.write(first)
        sink.close()
        second = [make_pending(context=context) for _ in range(20)]
        sink.write(second)
        sink.close()
        assert read_back(sink) == [call.materialize() for call in first + second]

    @pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
    def test_a_forked_child_writes_a_lasting_scope(self, tmp_path: Path) -> None:
        """A child forked after its parent keyed a scope opens its own connection and still stores that scope."""
        context = ContextFrame.build(feature="f", user="u1")
        sink = SQLiteSink(tmp_path / "a.db")
        parent = [make_pending(context=context) for _ in range(20)]
        child = [make_pending(context=context) for _ in range(20)]
        sink.write(parent[:10])  # the first write opens the connection, the second keys the scope
        sink.write(parent[10:])
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                sink.write(child)
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        sink.close()
        assert read_back(sink) == [call.materialize() for call in parent + child]

    def test_a_failed_write_leaves_its_scopes_to_the_next(self, tmp_path: Path) -> None:
        """A write that fails (the database locked) after a scope was keyed: the retry stores every call."""
        context = ContextFrame.build(feature="f", user="u1")
        sink = SQLiteSink(tmp_path / "a.db", timeout_s=0.05)
        sink.write([make_pending()])
        batch = [make_pending(context=context) for _ in range(20)]
        other = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(TransientSinkError):
            sink.write(batch)
        other.execute("ROLLBACK")
        other.close()
        sink.write(batch)
        sink.close()
        assert read_back(sink)[1:] == [call.materialize() for call in batch]


def typed_rows(sink: SQLiteSink) -> list[tuple[Any, ...]]:
    """Every stored value as SQLite holds it, its type included, in the calls' order."""
    typed = ", ".join(f"typeof({name})" for name in COLUMNS)
    return sink._connect().execute(f"SELECT *, {typed} FROM events ORDER BY created_at").fetchall()


#: Facts that put a call's row in another value of one of ``_SHARED_GROUPS`` (the scope: by its context).
VARIED: dict[str, dict[str, Any]] = {
    "install": {"platform": "bedrock", "aborted": True},
    "kind": {"api": "messages.stream", "streamed": True, "model": "claude-haiku-4-5"},
    "outcome": {"status": Status.MAX_TOKENS, "stop_reason": "max_tokens"},
    "scope": {},
}


class TestSharedValues:
    """A statement of many rows binds the values its rows share once (``_SHARED_GROUPS``): it stores
    what smaller statements do, value for value and type for type."""

    @staticmethod
    def calls(count: int, varied: dict[str, list[int]], lasting: bool) -> list[PendingEvent]:
        """``count`` calls, the same but for the groups ``varied`` names, at the given calls; all of one
        lasting scope (its rows keyed) or each of its own (inline)."""
        lasting_scope = ContextFrame.build(feature="f", user=AiEventUser("u1", name="Ada"), metadata={"k": 1})
        made = []
        for i in range(count):
            facts: dict[str, Any] = {"created_at": i, "tracking_id": f"{i:032x}"}
            for group, at in varied.items():
                if i in at:
                    facts |= VARIED[group]
            other = "scope" in varied and i in varied["scope"]
            if lasting:
                context = ContextFrame.build(feature="other") if other else lasting_scope
            else:
                context = ContextFrame.build(feature="f", user=AiEventUser("u2" if other else "u1"))
            made.append(make_pending(context=context, usage=Usage(input_tokens=100 + i, output_tokens=7), **facts))
        return made

    @staticmethod
    def in_small_writes(batch: Sequence[PendingEvent]) -> list[tuple[Any, ...]]:
        """What writes of fewer rows than a statement that shares values takes store."""
        sink = SQLiteSink(":memory:")
        small = store_events._SHARED_ROWS - 1
        for start in range(0, len(batch), small):
            sink.write(batch[start : start + small])
        return typed_rows(sink)

    @settings(max_examples=40, deadline=None)
    @given(
        count=st.integers(32, 300),
        varied=st.dictionaries(st.sampled_from(sorted(VARIED)), st.lists(st.integers(0, 299), min_size=1, max_size=3)),
        lasting=st.booleans(),
        data=st.data(),
    )
    def test_a_statement_of_many_rows_stores_what_smaller_ones_do(
        self, count: int, varied: dict[str, list[int]], lasting: bool, data: st.DataObject
    ) -> None:
        """Groups that hold one value throughout, and groups that differ in a row or three (the first,
        the last, any), in rows keyed by a lasting scope or inline."""
        varied = {
            group: [data.draw(st.sampled_from([0, count - 1, at % count])) for at in ats]
            for group, ats in varied.items()
        }
        sink = SQLiteSink(":memory:")
        sink.write(self.calls(count, varied, lasting))
        assert typed_rows(sink) == self.in_small_writes(self.calls(count, varied, lasting))

    def test_equal_values_of_other_types_keep_their_own_text(self, tmp_path: Path) -> None:
        """1, 1.0 and True are equal in Python; in a TEXT column they are "1", "1.0" and "1"."""
        with attrs.validators.disabled():  # what ContextFrame accepts today, the store takes anything
            features: list[Any] = [1, *[1.0, True] * 100]
            batch = [make_pending(context=ContextFrame(feature=f), created_at=i) for i, f in enumerate(features)]
        assert [row["feature"] for row in stored(tmp_path / "a.db", batch)] == ["1", *["1.0", "1"] * 100]

    def test_a_busy_store_binds_the_shared_values_once(self) -> None:
        """128 calls of one lasting scope, kind and outcome: each value they share is one parameter."""
        sink = SQLiteSink(":memory:")
        calls = self.calls(16 + 128, {}, lasting=True)
        sink.write(calls[:16])  # the scope keyed from here on
        sink.write(calls[16:])
        [insert] = [text for text in sink._statements.values() if text.count("), (") == 127]
        rows = insert[insert.index("(VALUES (") + len("(VALUES (") : insert.index(")) AS v")].split("), (")
        first = rows[0].split(", ")
        in_every_row = {at for at, parameter in enumerate(first) if all(parameter in row.split(", ") for row in rows)}
        names = [*store_events._INSERT_ORDER[: store_events._KEYED - 1], "scope"]
        grouped = {name for group in store_events._SHARED_GROUPS.values() for name in group} - set(store_events._SCOPE)
        assert {names[at] for at in in_every_row} == grouped | {"scope"}
        assert len(set(", ".join(rows).split(", "))) == len(grouped | {"scope"}) + 128 * (
            len(first) - len(in_every_row)
        )
        assert typed_rows(sink) == self.in_small_writes(calls)


class TestStorable:
    def test_an_unhashable_value_is_stored_as_text_beside_nulls(self, tmp_path: Path) -> None:
        """A value that is neither bindable nor hashable (a list where text belongs) is stored as its text;
        the Nones of every row of the batch are stored as NULL."""
        odd = make_event(feature=["a", "b"])  # type: ignore[arg-type]
        batch = [make_pending(), odd, make_pending()]
        by_id = {row["tracking_id"]: row for row in stored(tmp_path / "a.db", batch)}
        assert by_id[odd.tracking_id]["feature"] == "['a', 'b']"
        assert all(row["batch_id"] is None and row["stream_duration_ms"] is None for row in by_id.values())

    def test_lone_surrogate_is_replaced_and_the_batch_stored(self, tmp_path: Path) -> None:
        """Text with a lone surrogate that got past the edge is stored with U+FFFD, beside the rest of its batch."""
        context = ContextFrame(feature=SURROGATE, step="s", metadata={SURROGATE: SURROGATE})
        event = make_event(user_id=SURROGATE, error_message=SURROGATE)
        batch = [make_pending(), make_pending(context=context), event, make_pending()]
        stored_rows = stored(tmp_path / "a.db", batch)
        assert len(stored_rows) == 4
        by_id = {row["tracking_id"]: row for row in stored_rows}
        from_context = by_id[batch[1].tracking_id]
        assert from_context["feature"] == "eve\ufffd"
        assert json.loads(from_context["metadata"]) == {"eve\ufffd": "eve\ufffd"}
        assert by_id[event.tracking_id]["user_id"] == by_id[event.tracking_id]["error_message"] == "eve\ufffd"

    def test_a_scope_with_a_lone_surrogate_is_stored(self, tmp_path: Path) -> None:
        """A user id with a lone surrogate, given to a scope, is stored (made storable where it entered)."""
        context = ContextFrame.build(feature="f", user=SURROGATE)
        [row] = stored(tmp_path / "a.db", [make_pending(context=context)])
        assert row["user_id"].startswith("eve")
        assert row["user_id"].encode("utf-8")

    @pytest.mark.parametrize("revenue", [Decimal("49"), Decimal("49.5"), Fraction(99, 2), 49, 49.5])
    def test_revenue_of_any_real_type(self, tmp_path: Path, revenue: object) -> None:
        """A user's revenue given as a Decimal, a Fraction, an int or a float is stored as its number."""
        with attrs.validators.disabled():  # whatever AiEventUser accepts today, the store takes any real
            user = AiEventUser("u1", monthly_revenue=revenue)  # type: ignore[arg-type]
        context = ContextFrame(feature="f", user=user)
        [row] = stored(tmp_path / "a.db", [make_pending(context=context)])
        assert json.loads(row["user"])["monthly_revenue"] == float(revenue)  # type: ignore[arg-type]

    def test_cost_too_large_for_pico_dollars(self, tmp_path: Path) -> None:
        """A cost past 64-bit pico-dollars keeps its exact text and stores NULL pico-dollars."""
        pending = make_pending(usage=Usage(input_tokens=10**16, output_tokens=10**16))
        event = make_event(cost_usd=Decimal("12345678901234567890.123456789012"))
        first, second = stored(tmp_path / "a.db", [pending, event])
        assert first["cost_pusd"] is None
        assert Decimal(first["cost_usd"]) == pending.materialize().cost_usd
        assert (second["cost_usd"], second["cost_pusd"]) == ("12345678901234567890.123456789012", None)

    def test_tokens_past_64_bits(self, tmp_path: Path) -> None:
        """A token count past 64 bits is stored approximately rather than costing the batch."""
        batch = [make_pending(), make_pending(usage=Usage(input_tokens=2**70, output_tokens=1))]
        first, second = stored(tmp_path / "a.db", batch)
        assert first["input_tokens"] == 120
        assert second["input_tokens"] == pytest.approx(2**70)
        assert event_from_row(second).input_tokens == 2**70

    def test_unserialisable_metadata_raises_a_data_error(self, tmp_path: Path) -> None:
        """An event whose metadata JSON cannot hold raises TypeError (the flusher then sets it aside)."""
        sink = SQLiteSink(tmp_path / "a.db")
        with pytest.raises(TypeError):
            sink.write([make_event(), make_event(metadata={"when": object()})])
        sink.close()
        assert not (tmp_path / "a.db").exists() or rows(tmp_path / "a.db") == []

    def test_shared_user_json_is_made_once(self) -> None:
        """The JSON of a scope's user is computed once for all the scope's calls."""
        user = AiEventUser("u1", name="Ada")
        context = ContextFrame(feature="f", user=user)
        sink = SQLiteSink(":memory:")
        first = sink._row(make_pending(context=context))
        second = sink._row(make_pending(context=context))
        user_at = store_events._INSERT_ORDER.index("user")
        assert first[user_at] is second[user_at]


class TestReturningUsers:
    """A web application makes a new ``AiEventUser`` per request; the same users come back."""

    def test_a_returning_user_is_encoded_once(self) -> None:
        sink = SQLiteSink(":memory:")
        first, second = (
            sink._row(make_pending(context=ContextFrame(feature="f", user=AiEventUser("u1", name="Ada"))))
            for _ in range(2)
        )
        user_at = store_events._INSERT_ORDER.index("user")
        assert first[user_at] is second[user_at]

    def test_users_that_differ_in_one_field_keep_their_own(self, tmp_path: Path) -> None:
        users = [
            AiEventUser("u1", name="Ada", email="ada@example.com", monthly_revenue=49.0),
            AiEventUser("u2", name="Ada", email="ada@example.com", monthly_revenue=49.0),
            AiEventUser("u1", name="Bea", email="ada@example.com", monthly_revenue=49.0),
            AiEventUser("u1", name="Ada", email="bea@example.com", monthly_revenue=49.0),
            AiEventUser("u1", name="Ada", email="ada@example.com", monthly_revenue=50.0),
            AiEventUser("u1", name="Ada", email="ada@example.com"),
            AiEventUser("u1", email="ada@example.com", monthly_revenue=49.0),
        ]
        sink = SQLiteSink(tmp_path / "a.db")
        for round_ in range(2):  # the second round finds every user kept
            sink.write(
                [
                    make_pending(context=ContextFrame(feature="f", user=attrs.evolve(user)), created_at=10 * i + round_)
                    for i, user in enumerate(users)
                ]
            )
        sink.close()
        stored_users = [event.user for event in read_back(sink)]
        assert stored_users == [user for user in users for _ in range(2)]

    def test_equal_fields_of_other_types_keep_their_own(self, tmp_path: Path) -> None:
        with attrs.validators.disabled():  # what AiEventUser accepts today, the store takes anything
            users = [AiEventUser("u1", name=1), AiEventUser("u1", name=True), AiEventUser("u1", name=1.0)]  # type: ignore[arg-type]
        batch = [
            make_pending(context=ContextFrame(feature="f", user=user), created_at=i) for i, user in enumerate(users)
        ]
        assert [json.loads(row["user"])["name"] for row in stored(tmp_path / "a.db", batch)] == [1, True, 1.0]
        assert [type(json.loads(row["user"])["name"]) for row in rows(tmp_path / "a.db")] == [int, bool, float]

    def test_a_user_that_cannot_be_a_key_is_stored(self, tmp_path: Path) -> None:
        with attrs.validators.disabled():
            user = AiEventUser("u1", name=["not", "text"])  # type: ignore[arg-type]
        [row] = stored(tmp_path / "a.db", [make_pending(context=ContextFrame(feature="f", user=user))])
        assert json.loads(row["user"])["name"] == ["not", "text"]

    def test_the_users_kept_are_bounded(self) -> None:
        sink = SQLiteSink(":memory:")
        for i in range(store_events._USERS_KEPT + 10):
            sink._row(make_pending(context=ContextFrame(feature="f", user=AiEventUser(f"u{i}"))))
        assert 0 < len(sink._users) <= store_events._USERS_KEPT


class TestSubclass:
    def test_a_subclass_that_overrides_write_gets_cost_events(self) -> None:
        """Only SQLiteSink's own write takes a call's facts; a subclass's write is given CostEvents."""

        class Audited(SQLiteSink):
            def write(self, batch: Sequence[CostEvent | PendingEvent]) -> None:
                super().write(batch)

        class Plain(SQLiteSink):
            pass

        assert SQLiteSink.accepts_pending_events
        assert Plain.accepts_pending_events
        assert not Audited.accepts_pending_events

    def test_status_is_stored_as_text(self, tmp_path: Path) -> None:
        """The status enum is stored as its name."""
        [row] = stored(tmp_path / "a.db", [make_event(status=Status.MAX_TOKENS)])
        assert row["status"] == "MAX_TOKENS"
