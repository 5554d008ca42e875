"""Scopes: merge rules, validation, isolation across threads and tasks."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from fluxgate import AiEventUser, bind_context, current_context, track, track_context


class TestMerge:
    def test_empty_outside_any_scope(self) -> None:
        """Outside every scope all fields are None."""
        ctx = current_context()
        assert (ctx.feature, ctx.user, ctx.step, ctx.metadata) == (None, None, None, None)

    def test_inner_wins_field_by_field(self) -> None:
        """An inner scope overrides only the fields it sets."""
        with track_context(feature="chat", user="u1", step="outer", session_id="s1"):
            with track_context(step="inner", conversation_id="c1"):
                ctx = current_context()
                assert ctx.feature == "chat"
                assert ctx.user_id == "u1"
                assert ctx.step == "inner"
                assert ctx.session_id == "s1"
                assert ctx.conversation_id == "c1"
            assert current_context().step == "outer"
            assert current_context().conversation_id is None
        assert current_context().feature is None

    def test_metadata_merges_key_by_key(self) -> None:
        """metadata from nested scopes merges; the inner value of a shared key wins."""
        with track_context(metadata={"a": 1, "b": 1}), track_context(metadata={"b": 2, "c": 3}):
            assert dict(current_context().metadata or {}) == {"a": 1, "b": 2, "c": 3}

    def test_view_is_immutable(self) -> None:
        """current_context() cannot be changed by its reader."""
        with track_context(feature="x", metadata={"k": "v"}):
            ctx = current_context()
            with pytest.raises(AttributeError):
                ctx.feature = "y"  # type: ignore[misc]
            with pytest.raises(TypeError):
                ctx.metadata["k"] = "w"  # type: ignore[index]

    def test_metadata_copied_at_scope_creation(self) -> None:
        """Mutating the dict passed in later does not change the scope."""
        meta = {"k": "v"}
        scope = track_context(metadata=meta)
        meta["k"] = "changed"
        with scope:
            assert current_context().metadata == {"k": "v"}

    def test_user_object_and_string(self) -> None:
        """A string user becomes an AiEventUser with that id; an object is kept whole."""
        with track_context(user="u9"):
            assert current_context().user == AiEventUser("u9")
        rich = AiEventUser("u1", name="Ada", email="ada@example.com", monthly_revenue=49.0)
        with track_context(user=rich):
            assert current_context().user is rich

    def test_same_scope_object_reused(self) -> None:
        """One track_context instance can be entered again, and nested in itself."""
        scope = track_context(step="s")
        with scope, track_context(step="t"), scope:
            assert current_context().step == "s"
        assert current_context().step is None


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "error", "field"),
        [
            ({"feature": ""}, ValueError, "feature"),
            ({"feature": "  "}, ValueError, "feature"),
            ({"feature": 3}, TypeError, "feature"),
            ({"step": b"x"}, TypeError, "step"),
            ({"session_id": ""}, ValueError, "session_id"),
            ({"conversation_id": 1.5}, TypeError, "conversation_id"),
            ({"user": ""}, ValueError, "user"),
            ({"user": 4.2}, TypeError, "user"),
            ({"service_tier": "gold"}, ValueError, "service_tier"),
            ({"service_tier": 1}, TypeError, "service_tier"),
            ({"metadata": ["a"]}, TypeError, "metadata"),
            ({"metadata": {"when": object()}}, ValueError, "metadata"),
            ({"metadata": {"x": float("nan")}}, ValueError, "metadata"),
            ({"metadata": {1: "a"}}, TypeError, "metadata"),
            ({"budget_usd": -1}, ValueError, "budget_usd"),
            ({"budget_usd": "lots"}, ValueError, "budget_usd"),
            ({"budget_usd": True}, TypeError, "budget_usd"),
        ],
    )
    def test_bad_values_raise_at_creation(self, kwargs: dict[str, object], error: type[Exception], field: str) -> None:
        """Bad values raise when the scope (or decorator) is created, naming the field."""
        with pytest.raises(error, match=field):
            track_context(**kwargs)  # type: ignore[arg-type]
        with pytest.raises(error, match=field):
            track(**kwargs)  # type: ignore[arg-type]

    @pytest.mark.parametrize("tier", ["default", "standard", "batch", "flex", "priority"])
    def test_every_service_tier_accepted(self, tier: str) -> None:
        """Each documented service tier is accepted."""
        with track_context(service_tier=tier):
            assert current_context().service_tier == tier

    def test_user_fields_validated(self) -> None:
        """AiEventUser rejects an empty id and negative or non-numeric revenue."""
        with pytest.raises(ValueError, match="id"):
            AiEventUser("")
        with pytest.raises(ValueError, match="monthly_revenue"):
            AiEventUser("u", monthly_revenue=-1)
        with pytest.raises(TypeError, match="monthly_revenue"):
            AiEventUser("u", monthly_revenue="49")  # type: ignore[arg-type]

    def test_positional_fields_rejected(self) -> None:
        """Fields are keyword-only."""
        with pytest.raises(TypeError):
            track_context("feature")  # type: ignore[misc]


class TestIsolation:
    def test_threads_do_not_share_scopes(self) -> None:
        """Twenty threads, each in its own scope, only ever see their own feature."""
        barrier = threading.Barrier(20)
        seen: dict[int, set[str | None]] = {}

        def work(i: int) -> None:
            with track_context(feature=f"f{i}"):
                barrier.wait()
                seen[i] = {current_context().feature for _ in range(200)}

        threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == {i: {f"f{i}"} for i in range(20)}

    def test_new_thread_starts_empty(self) -> None:
        """A plain thread does not inherit the scope of its creator."""
        out: list[str | None] = []
        with track_context(feature="parent"):
            t = threading.Thread(target=lambda: out.append(current_context().feature))
            t.start()
            t.join()
        assert out == [None]

    def test_tasks_inherit_and_stay_isolated(self) -> None:
        """Two hundred tasks inherit their creator's scope and never see each other's."""

        async def worker(i: int) -> tuple[str | None, str | None]:
            async with track_context(step=f"s{i}"):
                await asyncio.sleep(0)
                return current_context().feature, current_context().step

        async def main() -> list[tuple[str | None, str | None]]:
            async with track_context(feature="batch-job"):
                return await asyncio.gather(*(worker(i) for i in range(200)))

        results = asyncio.run(main())
        assert results == [("batch-job", f"s{i}") for i in range(200)]

    def test_bind_context_carries_scope_into_executor(self) -> None:
        """bind_context carries the caller's scope into a thread pool, concurrently."""
        with track_context(feature="export", user="u1"), ThreadPoolExecutor(4) as pool:
            fn = bind_context(lambda: (current_context().feature, current_context().user_id))
            results = [f.result() for f in [pool.submit(fn) for _ in range(16)]]
        assert results == [("export", "u1")] * 16

    def test_without_bind_context_executor_sees_nothing(self) -> None:
        """Executors do not copy ContextVars by themselves (why bind_context exists)."""
        with track_context(feature="export"), ThreadPoolExecutor(1) as pool:
            assert pool.submit(lambda: current_context().feature).result() is None
