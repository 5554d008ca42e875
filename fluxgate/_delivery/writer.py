"""Writing batches to one sink: retries with tenacity, and the search for events it cannot write.

A round of attempts retries transient failures with exponential backoff and
full jitter; a ``Retry-After`` the sink asked for is honoured, and one that
does not fit in the round's budget ends the round (the breaker then waits it
out). A batch that fails because of an event's data is written in halves,
and the halves of the half that fails, until the events that fail alone are
found: one bad event in a batch of ``n`` costs about ``2 log2(n)`` writes.

tenacity is imported here and nowhere else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_random_exponential,
)

from .policy import Failure, RetryPolicy, classify, is_transient

__all__ = ["BatchWriter", "Outcome"]


@attrs.frozen
class Outcome:
    """How a part of a batch settled: taken (``failure`` None), refused or unwritable.

    A ``TRANSIENT`` outcome ends a write; its part is everything not settled yet.
    """

    part: list[Any]
    failure: Failure | None = None
    error: Exception | None = None


def _asked_s(state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome is not None else None
    asked = getattr(exc, "retry_after_s", None)
    if isinstance(asked, (int, float)) and asked > 0:
        return float(asked)
    return None


class BatchWriter:
    """Writes batches to one sink.

    Args:
        sink: Where batches go.
        policy: Attempts per round and backoff.
        sleep: Replaces the pause between attempts (tests); by default the
            pause ends early when ``stopped`` is set.
        stopped: Set when nobody waits for this sink any more: the round ends.
        retried: Called before each retry, to count it.
    """

    def __init__(
        self,
        sink: Any,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] | None,
        stopped: threading.Event,
        retried: Callable[[], None],
    ) -> None:
        self._sink = sink
        self._policy = policy
        self._sleep = sleep
        self._stopped = stopped
        self._retried = retried
        self._backoff = wait_random_exponential(multiplier=policy.backoff_multiplier_s, max=policy.backoff_max_s)

    def write(self, events: list[Any], *, probe: bool) -> Iterator[Outcome]:
        """Write ``events``, yielding each part, in order, as it settles.

        ``probe`` allows one attempt per write until the sink takes a part.
        A transient failure ends the write: its outcome holds everything not
        settled yet, to be tried again later.
        """
        parts = [events]  # a stack: the last part is written next
        while parts:
            part = parts.pop()
            error = self.attempt(part, probe=probe)
            failure = None if error is None else classify(error)
            if failure is Failure.UNWRITABLE and len(part) > 1:
                middle = len(part) // 2
                parts += [part[middle:], part[:middle]]
                continue
            if failure is Failure.TRANSIENT:
                yield Outcome(part + [event for later in reversed(parts) for event in later], failure, error)
                return
            if failure is None:
                probe = False  # the sink answered: its circuit is closed
            yield Outcome(part, failure, error)

    def attempt(self, batch: Sequence[Any], *, probe: bool) -> Exception | None:
        """One round of attempts (one attempt for a probe); the final error, if any."""
        policy = self._policy
        limits = stop_any(stop_after_attempt(1 if probe else policy.max_attempts), stop_after_delay(policy.max_delay_s))
        retrying = Retrying(
            stop=lambda state: limits(state) or self._stop_early(state),
            wait=self._wait_s,
            retry=retry_if_exception(is_transient),
            before_sleep=lambda _state: self._retried(),
            sleep=self._pause,
            reraise=True,
        )
        try:
            retrying(self._sink.write, batch)
        except Exception as exc:  # noqa: BLE001 - a failing sink must not stop the thread
            return exc
        return None

    def _stop_early(self, state: RetryCallState) -> bool:
        if self._stopped.is_set():
            return True
        asked = _asked_s(state)
        # A Retry-After beyond the budget ends the round; the breaker then waits it out.
        return asked is not None and (state.seconds_since_start or 0.0) + asked > self._policy.max_delay_s

    def _wait_s(self, state: RetryCallState) -> float:
        backoff = float(self._backoff(state))
        asked = _asked_s(state)
        return backoff if asked is None else max(backoff, asked)

    def _pause(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._stopped.wait(seconds)
