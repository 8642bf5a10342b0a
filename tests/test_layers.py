"""The package layers of docs/architecture.md hold in the code: no upward import, no cycle.

The allowed order is written once, in the "Layers" block of docs/architecture.md, and read from
there, so the page and this test cannot disagree. A module may import its own package and any
package of a lower layer; two packages of the same layer never import each other. Every import
counts: module level, inside functions (an import moved into a function to dodge a cycle is still
the cycle) and under ``TYPE_CHECKING`` (the type is still the dependency).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent
PACKAGE = REPO / "otelcost"
ARCHITECTURE = REPO / "docs" / "architecture.md"
GENERATED = "_proto"  # protobuf output, imports only protobuf


def read_layers() -> dict[str, int]:
    """``{top-level name under otelcost: layer number}`` from the page's Layers block."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = re.search(r"<!-- layers -->\n```text\n(.*?)```", text, re.DOTALL)
    assert block, "docs/architecture.md has no <!-- layers --> block"
    layers: dict[str, int] = {}
    for line in block.group(1).splitlines():
        match = re.match(r"\s*(\d+)\s+(.+?)\s*(?:#.*)?$", line)
        if not match:
            continue
        number, names = int(match.group(1)), match.group(2).split()
        for name in names:
            assert name not in layers, f"{name} is in two layers"
            layers[name] = number
    return layers


def top_level(module: str) -> str:
    """``otelcost.lake.writer`` -> ``lake``; ``otelcost`` itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, dotted otelcost module) of every import in ``path``, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    return imports_in(path.read_text(encoding="utf-8"), package)


def imports_in(source: str, package: str) -> Iterator[tuple[int, str]]:
    """The otelcost imports of ``source``, a module of ``package`` (relative imports resolved)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                targets = [".".join([*base, node.module] if node.module else base)]
            else:
                targets = [node.module or ""]
        else:
            continue
        for target in targets:
            if target == "otelcost" or target.startswith("otelcost."):
                yield node.lineno, target


def source_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if GENERATED not in p.relative_to(PACKAGE).parts)


def test_every_package_and_module_has_a_layer() -> None:
    layers = read_layers()
    tops = {top_level(module_name(p)) for p in source_files()}
    assert sorted(tops - set(layers)) == [], "add these to the Layers block of docs/architecture.md"
    assert sorted(set(layers) - tops) == [], "the Layers block names modules that do not exist"


def test_no_import_reaches_up_or_across() -> None:
    layers = read_layers()
    wrong = []
    for path in source_files():
        here = top_level(module_name(path))
        for line, target in imported_modules(path):
            there = top_level(target)
            if there in (GENERATED, here):
                continue
            if layers[there] >= layers[here]:
                wrong.append(
                    f"{path.relative_to(REPO)}:{line} imports {target} "
                    f"(layer {layers[there]}) from layer {layers[here]}"
                )
    assert wrong == [], "\n".join(wrong)


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    known = {module_name(p) for p in source_files()}
    for path in source_files():
        for _, target in imported_modules(path):
            # ``from otelcost.lake.writer import LakeWriter`` names the module; the edge goes to the
            # longest prefix that is a module.
            imported = target
            while imported not in known and "." in imported:
                imported = imported.rpartition(".")[0]
            if imported in known and imported != module_name(path):
                graph[module_name(path)].add(imported)
    cycles = _cycles(graph)
    # A package's __init__ re-exporting its modules, which import each other through the package,
    # is the one benign loop; everything else is a design error.
    real = [c for c in cycles if not all(m == c[0] or m.startswith(c[0] + ".") for m in c)]
    assert real == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in real)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import otelcost.lake.writer\n", ["otelcost.lake.writer"]),
        ("from otelcost.lake import writer\n", ["otelcost.lake"]),
        ("from . import writer\n", ["otelcost.lake"]),
        ("from .writer import LakeWriter\n", ["otelcost.lake.writer"]),
        ("from ..money import format_amount\n", ["otelcost.money"]),
        ("def f():\n    from otelcost.api import app\n", ["otelcost.api"]),
        ("import json\n", []),
    ],
)
def test_imports_are_read_as_python_resolves_them(source: str, expected: list[str]) -> None:
    # The walker must see what Python imports, or the tests above could pass on a broken graph.
    assert [target for _, target in imports_in(source, "otelcost.lake")] == expected
