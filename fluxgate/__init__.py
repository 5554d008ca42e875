"""fluxgate: what every Anthropic API call costs, and who and what it was for.

>>> import fluxgate
>>> from fluxgate import track, track_context
"""

from __future__ import annotations

from ._budget import Budget
from ._context import current_context
from ._delivery import RetryPolicy
from ._errors import BudgetExceeded, ConfigurationError, FluxgateError, SinkError, TransientSinkError
from ._fluxgate import FluxGate
from ._instrument import instrument
from ._lifecycle import flush, flush_after, init, shutdown, uninstrument
from ._models import AiEventUser, ContextFrame, Cost, CostEvent, CostTrackingResponse, Status, Usage
from ._pricing import PriceTable
from ._track import bind_context, track, track_context
from ._version import __version__

__all__ = [
    "AiEventUser",
    "Budget",
    "BudgetExceeded",
    "ConfigurationError",
    "ContextFrame",
    "Cost",
    "CostEvent",
    "CostTrackingResponse",
    "FluxGate",
    "FluxgateError",
    "PriceTable",
    "RetryPolicy",
    "SinkError",
    "Status",
    "TransientSinkError",
    "Usage",
    "__version__",
    "bind_context",
    "current_context",
    "flush",
    "flush_after",
    "init",
    "instrument",
    "shutdown",
    "track",
    "track_context",
    "uninstrument",
]
