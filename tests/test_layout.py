"""The layout keeps its promises: folders by role, few top-level modules, no private names across seams."""

from __future__ import annotations

import ast
from pathlib import Path

import fluxgate

PACKAGE = Path(fluxgate.__file__).resolve().parent


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_of(module: str) -> str:
    """The top-level unit a module belongs to: ``fluxgate._store`` for ``fluxgate._store.events``."""
    parts = module.split(".")
    return ".".join(parts[:2])


class TestLayout:
    def test_few_top_level_private_modules(self) -> None:
        """At most 15 private modules sit beside the packages in fluxgate/."""
        private = [p.name for p in PACKAGE.glob("_*.py") if p.name not in {"__init__.py", "__main__.py"}]
        assert len(private) <= 15, private

    def test_no_private_name_crosses_a_package_seam(self) -> None:
        """No module imports an underscored name from another package (inside a package they share freely)."""
        crossings = []
        for path in _modules():
            module = _name(path)
            is_package = path.name == "__init__.py"
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ImportFrom) or node.level == 0:
                    continue
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
                if _package_of(target) == _package_of(module):
                    continue
                crossings += [
                    f"{module}: {target}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
        assert crossings == []

    def test_no_import_reaches_into_another_package(self) -> None:
        """Across packages, modules import what a package's __init__ exports, not its submodules."""
        packages = {_name(p.parent) for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE}
        reaching = []
        for path in _modules():
            module = _name(path)
            is_package = path.name == "__init__.py"
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.ImportFrom) or node.level == 0 or node.module is None:
                    continue
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module])
                owner = target.rsplit(".", 1)[0]
                if owner in packages and _package_of(target) != _package_of(module) and not _type_only(node, path):
                    reaching.append(f"{module} -> {target}")
        assert reaching == []


def _type_only(node: ast.ImportFrom, path: Path) -> bool:
    """Imports under ``if TYPE_CHECKING:`` name types for the checker only."""
    tree = ast.parse(path.read_text())
    for block in ast.walk(tree):
        if (
            isinstance(block, ast.If)
            and getattr(block.test, "id", None) == "TYPE_CHECKING"
            and any(child is node or _same(child, node) for child in ast.walk(block))
        ):
            return True
    return False


def _same(a: ast.AST, b: ast.ImportFrom) -> bool:
    return isinstance(a, ast.ImportFrom) and a.lineno == b.lineno and a.module == b.module
