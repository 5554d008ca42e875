"""A psycopg connection that tells its writer of each wait for the server (see ``fluxgate._handoff``).

Imported only when a Postgres sink opens a connection: psycopg is optional.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import TupleRow

from .._handoff import Handoff

__all__ = ["SteppingConnection"]


class SteppingConnection(psycopg.Connection[TupleRow]):
    """A connection that marks each wait for the server as a step of its writer.

    psycopg lets go of the GIL while it waits for the server, so each wait
    ends with the writer taking it back. ``wait`` is psycopg's one place for
    that (each query, pipeline sync and commit goes through it); a psycopg
    that waited elsewhere would leave the step as it is, which costs busy
    callers a few pauses per step at most, as a long statement does.
    """

    #: Set once connected (``Connections`` makes the connection for one writer).
    handoff: Handoff | None = None

    def wait(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().wait(*args, **kwargs)
        finally:
            if self.handoff is not None:
                self.handoff.advance()
