"""The fluxgate.mypy plugin: message.fluxgate_cost_tracking_response type-checks under mypy --strict."""

from __future__ import annotations

from pathlib import Path

import pytest

APP = """
from __future__ import annotations

import anthropic

def cost(client: anthropic.Anthropic) -> float | None:
    message = client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    summary = message.fluxgate_cost_tracking_response
    return None if summary is None else summary.cost

def on_error(exc: anthropic.RateLimitError) -> str | None:
    summary = exc.fluxgate_cost_tracking_response
    return None if summary is None else summary.tracking_id
"""


@pytest.mark.slow
class TestMypyPlugin:
    @pytest.mark.parametrize(("plugin", "errors"), [(True, 0), (False, 2)])
    def test_attribute_type_checks_with_the_plugin(self, tmp_path: Path, plugin: bool, errors: int) -> None:
        """With the plugin the attribute is CostTrackingResponse | None; without it mypy rejects both reads."""
        api = pytest.importorskip("mypy.api")
        (tmp_path / "app.py").write_text(APP)
        config = tmp_path / "mypy.ini"
        config.write_text("[mypy]\nstrict = True\n" + ("plugins = fluxgate.mypy\n" if plugin else ""))
        out, err, status = api.run(
            ["--config-file", str(config), "--cache-dir", str(tmp_path / "cache"), str(tmp_path / "app.py")]
        )
        assert out.count("has no attribute") == errors, out + err
        assert (status == 0) == (errors == 0), out + err
