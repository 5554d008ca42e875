"""The public surface is explicit, and importing it does nothing."""

from __future__ import annotations

import subprocess
import sys
from typing import TypeVar

import pytest

import fluxgate


class TestPublicAPI:
    def test_all_matches_module(self) -> None:
        """__all__ lists exactly the public names of the package, sorted."""
        public = {
            name
            for name in dir(fluxgate)
            if not name.startswith("_")
            and type(getattr(fluxgate, name)).__name__ != "module"
            and name not in ("annotations", "importlib", "TYPE_CHECKING", "Any")
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

    def test_import_loads_only_the_core(self) -> None:
        """`import fluxgate` loads no wrapt, tenacity, sinks, budgets, report or price data; init() loads them."""
        code = (
            "import sys\n"
            "import fluxgate\n"
            "from fluxgate import track, track_context, AiEventUser\n"
            "heavy = ['wrapt', 'tenacity', 'sqlite3', 'fluxgate._delivery', 'fluxgate._budget', 'fluxgate._pricing',\n"
            "         'fluxgate._report', 'fluxgate.sinks', 'fluxgate._instrument', 'fluxgate._store']\n"
            "loaded = [m for m in heavy if m in sys.modules]\n"
            "assert not loaded, loaded\n"
            "assert callable(fluxgate.init) and 'fluxgate._lifecycle' in sys.modules\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)

    def test_import_alone_loads_no_models(self) -> None:
        """`import fluxgate` loads its errors and version; the models (attrs) come with the first name needing them."""
        code = (
            "import sys\n"
            "before = set(sys.modules)\n"  # what the interpreter's start-up (site, .pth files) loaded
            "import fluxgate\n"
            "new = set(sys.modules) - before\n"
            "loaded = sorted(m for m in new if m.startswith(('fluxgate.', 'attr', 'inspect')))\n"
            "assert loaded == ['fluxgate._errors', 'fluxgate._version'], loaded\n"
            "assert fluxgate.ConfigurationError.__module__ == 'fluxgate._errors'\n"
            "from fluxgate import track_context\n"
            "assert 'attrs' in sys.modules and 'fluxgate._models' in sys.modules\n"
            "with track_context(feature='f'):\n"
            "    assert fluxgate.current_context().feature == 'f'\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)

    def test_tracking_response_reads_the_attachment(self) -> None:
        """tracking_response() returns what fluxgate attached, and None for anything else."""
        from fluxgate.testing import FakeAnthropicAPI, MemorySink

        fluxgate.init(sinks=[MemorySink()])
        message = (
            FakeAnthropicAPI()
            .client()
            .messages.create(model="claude-haiku-4-5", max_tokens=256, messages=[{"role": "user", "content": "hi"}])
        )
        found = fluxgate.tracking_response(message)
        assert found is message.fluxgate_cost_tracking_response  # type: ignore[attr-defined]
        assert found is not None
        assert found.status is fluxgate.Status.SUCCESS
        assert fluxgate.tracking_response("not a message") is None


class TestConfigurationErrors:
    def test_bad_price_override_raises_at_init(self) -> None:
        """init(prices=...) with a bad row raises at once, naming the model."""
        with pytest.raises(fluxgate.ConfigurationError, match="claude-house-model"):
            fluxgate.init(prices={"claude-house-model": {"input": "-1", "output": "5"}})

    def test_price_override_prices_calls(self) -> None:
        """A model added with init(prices=...) is priced from its row."""
        from decimal import Decimal

        from fluxgate.testing import FakeAnthropicAPI, MemorySink

        sink = MemorySink()
        fluxgate.init(sinks=[sink], prices={"claude-house-model": {"input": "1", "output": "2"}})
        FakeAnthropicAPI().client().messages.create(
            model="claude-house-model", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        assert fluxgate.flush(timeout_s=10)
        [event] = sink.events
        expected = (event.input_tokens * Decimal(1) + event.output_tokens * Decimal(2)) / Decimal(1_000_000)
        assert event.cost_usd == expected
        assert "+overrides" in event.price_version

    def test_budgets_must_be_budgets(self) -> None:
        """init(budgets=...) rejects what is not a Budget."""
        with pytest.raises(fluxgate.ConfigurationError, match="budgets"):
            fluxgate.init(budgets=[{"limit": 5}])  # type: ignore[list-item]


class TestFacadeModule:
    def test_all_matches_module(self) -> None:
        """fluxgate.anthropic's __all__ names exactly its public objects."""
        import fluxgate.anthropic as facade

        public = {
            name
            for name, value in vars(facade).items()
            if not name.startswith("_")
            and getattr(value, "__module__", None) == "fluxgate.anthropic"
            and not isinstance(value, TypeVar)
        }
        assert public <= set(facade.__all__)
        assert "create_anthropic_cost_tracker" in facade.__all__
