"""``python -m fluxgate``: the console script."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())
