"""The @track decorator on every kind of function."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from fluxgate import current_context, track, track_context


class TestTrack:
    def test_sync_function(self) -> None:
        """A decorated function runs inside the scope, which ends when it returns."""

        @track(feature="summarize")
        def run(x: int) -> tuple[int, str | None]:
            return x, current_context().feature

        assert run(1) == (1, "summarize")
        assert current_context().feature is None

    def test_keeps_name_and_docstring(self) -> None:
        """functools.wraps keeps the function's identity."""

        @track(feature="f")
        def documented() -> None:
            """Doc."""

        assert documented.__name__ == "documented"
        assert documented.__doc__ == "Doc."

    def test_scope_left_on_exception(self) -> None:
        """An exception leaves the scope and propagates unchanged."""
        boom = RuntimeError("boom")

        @track(feature="f")
        def fail() -> None:
            raise boom

        with pytest.raises(RuntimeError) as info:
            fail()
        assert info.value is boom
        assert current_context().feature is None

    def test_async_function(self) -> None:
        """An async def runs its whole body inside the scope, across awaits."""

        @track(feature="async")
        async def run() -> list[str | None]:
            first = current_context().feature
            await asyncio.sleep(0)
            return [first, current_context().feature]

        assert asyncio.run(run()) == ["async", "async"]

    def test_generator_covers_whole_iteration(self) -> None:
        """Each step of a generator runs in the scope; the consumer's context is untouched."""

        @track(step="gen")
        def produce() -> Iterator[str | None]:
            for _ in range(3):
                yield current_context().step

        seen = []
        for item in produce():
            seen.append((item, current_context().step))
        assert seen == [("gen", None)] * 3

    def test_generator_keeps_scope_of_creation(self) -> None:
        """A generator made inside a request scope keeps it when iterated outside it."""

        @track(step="stream")
        def produce() -> Iterator[tuple[str | None, str | None]]:
            yield current_context().user_id, current_context().step

        with track_context(user="u1"):
            gen = produce()
        assert list(gen) == [("u1", "stream")]

    def test_generator_send_throw_close(self) -> None:
        """send, throw and close reach the wrapped generator inside the scope."""
        log: list[object] = []

        @track(feature="g")
        def echo() -> Iterator[int]:
            try:
                value = yield 1
                log.append((value, current_context().feature))
                try:
                    yield 2
                except KeyError:
                    log.append(("thrown", current_context().feature))
                    yield 3
                yield 4
            finally:
                log.append(("closed", current_context().feature))

        gen = echo()
        assert next(gen) == 1
        assert gen.send("hi") == 2
        assert gen.throw(KeyError()) == 3
        gen.close()
        assert log == [("hi", "g"), ("thrown", "g"), ("closed", "g")]

    def test_generator_return_value(self) -> None:
        """A generator's return value reaches ``yield from``."""

        @track(feature="g")
        def inner() -> Iterator[int]:
            yield 1
            return 7

        def outer() -> Iterator[int]:
            result = yield from inner()
            yield result

        assert list(outer()) == [1, 7]

    def test_async_generator(self) -> None:
        """An async generator runs each step in the scope."""

        @track(step="agen")
        async def produce() -> AsyncIterator[str | None]:
            for _ in range(2):
                await asyncio.sleep(0)
                yield current_context().step

        async def main() -> list[tuple[str | None, str | None]]:
            return [(item, current_context().step) async for item in produce()]

        assert asyncio.run(main()) == [("agen", None)] * 2

    def test_nested_decorators_merge(self) -> None:
        """An inner @track(step=...) inherits the outer feature."""

        @track(step="rerank")
        def rerank() -> tuple[str | None, str | None]:
            return current_context().feature, current_context().step

        @track(feature="search")
        def search() -> tuple[str | None, str | None]:
            return rerank()

        assert search() == ("search", "rerank")
