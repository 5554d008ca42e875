"""Where calls are caught: the only code that imports anthropic or wrapt.

``patches`` holds the one table of patches, with ``instrument()`` and
``uninstrument()``, and the HTTP-request patch every call passes through;
``routes`` says which requests are billable calls, what they are named and on
which platform. What the SDK returns stays the SDK's own object, followed by
class-level patches with state kept beside it (``hooks``): ``streams``
(streams and ``stream()`` helpers), ``responses`` (raw responses),
``runners`` (tool runners) and ``batches`` (a batch creator's context, each
result priced once as it is read). ``resources`` is the facade's view of
an SDK resource.
"""

from __future__ import annotations

from .patches import ATTRIBUTE, SUPPORTED_ANTHROPIC, TARGETS, instrument, is_instrumented, resolve, uninstrument
from .resources import ResourceScope, ScopedResource

__all__ = [
    "ATTRIBUTE",
    "SUPPORTED_ANTHROPIC",
    "TARGETS",
    "ResourceScope",
    "ScopedResource",
    "instrument",
    "is_instrumented",
    "resolve",
    "uninstrument",
]
