"""The one option list: init(), FluxGate() and Config agree, and every option is checked at the edge."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import attrs
import pytest

import fluxgate
from fluxgate import ConfigurationError
from fluxgate._config import Config
from fluxgate.testing import MemorySink


def _keywords(fn: object) -> dict[str, object]:
    return {name: p.default for name, p in inspect.signature(fn).parameters.items() if name != "self"}  # type: ignore[arg-type]


class TestOneOptionList:
    def test_init_and_fluxgate_take_the_same_options(self) -> None:
        """init() and FluxGate() have the same keywords with the same defaults."""
        assert _keywords(fluxgate.init) == _keywords(fluxgate.FluxGate.__init__)

    def test_config_defines_every_option(self) -> None:
        """Config has one field per option, with the same default."""
        fields = {f.name: f.default for f in attrs.fields(Config)}
        assert fields == _keywords(fluxgate.FluxGate.__init__)

    def test_fluxgate_keeps_what_it_was_given(self, tmp_path: Path) -> None:
        """A FluxGate's config holds the options it was built with."""
        fg = fluxgate.FluxGate(sinks=[MemorySink()], flush_interval_s=0.5, budget_on_error="allow")
        try:
            assert fg.config.flush_interval_s == 0.5
            assert fg.config.budget_on_error == "allow"
        finally:
            fg.shutdown()


BAD_OPTIONS = [
    ("flush_interval_s", math.inf),
    ("flush_interval_s", math.nan),
    ("flush_interval_s", -1.0),
    ("flush_interval_s", 0),
    ("flush_interval_s", "1"),
    ("exit_timeout_s", math.inf),
    ("budget_lock_timeout_s", -2),
    ("max_batch_size", 0),
    ("max_batch_size", 1.5),
    ("max_queue_size", True),
    ("max_spill_bytes", -1),
    ("retry", 5),
    ("on_drop", 5),
    ("db_path", 5),
    ("spill_path", 5),
    ("prices", 5),
    ("endpoint", 5),
    ("allow_insecure_http", "yes"),
    ("budget_count_tokens", 1),
    ("budget_on_error", "maybe"),
    ("budgets", 5),
    ("budgets", ["not a budget"]),
    ("sinks", "sqlite"),
    ("sinks", [object()]),
]


class TestBadConfiguration:
    @pytest.mark.parametrize(("option", "value"), BAD_OPTIONS)
    def test_a_bad_option_is_named(self, option: str, value: object) -> None:
        """init() refuses a bad option with a ConfigurationError that names it, before anything starts."""
        with pytest.raises(ConfigurationError, match=f"'{option}'"):
            fluxgate.init(**{option: value})  # type: ignore[arg-type]
        assert fluxgate._fluxgate.active() is None

    def test_budget_store_needs_budgets(self) -> None:
        """A spend store without budgets is a mistake the message explains."""
        from fluxgate._budget import MemorySpendStore

        with pytest.raises(ConfigurationError, match="budget_store"):
            fluxgate.FluxGate(sinks=[MemorySink()], budget_store=MemorySpendStore())
