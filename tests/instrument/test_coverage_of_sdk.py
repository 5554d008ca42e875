"""The installed SDK against fluxgate's tables: no billable method slips past, every patch is undone."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import anthropic
import pytest
import wrapt

import fluxgate
from fluxgate import _instrument
from fluxgate._instrument import patches
from fluxgate._instrument.routes import METHODS, RESOURCES
from fluxgate.testing import MemorySink


def installed_resources() -> list[tuple[type, str]]:
    out = []
    for module, cls, path in RESOURCES:
        try:
            owner = getattr(importlib.import_module(module), cls, None)
        except ImportError:
            continue
        if isinstance(owner, type):
            out.append((owner, path))
    return out


def public_names(cls: type) -> list[str]:
    return sorted(name for name in dir(cls) if not name.startswith("_"))


def targets() -> list[tuple[type, str]]:
    out = []
    for module, cls, method, _ in patches.TARGETS:
        owner = patches.resolve(module, cls)
        if owner is not None and method in owner.__dict__:
            out.append((owner, method))
    return out


class TestEveryMethodIsClassified:
    def test_resources_exist(self) -> None:
        """The first-party Messages resources are where the table expects them."""
        names = {(owner.__module__, owner.__name__) for owner, _ in installed_resources()}
        assert ("anthropic.resources.messages.messages", "Messages") in names
        assert ("anthropic.resources.beta.messages.messages", "AsyncMessages") in names

    @pytest.mark.parametrize(("owner", "path"), installed_resources(), ids=lambda v: getattr(v, "__qualname__", v))
    def test_no_unclassified_public_method(self, owner: type, path: str) -> None:
        """Every public method that can send a request is tracked, or listed as not billable."""
        unknown = [f"{path}.{name}" for name in public_names(owner) if f"{path}.{name}" not in METHODS]
        assert not unknown, (
            f"anthropic {anthropic.__version__} has methods fluxgate does not know: {unknown}. "
            "Track them (fluxgate/_instrument/patches.py) or classify them in fluxgate/_instrument/routes.py METHODS, "
            "and update docs/call-paths.md."
        )

    @pytest.mark.parametrize(("owner", "path"), installed_resources(), ids=lambda v: getattr(v, "__qualname__", v))
    def test_tracked_methods_are_patched(self, owner: type, path: str) -> None:
        """Every method the table calls tracked is patched where the class defines it."""
        fluxgate.init(sinks=[MemorySink()])
        for name in public_names(owner):
            handling = METHODS[f"{path}.{name}"]
            if handling.kind != "tracked" or name not in owner.__dict__:
                continue
            current = owner.__dict__[name]
            assert isinstance(current, wrapt.FunctionWrapper), f"{owner.__qualname__}.{name} is not patched"

    def test_request_level_is_patched(self) -> None:
        """The HTTP level, through which every API call passes, is patched for sync and async clients."""
        from anthropic._base_client import AsyncAPIClient, SyncAPIClient

        fluxgate.init(sinks=[MemorySink()])
        assert isinstance(SyncAPIClient.__dict__["request"], wrapt.FunctionWrapper)
        assert isinstance(AsyncAPIClient.__dict__["request"], wrapt.FunctionWrapper)


def _lib_classes() -> list[type]:
    """Every class in anthropic.lib that imports without optional extras."""
    import anthropic.lib

    out: list[type] = []
    for info in pkgutil.walk_packages(anthropic.lib.__path__, "anthropic.lib."):
        try:
            module = importlib.import_module(info.name)
        except Exception:  # optional extras (boto3, google-auth...) are not installed
            continue
        # type(obj), not isinstance(): some values are lazy proxies of optional extras that load on touch.
        out.extend(
            obj for obj in vars(module).values() if issubclass(type(obj), type) and obj.__module__ == module.__name__
        )
    return out


class TestPlatformCopies:
    def test_every_copied_reference_is_a_target(self) -> None:
        """A class that copies a patched first-party function into its own dict is patched itself."""
        originals: dict[int, str] = {}
        for owner, method in targets():
            function = owner.__dict__[method]
            if owner.__module__.startswith("anthropic.resources"):
                originals[id(function)] = f"{owner.__module__}.{owner.__qualname__}.{method}"
        patched = set(targets())
        missed = []
        for cls in _lib_classes():
            for name, value in vars(cls).items():
                if id(value) in originals and (cls, name) not in patched:
                    missed.append(f"{cls.__module__}.{cls.__qualname__}.{name} (= {originals[id(value)]})")
        assert not missed, f"copies of patched methods that fluxgate does not patch: {missed}"


class TestSymmetry:
    def test_uninstrument_restores_every_original(self) -> None:
        """After init() then shutdown(), every patched attribute is the very object it was."""
        before: dict[tuple[type, str], Any] = {(owner, m): owner.__dict__[m] for owner, m in targets()}
        assert before, "no patch target found in the installed SDK"
        fluxgate.init(sinks=[MemorySink()])
        for (owner, method), original in before.items():
            assert owner.__dict__[method] is not original, f"{owner.__qualname__}.{method} was not patched"
            assert owner.__dict__[method].__wrapped__ is original
        fluxgate.shutdown()
        for (owner, method), original in before.items():
            assert owner.__dict__[method] is original, f"{owner.__qualname__}.{method} was not restored"
        assert not _instrument.is_instrumented()

    def test_instrument_twice_wraps_once(self) -> None:
        """A second instrument() patches nothing more; one uninstrument() undoes everything."""
        before = {(owner, m): owner.__dict__[m] for owner, m in targets()}
        assert _instrument.instrument()
        assert not _instrument.instrument()
        for (owner, method), original in before.items():
            assert owner.__dict__[method].__wrapped__ is original
        _instrument.uninstrument()
        assert all(owner.__dict__[m] is original for (owner, m), original in before.items())

    def test_platform_modules_imported_late(self) -> None:
        """Patching never leaks a wrapper into a platform class (they are imported before patching)."""
        fluxgate.init(sinks=[MemorySink()])
        fluxgate.shutdown()
        from anthropic.lib.bedrock import _beta_messages

        for name, value in vars(_beta_messages.Messages).items():
            assert not isinstance(value, wrapt.FunctionWrapper), name
