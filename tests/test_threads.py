"""init(propagate_context=True): thread pools and run_in_executor keep the caller's scope."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

import fluxgate
from fluxgate import current_context, track, track_context
from fluxgate.testing import FakeAnthropicAPI, MemorySink

from .helpers import HELLO


def classify(client: object, doc: str) -> str | None:
    client.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=HELLO)  # type: ignore[attr-defined]
    return current_context().feature


class TestThreadPools:
    def test_map_keeps_the_feature(self, api: FakeAnthropicAPI) -> None:
        """ThreadPoolExecutor.map inside @track records every call with the feature."""
        sink = MemorySink()
        fluxgate.init(sinks=[sink])
        client = api.client()

        @track("classify")
        def run(docs: list[str]) -> list[str | None]:
            with ThreadPoolExecutor(max_workers=4) as pool:
                return list(pool.map(lambda d: classify(client, d), docs))

        assert run([f"doc {i}" for i in range(12)]) == ["classify"] * 12
        assert fluxgate.flush(timeout_s=10)
        assert [e.feature for e in sink.events] == ["classify"] * 12

    def test_submit_keeps_nested_scopes(self) -> None:
        """submit carries the whole merged scope, inner fields included."""
        fluxgate.init(sinks=[MemorySink()])
        with track_context(feature="export", user="u1"), track_context(step="render"), ThreadPoolExecutor(2) as pool:
            seen = pool.submit(current_context).result()
        assert (seen.feature, seen.user_id, seen.step) == ("export", "u1", "render")

    def test_run_in_executor_keeps_the_scope(self) -> None:
        """loop.run_in_executor with the default executor runs under the caller's scope."""
        fluxgate.init(sinks=[MemorySink()])

        async def main() -> str | None:
            async with track_context(feature="async-export"):
                loop = asyncio.get_running_loop()
                return (await loop.run_in_executor(None, current_context)).feature

        assert asyncio.run(main()) == "async-export"

    def test_scope_does_not_leak_into_other_work(self) -> None:
        """Work submitted outside any scope runs with none, even on a thread that ran scoped work."""
        fluxgate.init(sinks=[MemorySink()])
        with ThreadPoolExecutor(max_workers=1) as pool:
            with track_context(feature="first"):
                assert pool.submit(lambda: current_context().feature).result() == "first"
            assert pool.submit(lambda: current_context().feature).result() is None

    def test_off_when_asked(self) -> None:
        """propagate_context=False leaves thread pools as Python made them."""
        fluxgate.init(sinks=[MemorySink()], propagate_context=False)
        with track_context(feature="kept-home"), ThreadPoolExecutor(max_workers=1) as pool:
            assert pool.submit(lambda: current_context().feature).result() is None

    @pytest.mark.parametrize("undo", ["uninstrument", "shutdown"])
    def test_undone(self, undo: str) -> None:
        """uninstrument() and shutdown() put ThreadPoolExecutor.submit back."""
        original = ThreadPoolExecutor.__dict__["submit"]
        fluxgate.init(sinks=[MemorySink()])
        assert ThreadPoolExecutor.__dict__["submit"] is not original
        getattr(fluxgate, undo)()
        assert ThreadPoolExecutor.__dict__["submit"] is original
