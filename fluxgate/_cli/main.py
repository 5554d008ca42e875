"""The ``fluxgate`` console script: one entry point, a module per subcommand."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

__all__ = ["main"]

_USAGE = """usage: fluxgate <command> [options]

commands:
  report   cost, calls and tokens from the local store, grouped and filtered
  tail     follow new events as they are written
  prices   the price table, or the row a model id resolves to
"""


def _commands() -> dict[str, Callable[[list[str]], int]]:
    # Imported lazily: each subcommand pays only for what it uses.
    def report(argv: list[str]) -> int:
        from .report import main as run

        return int(run(argv))

    def tail(argv: list[str]) -> int:
        from .report import tail_main as run

        return int(run(argv))

    def prices(argv: list[str]) -> int:
        from .prices import main as run

        return int(run(argv))

    return {"report": report, "tail": tail, "prices": prices}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fluxgate <command>``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_USAGE, end="")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    run = _commands().get(command)
    if run is None:
        print(f"fluxgate: unknown command {command!r}\n\n{_USAGE}", end="", file=sys.stderr)
        return 2
    return run(rest)


if __name__ == "__main__":
    raise SystemExit(main())
