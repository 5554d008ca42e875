"""The public surface is explicit, and importing it does nothing."""

from __future__ import annotations

import subprocess
import sys

import fluxgate


class TestPublicAPI:
    def test_all_matches_module(self) -> None:
        """__all__ lists exactly the public names of the package, sorted."""
        public = {
            name
            for name, value in vars(fluxgate).items()
            if not name.startswith("_") and type(value).__name__ != "module" and name != "annotations"
        } | {"__version__"}
        assert set(fluxgate.__all__) == public
        assert fluxgate.__all__ == sorted(fluxgate.__all__)

    def test_import_has_no_side_effects(self) -> None:
        """Importing fluxgate starts no thread, patches nothing and does not import anthropic."""
        code = (
            "import threading, sys\n"
            "before = threading.active_count()\n"
            "import fluxgate, fluxgate.sinks\n"
            "assert threading.active_count() == before, 'a thread was started'\n"
            "assert 'anthropic' not in sys.modules, 'anthropic was imported'\n"
            "import anthropic.resources.messages.messages as m\n"
            "assert type(m.Messages.__dict__['create']).__name__ == 'function'\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
