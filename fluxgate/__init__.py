"""fluxgate: what every Anthropic API call costs, and who and what it was for.

>>> import fluxgate
>>> from fluxgate import track, track_context
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._errors import BudgetExceeded, ConfigurationError, FluxgateError, SinkError, TransientSinkError
from ._version import __version__

if TYPE_CHECKING:
    from ._budget import Budget
    from ._context import current_context
    from ._delivery import RetryPolicy
    from ._fluxgate import FluxGate
    from ._instrument import instrument
    from ._lifecycle import flush, flush_after, init, shutdown, uninstrument
    from ._models import (
        AiEventUser,
        ContextFrame,
        Cost,
        CostEvent,
        CostTrackingResponse,
        Status,
        Usage,
        tracking_response,
    )
    from ._pricing import PriceTable
    from ._track import bind_context, track, track_context

# Each name loads its module on first use (PEP 562), so `import fluxgate` is
# nearly free: a library that depends on fluxgate, or a program that imports it
# and tracks nothing on some path, pays nothing for it. The models (attrs and the
# classes it makes, most of what the quickstart's names load) come with the first
# of `track`, `track_context` or a model; wrapt, tenacity, sinks, budgets and
# price data not before `init()`.
_LAZY = {
    "AiEventUser": "._models",
    "Budget": "._budget",
    "ContextFrame": "._models",
    "Cost": "._models",
    "CostEvent": "._models",
    "CostTrackingResponse": "._models",
    "FluxGate": "._fluxgate",
    "PriceTable": "._pricing",
    "RetryPolicy": "._delivery",
    "Status": "._models",
    "Usage": "._models",
    "bind_context": "._track",
    "current_context": "._context",
    "flush": "._lifecycle",
    "flush_after": "._lifecycle",
    "init": "._lifecycle",
    "instrument": "._instrument",
    "shutdown": "._lifecycle",
    "track": "._track",
    "track_context": "._track",
    "tracking_response": "._models",
    "uninstrument": "._lifecycle",
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
    "tracking_response",
    "uninstrument",
]
