"""The package layering of docs/architecture.md, checked on the import graph.

Every `import infsim.…` / `from infsim.… import` in `infsim/` (type-checking-only imports
included) must point to the same layer or one below; within a layer the packages import
each other without cycles. A module in a package the map does not name fails the test: place
new packages in LAYERS (and in docs/architecture.md). KNOWN lists the upward imports still
left, each with why; the test also fails when one of them is gone, so the list shrinks as
they are fixed (a ratchet).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "infsim"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "registry", "core", "package_data", "limits", "textio", "arrays", "compiled"),
    ("catalog",),
    ("kvcache", "parallel", "speculative", "workload", "frontend"),
    ("scheduling", "routing", "metrics"),
    ("cost",),
    ("disagg", "fleet"),
    ("scenario",),
    ("sim",),
    ("report", "api"),
    ("calibration", "validation", "sweep", "uncertainty", "plan"),
    ("cli", "examples", "__main__", "__init__"),
)
"""Bottom to top. `cli` is `infsim/cli.py` and every package's `cli.py` (command lines sit
on top of everything); the other names are packages or top-level modules."""

KNOWN: dict[tuple[str, str], str] = {}


def _unit(path: Path) -> str:
    """The layer-map name of a source file."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "cli":
        return "cli"
    return parts[0]


def _imports(path: Path) -> set[str]:
    """Names of the infsim units a file imports (anywhere in it)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "infsim":
                names = [f"infsim.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "infsim" and len(parts) > 1:
                out.add("cli" if parts[-1] == "cli" else parts[1])
    return out


def _edges() -> dict[tuple[str, str], list[str]]:
    """(importer unit, imported unit) → the files that make the edge."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        unit = _unit(path)
        for target in _imports(path) - {unit}:
            edges.setdefault((unit, target), []).append(str(path.relative_to(PACKAGE)))
    return edges


LAYER_OF = {name: i for i, names in enumerate(LAYERS) for name in names}


def test_every_unit_has_a_layer() -> None:
    units = {_unit(p) for p in PACKAGE.rglob("*.py")}
    missing = sorted(units - set(LAYER_OF))
    assert not missing, f"place these in LAYERS and docs/architecture.md: {missing}"


def test_no_import_points_to_a_higher_layer() -> None:
    upward = {
        (a, b): files
        for (a, b), files in _edges().items()
        if LAYER_OF.get(b, -1) > LAYER_OF.get(a, 99)
    }
    new = {edge: files for edge, files in upward.items() if edge not in KNOWN}
    assert not new, f"imports above their layer (docs/architecture.md): {new}"
    fixed = sorted(set(KNOWN) - set(upward))
    assert not fixed, f"fixed, remove from KNOWN: {fixed}"


def test_no_cycles_within_a_layer() -> None:
    graph: dict[str, set[str]] = {}
    for a, b in _edges():
        if LAYER_OF.get(a) == LAYER_OF.get(b):
            graph.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str) -> bool:
        seen, stack = set(), [start]
        while stack:
            node = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    cycles = sorted((a, b) for a in graph for b in graph[a] if reaches(b, a))
    assert not cycles, f"import cycles inside a layer: {cycles}"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The parser finds both import forms (the test can fail)."""
    source = tmp_path / "m.py"
    source.write_text("from infsim.sim.engine import simulate\nimport infsim.cost.base\n"
                      "from infsim import api\n")  # fmt: skip
    assert _imports(source) == {"sim", "cost", "api"}
