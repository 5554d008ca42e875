"""One call in, one event out: no SDK, no wrapt, no threads.

``call`` holds :class:`Call` (a call's facts, from its start to its event);
``readers`` follow stream events and raw bodies; ``unfinished`` records the
streams a request left open when it ends; ``usage`` reads usage from
whatever shape the SDK or the wire gave; ``wire`` decodes SSE and AWS event
streams; ``outcome`` maps stop reasons and errors to a status; ``event``
turns a finished call's frozen facts into a priced :class:`CostEvent`.
"""

from __future__ import annotations

from .call import ATTRIBUTE, STEP, Call, StepLog, attach
from .event import PendingEvent
from .outcome import header, read_content
from .readers import BodyRecorder, StreamRecorder
from .unfinished import OpenStreams, finish_streams_at_exit, watch
from .usage import get
from .wire import EventStreamParser

__all__ = [
    "ATTRIBUTE",
    "STEP",
    "BodyRecorder",
    "Call",
    "EventStreamParser",
    "OpenStreams",
    "PendingEvent",
    "StepLog",
    "StreamRecorder",
    "attach",
    "finish_streams_at_exit",
    "get",
    "header",
    "read_content",
    "watch",
]
