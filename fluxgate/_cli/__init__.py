"""The ``fluxgate`` command line: one entry point, a module per subcommand."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
