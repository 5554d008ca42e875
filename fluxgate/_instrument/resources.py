"""SDK resources seen through a scope: the facade's tracked ``messages``, ``beta`` and friends.

A :class:`ScopedResource` is a ``wrapt.ObjectProxy``: ``isinstance``,
``type(x).__name__`` checks through ``__class__``, attributes and docstrings
are the SDK resource's own, as the facade's type stubs promise. Only
attribute reads go through the scope, which decides what a method or a
sub-resource becomes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import wrapt

if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy

__all__ = ["ResourceScope", "ScopedResource"]


class ResourceScope(Protocol):
    """What a scoped resource asks of its scope."""

    def resolve(self, owner: Any, name: str, value: Any) -> Any:
        """What reading ``owner.name`` (which is ``value``) gives through this scope."""

    def describe(self, owner: Any) -> str:
        """A repr for a resource seen through this scope (ids only: reprs reach logs)."""


class ScopedResource(_Proxy):
    """An SDK resource whose attributes are read through a :class:`ResourceScope`."""

    def __init__(self, target: Any, scope: ResourceScope) -> None:
        super().__init__(target)
        self._self_scope = scope

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_self_") or name == "__wrapped__":
            raise AttributeError(name)
        value = getattr(self.__wrapped__, name)
        if name.startswith("_"):
            return value
        return self._self_scope.resolve(self.__wrapped__, name, value)

    def __repr__(self) -> str:
        return self._self_scope.describe(self.__wrapped__)
