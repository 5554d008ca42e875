"""The installed SDK against fluxgate's tables: no billable method slips past, every patch is undone."""

from __future__ import annotations

import importlib
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
    """The (class, method) pairs the installed SDK has of the wrapper patches."""
    out = []
    for module, cls, name, patch in patches.TARGETS:
        owner = patches.resolve(module, cls)
        if owner is not None and not isinstance(patch, property) and name in owner.__dict__:
            out.append((owner, name))
    return out


def added() -> list[tuple[type, str, property]]:
    """The (class, name, property) triples the installed SDK has of the added properties."""
    out = []
    for module, cls, name, patch in patches.TARGETS:
        owner = patches.resolve(module, cls)
        if owner is not None and isinstance(patch, property):
            out.append((owner, name, patch))
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
            "Check how their requests are named (fluxgate/_instrument/routes.py label) and classify them in METHODS, "
            "and update docs/call-paths.md."
        )

    @pytest.mark.parametrize(("owner", "path"), installed_resources(), ids=lambda v: getattr(v, "__qualname__", v))
    def test_public_methods_are_the_sdks_own(self, owner: type, path: str) -> None:
        """No public method of a resource is wrapped: the SDK's warnings still point at the caller's line."""
        fluxgate.init(sinks=[MemorySink()])
        wrapped = [name for name in public_names(owner) if isinstance(owner.__dict__.get(name), wrapt.FunctionWrapper)]
        allowed = {"results"}  # batches.results: it sends no billable request and warns about nothing
        assert set(wrapped) <= allowed, f"{owner.__qualname__}: {sorted(set(wrapped) - allowed)} are wrapped"

    def test_request_level_is_patched(self) -> None:
        """The HTTP level, through which every API call passes, is patched for sync and async clients."""
        from anthropic._base_client import AsyncAPIClient, SyncAPIClient

        fluxgate.init(sinks=[MemorySink()])
        assert isinstance(SyncAPIClient.__dict__["request"], wrapt.FunctionWrapper)
        assert isinstance(AsyncAPIClient.__dict__["request"], wrapt.FunctionWrapper)


class TestSymmetry:
    def test_uninstrument_restores_every_original(self) -> None:
        """After init() then shutdown(), every patched attribute is the very object it was, and no property is left."""
        before: dict[tuple[type, str], Any] = {(owner, m): owner.__dict__[m] for owner, m in targets()}
        assert before, "no patch target found in the installed SDK"
        properties = added()
        assert properties, "no class to add the summary property to"
        assert all(name not in owner.__dict__ for owner, name, _ in properties)
        fluxgate.init(sinks=[MemorySink()])
        for (owner, method), original in before.items():
            assert owner.__dict__[method] is not original, f"{owner.__qualname__}.{method} was not patched"
            assert owner.__dict__[method].__wrapped__ is original
        assert all(owner.__dict__[name] is prop for owner, name, prop in properties)
        fluxgate.shutdown()
        for (owner, method), original in before.items():
            assert owner.__dict__[method] is original, f"{owner.__qualname__}.{method} was not restored"
        assert all(name not in owner.__dict__ for owner, name, _ in properties)
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
        """Patching never leaks a wrapper into a platform class, whenever its module is imported."""
        fluxgate.init(sinks=[MemorySink()])
        from anthropic.lib.bedrock import _beta_messages

        for name, value in vars(_beta_messages.Messages).items():
            assert not isinstance(value, wrapt.FunctionWrapper), name
        fluxgate.shutdown()
