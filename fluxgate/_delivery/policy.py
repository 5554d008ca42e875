"""How a worker judges a sink's failure, and when it leaves a sink alone.

Three kinds of failure, told apart by what ``write`` raised:

- **transient** (``TransientSinkError``, or any exception not named below):
  retried with backoff; the batch stays queued until the sink takes it.
- **refused** (``SinkError``): the sink will never take this batch; it is
  dropped (reason ``rejected``).
- **unwritable** (``TypeError``, ``ValueError``, ``OverflowError``,
  ``RecursionError``): an event's *data* cannot be written, which says
  nothing about the sink's health. Never retried, never held against the
  circuit: the worker writes the batch in halves until the events that fail
  alone are found, and drops only those (reason ``unserializable``).

The circuit breaker opens after ``breaker_failures`` failed rounds of
retries in a row, for a cool-down (the ``Retry-After`` a sink asked for, as
given, or ``breaker_cooldown_s`` doubling with each failed probe), then lets
one probe through.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import attrs

from .._errors import ConfigurationError, FluxgateError, SinkError, TransientSinkError

__all__ = ["Breaker", "Failure", "RetryPolicy", "classify", "is_transient"]

_UNWRITABLE = (TypeError, ValueError, OverflowError, RecursionError)


class Failure(enum.Enum):
    """What a failed ``write`` means for its batch."""

    TRANSIENT = "transient"
    REFUSED = "refused"
    UNWRITABLE = "unwritable"


def classify(exc: BaseException) -> Failure:
    """The kind of failure ``exc`` is (see the module's docstring)."""
    if isinstance(exc, TransientSinkError):
        return Failure.TRANSIENT
    if isinstance(exc, SinkError):
        return Failure.REFUSED
    if isinstance(exc, _UNWRITABLE) and not isinstance(exc, FluxgateError):
        return Failure.UNWRITABLE
    return Failure.TRANSIENT


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth another attempt."""
    return isinstance(exc, Exception) and classify(exc) is Failure.TRANSIENT


def _at_least(minimum: float) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
            msg = f"RetryPolicy '{attribute.name}' must be a number >= {minimum} (got {value!r})."
            raise ConfigurationError(msg)

    return check


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How hard the flusher tries one batch on one sink, and when it pauses a sink.

    A batch is never dropped for failing: after a round of ``max_attempts``
    it stays at the head of the sink's queue, and after ``breaker_failures``
    such rounds the sink is left alone for a cool-down, then probed again.

    Args:
        max_attempts: Attempts per round, the first included.
        max_delay_s: Time budget per round; a ``Retry-After`` that does not
            fit in it ends the round and pauses the sink for that long.
        backoff_multiplier_s: Scale of the exponential backoff (full jitter).
        backoff_max_s: Cap of one backoff pause.
        breaker_failures: Failed rounds in a row that open the circuit.
        breaker_cooldown_s: How long the first opening lasts; each failed
            probe doubles it. A ``Retry-After`` replaces it, as given.
        breaker_max_cooldown_s: Cap of the cool-down, ``Retry-After`` included.

    >>> RetryPolicy(max_attempts=3, backoff_max_s=1.0).max_attempts
    3
    """

    max_attempts: int = attrs.field(default=5, validator=_at_least(1))
    max_delay_s: float = attrs.field(default=30.0, validator=_at_least(0))
    backoff_multiplier_s: float = attrs.field(default=0.5, validator=_at_least(0))
    backoff_max_s: float = attrs.field(default=10.0, validator=_at_least(0))
    breaker_failures: int = attrs.field(default=3, validator=_at_least(1))
    breaker_cooldown_s: float = attrs.field(default=5.0, validator=_at_least(0))
    breaker_max_cooldown_s: float = attrs.field(default=300.0, validator=_at_least(0))


class Breaker:
    """Closed, open until ``open_until``, then one probe (half open)."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._failures = 0
        self._cooldown_s = policy.breaker_cooldown_s
        self.open_until: float | None = None

    def mode(self, now: float) -> str:
        if self.open_until is None:
            return "closed"
        return "half_open" if now >= self.open_until else "open"

    @property
    def failing(self) -> bool:
        """Whether the last round of writes failed (and none has succeeded since)."""
        return self._failures > 0

    def wait_s(self, now: float) -> float:
        """Seconds until a batch may be tried (0 when closed or half open)."""
        until = self.open_until
        return 0.0 if until is None else max(0.0, until - now)

    def succeeded(self) -> bool:
        """Close; True if the circuit was open."""
        was_open = self.open_until is not None
        self._failures = 0
        self._cooldown_s = self._policy.breaker_cooldown_s
        self.open_until = None
        return was_open

    def failed(self, now: float, asked_s: float | None) -> float | None:
        """Count a failed round; the cool-down if the circuit (re)opens."""
        self._failures += 1
        cap = self._policy.breaker_max_cooldown_s
        if asked_s:  # a sink that named a pause gets it at once, as given
            cooldown = min(asked_s, max(cap, 0.0))
        elif self.open_until is not None:  # the probe failed
            self._cooldown_s = min(self._cooldown_s * 2, max(cap, self._policy.breaker_cooldown_s))
            cooldown = self._cooldown_s
        elif self._failures < self._policy.breaker_failures:
            return None
        else:
            cooldown = self._cooldown_s
        self.open_until = now + cooldown
        return cooldown
