"""The ``fluxgate`` console script: one entry point, a module per subcommand."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

__all__ = ["main"]

_USAGE = """usage: fluxgate <command> [options]
       fluxgate --version

commands:
  report     cost, calls and tokens from the local store, grouped and filtered
  tail       the last events, then each new one as it is written
  prices     the price table, or the row a model id resolves to
  reconcile  the store beside Anthropic's usage and cost reports (needs an Admin API key)
  doctor     check that fluxgate can track calls and write its store
  demo       fill a store from an offline fake of the API, then report and reconcile it

`fluxgate <command> --help` describes each command's options.
"""


def _commands() -> dict[str, Callable[[list[str]], int]]:
    # Imported lazily: each subcommand pays only for what it uses.
    def report(argv: list[str]) -> int:
        from .report import main as run

        return int(run(argv))

    def tail(argv: list[str]) -> int:
        from .tail import tail_main as run

        return int(run(argv))

    def prices(argv: list[str]) -> int:
        from .prices import main as run

        return int(run(argv))

    def reconcile(argv: list[str]) -> int:
        from .._reconcile import main as run

        return int(run(argv))

    def doctor(argv: list[str]) -> int:
        from .doctor import main as run

        return int(run(argv))

    def demo(argv: list[str]) -> int:
        from .demo import main as run

        return int(run(argv))

    return {"report": report, "tail": tail, "prices": prices, "reconcile": reconcile, "doctor": doctor, "demo": demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fluxgate <command>``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_USAGE, end="")
        return 0 if args else 2
    if args[0] in ("--version", "-V"):
        from .._version import __version__

        print(f"fluxgate {__version__}")
        return 0
    command, rest = args[0], args[1:]
    run = _commands().get(command)
    if run is None:
        print(f"fluxgate: unknown command {command!r}\n\n{_USAGE}", end="", file=sys.stderr)
        return 2
    return run(rest)


if __name__ == "__main__":
    raise SystemExit(main())
