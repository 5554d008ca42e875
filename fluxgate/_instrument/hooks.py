"""What every patch shares: the wrapper's shape, its mark, and state kept beside SDK objects.

fluxgate hands the user the SDK's own objects (``type(x)`` is the SDK's
class; they pickle and copy exactly as without fluxgate) and follows them
with class-level patches of the SDK's methods. What a patch needs to know
about one object (the recorder of a stream, the scope a tool runner was made
in) lives in a :class:`Registry`, keyed by the object's identity through a
weak reference: nothing is stored on the object, and nothing keeps it alive.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .._guard import guarded

__all__ = ["MARK", "Registry", "Target", "Wrapper", "marked"]

#: The attribute that marks a wrapt wrapper function as fluxgate's.
MARK = "_fluxgate_wrapper"

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

#: One patch: (module, class, attribute, what to put there). A wrapper wraps
#: the class's own method; a ``property`` is added where the class has none.
Target = tuple[str, str, str, "Wrapper | property"]

S = TypeVar("S")


def marked(wrapper: Wrapper) -> Wrapper:
    """``wrapper``, marked as fluxgate's (``uninstrument`` removes only its own)."""
    setattr(wrapper, MARK, True)
    return wrapper


class _Entry(weakref.ref[object], Generic[S]):
    """A weak reference to an SDK object that carries the object's state."""

    __slots__ = ("key", "state")

    def __init__(self, obj: object, callback: Callable[[_Entry[S]], None], *, key: int, state: S) -> None:
        # weakref.ref.__new__ took (obj, callback) and made the reference; its
        # __init__ only checks those arguments again, so it is not called.
        self.key = key
        self.state = state


class Registry(Generic[S]):
    """Per-object state for SDK objects, kept beside them rather than on them.

    ``on_drop`` runs with an object's state when the object is collected, so
    a stream dropped unfinished is still recorded. One weak reference per
    object is the whole cost (no proxy, no finalizer object).
    """

    __slots__ = ("_callback", "_entries", "_on_drop")

    def __init__(self, on_drop: Callable[[S], None] | None = None) -> None:
        self._entries: dict[int, _Entry[S]] = {}
        self._on_drop = on_drop
        self._callback = self._dropped  # one bound method, not one per entry

    def put(self, obj: object, state: S) -> None:
        """Keep ``state`` for ``obj`` until ``obj`` is collected."""
        key = id(obj)
        self._entries[key] = _Entry(obj, self._callback, key=key, state=state)

    def get(self, obj: object) -> S | None:
        """The state kept for ``obj``, or None."""
        entry = self._entries.get(id(obj))
        if entry is None or entry() is not obj:
            return None
        return entry.state

    def __len__(self) -> int:
        return len(self._entries)

    def _dropped(self, entry: _Entry[S]) -> None:
        # Runs while the object is being freed, before its id can be reused,
        # so the entry found under its key is this one or a later object's.
        if self._entries.get(entry.key) is entry:
            self._entries.pop(entry.key, None)
        if self._on_drop is not None:
            with guarded():
                self._on_drop(entry.state)
