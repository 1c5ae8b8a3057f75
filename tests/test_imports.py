"""The package's shape: imports between elgan_ray's modules go one way (no cycle), and no module is over
MAX_LINES lines (one past that is probably doing two jobs: split it by job, not by size).

Every import counts, at the top of a module or inside a function: a lazy import is still a dependency that a
reader follows. `import elgan_ray.a.b`, `from elgan_ray.a import b` (b a module, else the package a), relative
imports and importlib.import_module("elgan_ray...") are edges. The parent packages that Python imports on
the way (elgan_ray/__init__.py, data/__init__.py) are not: they run first and are not a module's dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "elgan_ray"
MAX_LINES = 400


def modules(package: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__.py), for every .py file of the package."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_init else parts)] = (path, is_init)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its file."""
    known = modules(package)
    root = package.name

    def existing(name: str) -> str | None:
        while name and name not in known:  # elgan_ray.a.SomeName -> elgan_ray.a
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, (path, is_init) in known.items():
        here = name if is_init else name.rpartition(".")[0]  # the package relative imports start from
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {existing(alias.name) for alias in node.names if alias.name.split(".")[0] == root}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                if module.split(".")[0] != root:
                    continue
                for alias in node.names:
                    full = f"{module}.{alias.name}"
                    targets.add(full if full in known else existing(module))
            elif isinstance(node, ast.Call) and _imports_by_name(node, root):
                targets.add(existing(node.args[0].value))
        graph[name] = {t for t in targets if t and t != name}
    return graph


def _imports_by_name(call: ast.Call, root: str) -> bool:
    """importlib.import_module("elgan_ray....") or __import__("elgan_ray....") with a literal name."""
    func = call.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
    return (
        called in ("import_module", "__import__")
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
        and call.args[0].value.split(".")[0] == root
    )


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None when the graph is acyclic (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycle_in_the_package():
    graph = import_graph(PACKAGE)
    # The walk sees top-level, lazy and package imports (else an empty graph would pass).
    assert "elgan_ray.report.frame" in graph["elgan_ray.report.plots"]  # top level
    assert "elgan_ray.report.plots" in graph["elgan_ray.report"]  # inside write_report
    assert "elgan_ray.sweep.tune" in graph["elgan_ray.sweep.__main__"]  # inside run_study
    assert "elgan_ray.models.tiramisu" in graph["elgan_ray.models"]  # a package's __init__
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_walk_finds_lazy_relative_and_by_name_cycles(tmp_path):
    package = tmp_path / "elgan_ray"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import c\n")
    (package / "a.py").write_text("def f():\n    from elgan_ray.sub.c import g\n")  # lazy
    (package / "sub" / "c.py").write_text("from .. import b\n")  # relative
    (package / "b.py").write_text("import importlib\nimportlib.import_module('elgan_ray.a')\n")  # by name
    graph = import_graph(package)
    assert graph == {
        "elgan_ray": set(),
        "elgan_ray.a": {"elgan_ray.sub.c"},
        "elgan_ray.b": {"elgan_ray.a"},
        "elgan_ray.sub": {"elgan_ray.sub.c"},
        "elgan_ray.sub.c": {"elgan_ray.b"},
    }
    assert find_cycle(graph) == ["elgan_ray.a", "elgan_ray.sub.c", "elgan_ray.b", "elgan_ray.a"]
    (package / "b.py").write_text("import elgan_ray\n")  # the cycle broken: b needs only the package
    assert find_cycle(import_graph(package)) is None


def test_no_module_is_over_max_lines():
    lengths = {
        path.relative_to(PACKAGE.parent): len(path.read_text().splitlines()) for path, _ in modules(PACKAGE).values()
    }
    assert len(lengths) > 30
    assert {str(path): n for path, n in lengths.items() if n > MAX_LINES} == {}
