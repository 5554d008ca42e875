"""Where calls are caught: the only code that imports anthropic or wrapt.

``patches`` holds the table of patched SDK methods with ``instrument()`` and
``uninstrument()``; ``routes`` says which HTTP requests are billable calls
and on which platform; ``streams`` and ``responses`` follow streams, tool
runners and raw responses as the user reads them; ``batches`` keeps a batch
creator's context and prices each result once.
"""

from __future__ import annotations

from .patches import ATTRIBUTE, SUPPORTED_ANTHROPIC, instrument, is_instrumented, uninstrument
from .resources import ResourceScope, ScopedResource

__all__ = [
    "ATTRIBUTE",
    "SUPPORTED_ANTHROPIC",
    "ResourceScope",
    "ScopedResource",
    "instrument",
    "is_instrumented",
    "uninstrument",
]
