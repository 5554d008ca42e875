"""Registry: state kept beside SDK objects, never on them, and handed back when they are collected."""

from __future__ import annotations

import gc
import pickle

from fluxgate._instrument.hooks import Registry


class Thing:
    """Stands in for an SDK object: a plain class with a __dict__."""

    def __init__(self, value: int) -> None:
        self.value = value


class TestRegistry:
    def test_state_is_kept_beside_the_object(self) -> None:
        """The state is found from the object, and nothing is added to the object itself."""
        registry: Registry[str] = Registry()
        thing = Thing(1)
        registry.put(thing, "state")
        assert registry.get(thing) == "state"
        assert vars(thing) == {"value": 1}
        assert pickle.loads(pickle.dumps(thing)).__dict__ == {"value": 1}

    def test_other_objects_have_none(self) -> None:
        """An object never registered, even an equal one, has no state."""
        registry: Registry[str] = Registry()
        registry.put(Thing(1), "gone at once")
        assert registry.get(Thing(1)) is None
        assert len(registry) == 0

    def test_drop_hands_back_the_state(self) -> None:
        """When the object is collected its entry goes, and on_drop gets its state, once."""
        dropped: list[str] = []
        registry: Registry[str] = Registry(dropped.append)
        thing = Thing(2)
        registry.put(thing, "state")
        del thing
        assert dropped == ["state"]
        assert len(registry) == 0

    def test_drop_inside_a_cycle(self) -> None:
        """An object freed by the garbage collector (in a reference cycle) hands back its state too."""
        dropped: list[str] = []
        registry: Registry[str] = Registry(dropped.append)
        thing = Thing(3)
        thing.value = thing  # type: ignore[assignment]
        registry.put(thing, "cyclic")
        del thing
        gc.collect()
        assert dropped == ["cyclic"]
