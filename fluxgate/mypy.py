"""A mypy plugin: ``message.fluxgate_cost_tracking_response`` type-checks.

fluxgate hangs a :class:`fluxgate.CostTrackingResponse` on what anthropic
returns (messages, streams, raw responses) and on the exceptions it raises.
anthropic's classes don't declare it, so ``mypy --strict`` rejects the read.
Enable the plugin to declare it on them::

    [tool.mypy]
    plugins = ["fluxgate.mypy"]

Or, with no plugin, read it through the typed accessor
``fluxgate.tracking_response(message)``.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.nodes import MypyFile, TypeInfo
from mypy.plugin import ClassDefContext, Plugin
from mypy.plugins.common import add_attribute_to_class
from mypy.types import NoneType, UnionType

ATTRIBUTE = "fluxgate_cost_tracking_response"
RESPONSE = "fluxgate._models.CostTrackingResponse"
#: What fluxgate attaches the attribute to: anthropic's models (Message and
#: friends), its API errors, and its streams and raw responses.
BASES = frozenset(
    {
        "anthropic._models.BaseModel",
        "anthropic._exceptions.APIError",
        "anthropic._streaming.Stream",
        "anthropic._streaming.AsyncStream",
        "anthropic._response.APIResponse",
        "anthropic._response.AsyncAPIResponse",
        "anthropic._legacy_response.LegacyAPIResponse",
    }
)


def _declare(ctx: ClassDefContext) -> None:
    info: TypeInfo = ctx.cls.info
    if ATTRIBUTE in info.names:
        return
    found = ctx.api.lookup_fully_qualified_or_none(RESPONSE)
    if found is None or not isinstance(found.node, TypeInfo):
        if not ctx.api.final_iteration:
            ctx.api.defer()
        return
    declared = UnionType([ctx.api.named_type(RESPONSE), NoneType()])
    add_attribute_to_class(ctx.api, ctx.cls, ATTRIBUTE, declared)


class FluxgatePlugin(Plugin):
    """Declares ``fluxgate_cost_tracking_response`` on anthropic's returned and raised classes."""

    def get_additional_deps(self, file: MypyFile) -> list[tuple[int, str, int]]:
        # anthropic's modules need our record's type even where no fluxgate import brought it in.
        return [(10, "fluxgate._models", -1)] if file.fullname.startswith("anthropic.") else []

    def get_base_class_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        return _declare if fullname in BASES else None

    def get_customize_class_mro_hook(self, fullname: str) -> Callable[[ClassDefContext], None] | None:
        return _declare if fullname in BASES else None


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point."""
    return FluxgatePlugin
