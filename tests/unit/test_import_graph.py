"""The product's import graph: no circle, and no private name used across modules.

Read statically with `ast`, so every import counts: module level, inside functions (lazy
imports), and under `if TYPE_CHECKING:`. A circle makes the layers meaningless (a module
can no longer be understood, tested or moved without the ones above it) and lazy imports
only hide it; a private name (`_x`) imported from another module is a contract nobody
declared.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("trainer", "flows", "blocks", "workflows", "stack")


@dataclass
class Graph:
    """Modules of the product, the product modules each imports, and private-name uses."""

    files: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)
    private_uses: list[str] = field(default_factory=list)

    def owner(self, dotted: str) -> str | None:
        """The product module `dotted` names, or the closest package above it."""
        while dotted and dotted not in self.files:
            dotted = dotted.rpartition(".")[0]
        return dotted or None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an `ImportFrom` reads (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def build_graph(packages: tuple[str, ...] = PACKAGES) -> Graph:
    files = {module_name(p): p for package in packages for p in (ROOT / package).rglob("*.py")}
    graph = Graph(files)
    for module, path in files.items():
        targets: set[str] = set()
        aliases: dict[str, str] = {}  # local name -> product module it is bound to
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = graph.owner(alias.name)
                    if target:
                        targets.add(target)
                        if alias.asname:
                            aliases[alias.asname] = alias.name
            elif isinstance(node, ast.ImportFrom):
                base = absolute(module, path, node)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    target = submodule if submodule in files else graph.owner(base)
                    if target is None:
                        continue
                    targets.add(target)
                    if target == submodule:
                        aliases[alias.asname or alias.name] = submodule
                    elif is_private(alias.name) and target != module:
                        graph.private_uses.append(
                            f"{module} imports {alias.name} from {target} ({path.name}:"
                            f"{node.lineno})")
            elif (isinstance(node, ast.Attribute) and is_private(node.attr)
                  and isinstance(node.value, ast.Name) and node.value.id in aliases
                  and aliases[node.value.id] != module):
                graph.private_uses.append(
                    f"{module} uses {aliases[node.value.id]}.{node.attr} ({path.name}:"
                    f"{node.lineno})")
        targets.discard(module)
        graph.edges[module] = targets
    return graph


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One circle (as a path that ends where it starts) per strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(start: str) -> None:  # Tarjan's algorithm, iterative (no recursion limit)
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return [circle_in(component, edges) for component in components]


def circle_in(component: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest circle through the component's first module (breadth-first)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges[node] & component):
                if child == start:
                    return paths[node] + [start]
                if child not in paths:
                    paths[child] = paths[node] + [child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"{sorted(component)} is not strongly connected")


def test_the_product_has_no_import_circle():
    graph = build_graph()
    found = cycles(graph.edges)
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_no_module_uses_another_modules_private_name():
    graph = build_graph()
    assert not graph.private_uses, "\n".join(graph.private_uses)


def test_the_walk_sees_every_kind_of_import(tmp_path, monkeypatch):
    # GIVEN a package whose modules import each other at module level, lazily in a
    # function, under TYPE_CHECKING and relatively, and use a private name both ways
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import run\n")
    (package / "b.py").write_text("def run():\n    from . import c\n    return c\n")
    (package / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import run\n")
    (package / "d.py").write_text("import pkg.c as other\nfrom pkg.a import _hidden\n"
                                  "value = other._secret\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    # WHEN the graph is walked
    graph = build_graph(("pkg",))
    # THEN the circle through all three imports is found and printed in order
    assert cycles(graph.edges) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    # AND both private uses are named
    assert len(graph.private_uses) == 2
    assert any("_hidden" in use for use in graph.private_uses)
    assert any("pkg.c._secret" in use for use in graph.private_uses)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_is_walked(package):
    # A package renamed or emptied would make the two tests above pass vacuously.
    assert any(module.startswith(package) for module in build_graph().files)
