"""Exceptions factored out to avoid import loops.

The hierarchy::

    FluxgateError
    ├── ConfigurationError       also ValueError; raised at once by init(), sinks and scopes
    ├── BudgetExceeded           a call was not sent: it could cross a spending limit
    └── SinkError                permanent: the batch is dropped, logged and counted
        └── TransientSinkError   retried by the flusher with backoff
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["BudgetExceeded", "ConfigurationError", "FluxgateError", "SinkError", "TransientSinkError"]


class FluxgateError(Exception):
    """Base class of every exception fluxgate defines."""


class ConfigurationError(FluxgateError, ValueError):
    """A setting is wrong; the message names it and says what to change."""


class SinkError(FluxgateError):
    """A sink refused a batch for good: retrying would not help."""


class TransientSinkError(SinkError):
    """A sink failed in a way that may pass (network, 5xx, locked database).

    Args:
        retry_after_s: How long the sink asked us to wait, if it said so.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BudgetExceeded(FluxgateError):  # noqa: N818 - the name the npm package and users already know
    """A call was not sent because it could cross a spending limit.

    An ordinary ``Exception``, so web frameworks can map it to a response
    (FastAPI/Starlette: ``app.add_exception_handler(BudgetExceeded, ...)``
    returning 429). A blanket ``except Exception`` that retries cannot
    overspend: a blocked call is only ever retried into another block, and
    no request reaches the API. Catch it by name where you mean to handle it::

        try:
            run_agent()
        except fluxgate.BudgetExceeded as stop:
            notify(stop.budget, stop.spent_usd)

    .. versionchanged:: 0.2 Derives from ``Exception`` (was ``BaseException``).

    Attributes:
        budget: The name of the budget that refused the call.
        limit_usd, spent_usd, needed_usd: The limit, what was spent or reserved
            in the window, and the call's worst-case cost (None when unknown).
        fluxgate_cost_tracking_response: The BLOCKED event's summary.
    """

    def __init__(
        self,
        message: str,
        *,
        budget: str,
        limit_usd: Decimal | None,
        spent_usd: Decimal | None,
        needed_usd: Decimal | None,
    ) -> None:
        super().__init__(message)
        self.budget = budget
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.needed_usd = needed_usd
