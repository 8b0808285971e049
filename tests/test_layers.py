"""Imports in ``src/rankloss`` run one way through the layers and never close a circle.

Layers, lowest first; a module may import its own layer's package and any lower layer:

0. ``_core`` (and the leaf helpers ``lists``, ``_io``, ``_version``): shared types, primitives
1. ``kernels`` (fused GPU kernels on core types), ``functional``: the math, pure functions
2. ``losses``, ``mining``, ``metrics``, ``augment``
3. ``data``, ``models``, ``distributed``, ``integrations`` (adapters for other libraries), ``train``
4. ``bench``, ``cli``

Within layer 1, ``functional`` may import ``kernels`` (its ``impl="triton"`` paths); within
layer 2, ``losses`` may import ``mining`` (the module layer resolves miners); within layer 3,
``train`` may import ``data``, ``models`` and ``distributed``, and ``integrations`` may import
``models``. No other package of a layer
imports a sibling. The test reads the source with :mod:`ast`, so imports
inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rankloss"

LAYER = {
    "_core": 0,
    "lists": 0,
    "_io": 0,
    "_version": 0,
    "kernels": 1,
    "functional": 1,
    "losses": 2,
    "mining": 2,
    "metrics": 2,
    "augment": 2,
    "data": 3,
    "models": 3,
    "distributed": 3,
    "integrations": 3,
    "train": 3,
    "bench": 4,
    "cli": 4,
}
#: Same-layer imports that are allowed (importer -> imported).
SIBLINGS = {
    ("functional", "kernels"),
    ("losses", "mining"),
    ("train", "data"),
    ("train", "models"),
    ("train", "distributed"),
    ("integrations", "models"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """``(imported rankloss module, line)`` for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("rankloss")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("rankloss"):
                continue
            if module == "rankloss":  # from rankloss import functional, ...
                found += [(f"rankloss.{a.name}", node.lineno) for a in node.names]
            else:
                found.append((module, node.lineno))
    return found


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


FILES = sorted(p for p in SRC.rglob("*.py") if p.name != "__main__.py")


def test_every_package_has_a_layer():
    packages = {_package(_module_name(p)) for p in FILES} - {None}
    assert packages <= set(LAYER), packages - set(LAYER)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_run_down_the_layers(path):
    importer = _package(_module_name(path))
    if importer is None:  # rankloss/__init__.py sits above every layer
        return
    for module, line in _imports(path):
        imported = _package(module)
        if imported is None or imported == importer:
            continue
        where = f"{path.relative_to(SRC.parent)}:{line} imports {module}"
        assert imported in LAYER, where
        if LAYER[imported] == LAYER[importer]:
            assert (importer, imported) in SIBLINGS, f"{where} (same layer)"
        assert LAYER[imported] <= LAYER[importer], f"{where} (upward)"


def test_private_modules_are_imported_only_inside_their_package():
    for path in FILES:
        importer = _package(_module_name(path))
        for module, line in _imports(path):
            parts = module.split(".")
            private = [p for p in parts[2:] if p.startswith("_") and p != "__init__"]
            if private and _package(module) != importer:
                pytest.fail(f"{path.relative_to(SRC.parent)}:{line} imports private {module}")


def test_no_import_cycles_between_modules():
    modules = {_module_name(p): p for p in FILES}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for module, _ in _imports(path):
            # "from rankloss.losses import x" may name a submodule or an attribute.
            targets.add(module if module in modules else module.rsplit(".", 1)[0])
        graph[name] = {t for t in targets if t in modules and t != name}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
