"""A small support-desk app whose Claude calls are costed by feature, user and step.

Run it with ``make demo`` (or ``fluxgate demo``, which also prints the report).
Without ``ANTHROPIC_API_KEY`` it talks to fluxgate's in-process fake of the
Messages API (real wire format, realistic usage); with the key set it calls
the real API (a few cheap Haiku calls).

The app itself is in ``fluxgate/_cli/demo.py``, shared with ``fluxgate demo``.
It shows:
- a decorated endpoint (``@track(feature=...)``),
- a multi-step pipeline with nested steps,
- a streamed chat,
- one failing call, recorded before its exception reaches the app;
then, against the fake, ``fluxgate reconcile --save``: what the store tracked
beside the fake's Admin API usage and cost reports, which also bill a prompt
tried out in the Console. ``fluxgate report --html`` then shows it as
"Tracked vs billed".
"""

from __future__ import annotations

import os
import sys

import anthropic

from fluxgate._cli.demo import reconcile_demo, run_demo
from fluxgate._store import default_db_path


def main() -> int:
    db = default_db_path()
    real = (anthropic.Anthropic(), anthropic.AsyncAnthropic()) if os.environ.get("ANTHROPIC_API_KEY") else None
    if real is None:
        print("(Set ANTHROPIC_API_KEY to call the real API instead.)")
    try:
        fake = run_demo(db, out=sys.stdout, clients=real)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"\nRecorded in {db}.")
    if fake is None:
        print("With an Admin API key, `fluxgate reconcile` compares this with Anthropic's own reports.")
        return 0
    return reconcile_demo(fake, db, out=sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
