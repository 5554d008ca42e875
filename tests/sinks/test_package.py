"""fluxgate.sinks: every sink by name, the optional ones loaded on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fluxgate.sinks

REPO = Path(__file__).resolve().parents[2]


class TestExports:
    def test_every_name_resolves(self) -> None:
        """Each name in __all__ is an attribute of the package."""
        assert sorted(fluxgate.sinks.__all__) == fluxgate.sinks.__all__
        for name in fluxgate.sinks.__all__:
            assert getattr(fluxgate.sinks, name).__name__ == name

    def test_optional_sinks_load_on_first_use(self) -> None:
        """import fluxgate.sinks loads neither the OTel nor the PostgreSQL sink, nor their libraries."""
        code = (
            "import sys, fluxgate.sinks\n"
            "optional = ('opentelemetry', 'psycopg', 'fluxgate.sinks.postgres', 'fluxgate.sinks.otel')\n"
            "loaded = [m for m in sys.modules if m.startswith(optional)]\n"
            "assert not loaded, loaded\n"
            "fluxgate.sinks.PostgresSink\n"
            "assert 'fluxgate.sinks.postgres' in sys.modules\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
