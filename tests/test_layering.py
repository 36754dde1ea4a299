"""The import graph of course_utils, read from the source (every import statement, also those inside functions):
no cycle, and no module imports a layer above its own (:data:`LAYERS`, bottom to top)."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "course_utils"

LAYERS = [
    ("core", {"course_utils", "core", "device"}),
    ("data and models", {"data", "models", "forbidden", "cluster"}),
    ("explainers", {"explainers"}),
    ("metrics", {"metrics"}),
    ("plotting", {"plotting"}),
    ("evaluation and training", {"evaluate", "train", "variations"}),
    ("exercises", {"exercises"}),
    ("self-check and grading", {"selfcheck", "unwritten", "grading"}),
    ("widgets", {"widgets"}),
    ("authoring", {"authoring", "course", "notebook_tools", "book"}),
]
SIDE_BY_SIDE = ("selfcheck", "grading")
"""Same layer, independent: neither imports the other."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of the kit it imports}``; ``from package import name`` counts the submodule ``name``."""
    files = {module_name(f): f for f in PACKAGE.rglob("*.py")}
    graph = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                imported.add(base)
                imported.update(f"{base}.{alias.name}" for alias in node.names)
        graph[module] = {name for name in imported if name in files and name != module}
    return graph


def top(module: str) -> str:
    """The folder or file of ``course_utils`` that ``module`` is in (``course_utils`` itself for the package)."""
    return module.split(".")[1] if "." in module else module


def layer_of(module: str) -> int:
    ranks = [rank for rank, (_, members) in enumerate(LAYERS) if top(module) in members]
    assert len(ranks) == 1, f"{module} belongs to {len(ranks)} layers; add its folder or file to LAYERS once."
    return ranks[0]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [f"{module} ({LAYERS[layer_of(module)][0]}) imports {name} ({LAYERS[layer_of(name)][0]})"
            for module, names in sorted(graph.items()) for name in sorted(names) if layer_of(name) > layer_of(module)]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules (first = last), or None (depth-first search)."""
    state, path = {}, []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for name in sorted(graph.get(module, ())):
            if state.get(name) == "open":
                return path[path.index(name):] + [name]
            if name not in state:
                cycle = visit(name)
                if cycle:
                    return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


GRAPH = import_graph()


def test_every_module_has_a_layer():
    for module in GRAPH:
        layer_of(module)


def test_no_module_imports_a_layer_above_its_own():
    assert upward_imports(GRAPH) == [], "move the shared code down a layer"


def test_the_import_graph_has_no_cycle():
    assert find_cycle(GRAPH) is None


def test_self_check_and_grading_stand_side_by_side():
    crossing = [(module, name) for module, names in GRAPH.items() for name in names
                if {top(module), top(name)} == set(SIDE_BY_SIDE)]
    assert crossing == []


def test_the_checks_see_a_planted_upward_import_and_cycle():
    planted = {"course_utils.core.checks": {"course_utils.grading.score"},
               "course_utils.grading.score": {"course_utils.exercises.spec"},
               "course_utils.exercises.spec": {"course_utils.core.checks"}}
    assert upward_imports(planted) == ["course_utils.core.checks (core) imports course_utils.grading.score "
                                       "(self-check and grading)"]
    assert find_cycle(planted) == ["course_utils.core.checks", "course_utils.grading.score",
                                   "course_utils.exercises.spec", "course_utils.core.checks"]
    assert "course_utils.selfcheck" in GRAPH and "course_utils.exercises.spec" in GRAPH["course_utils.grading.rubric"]
