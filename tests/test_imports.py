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


# -- the layers: each stage imports only the stages below it ------------------------------------------------------

# From the bottom up; a module may import its own layer's modules and those of the layers below. `report` sits
# beside `sweep` (the sweep writes the report) but reads only what LAYER_LIMITS allows; `bench` measures everything
# and nothing imports it.
LAYERS = (
    ("elgan_ray.errors", "elgan_ray.files", "elgan_ray.lock", "elgan_ray.plain_yaml"),
    ("elgan_ray.config", "elgan_ray.presets"),
    ("elgan_ray.record",),
    ("elgan_ray.data", "elgan_ray.models"),
    ("elgan_ray.evaluate",),
    ("elgan_ray.study",),
    ("elgan_ray.train",),
    ("elgan_ray.predict",),
    ("elgan_ray.report",),
    ("elgan_ray.sweep",),
    ("elgan_ray.bench",),
)
# Stages that may import less than the layers below them allow.
LAYER_LIMITS = {
    "elgan_ray.report": (
        "elgan_ray.errors",
        "elgan_ray.files",
        "elgan_ray.config",
        "elgan_ray.record",
        "elgan_ray.data.labels",
        "elgan_ray.evaluate",
        "elgan_ray.report",
    ),
}
# Third-party packages a stage must not import, anywhere in its modules (lazily included).
FORBIDDEN = {
    "ray": lambda module: not module.startswith(("elgan_ray.sweep", "elgan_ray.bench")),
    "torch": lambda module: module.startswith(
        ("elgan_ray.record", "elgan_ray.evaluate", "elgan_ray.study", "elgan_ray.report")
    ),
}


def layer_of(module: str) -> int:
    """The index in LAYERS of the stage a module belongs to (the package itself: below everything)."""
    for index, stages in enumerate(LAYERS):
        if any(module == stage or module.startswith(stage + ".") for stage in stages):
            return index
    raise AssertionError(f"{module} is in no layer of LAYERS: add it")


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """'a -> b' for every import of a module from a higher layer, or outside its stage's LAYER_LIMITS."""
    bad = []
    for module, targets in graph.items():
        if module == "elgan_ray":
            continue
        stage = next((s for s in LAYER_LIMITS if module == s or module.startswith(s + ".")), None)
        for target in sorted(targets - {"elgan_ray"}):
            if layer_of(target) > layer_of(module):
                bad.append(f"{module} -> {target} (a higher layer)")
            elif stage and not any(target == a or target.startswith(a + ".") for a in LAYER_LIMITS[stage]):
                bad.append(f"{module} -> {target} (not in {stage}'s limits)")
    return bad


def third_party_imports(package: Path) -> dict[str, set[str]]:
    """Module -> the top-level third-party names it imports anywhere in its file."""
    found = {}
    for name, (path, _) in modules(package).items():
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names.add(node.module.split(".")[0])
        found[name] = names
    return found


def test_every_import_goes_down_the_layers():
    graph = import_graph(PACKAGE)
    assert not layer_violations(graph), "\n".join(layer_violations(graph))


def test_the_layer_check_sees_an_import_against_the_layers():
    graph = {"elgan_ray.record.names": {"elgan_ray.train.loop"}, "elgan_ray.report.tables": {"elgan_ray.study.plan"}}
    assert layer_violations(graph) == [
        "elgan_ray.record.names -> elgan_ray.train.loop (a higher layer)",
        "elgan_ray.report.tables -> elgan_ray.study.plan (not in elgan_ray.report's limits)",
    ]


def test_ray_only_in_the_sweep_and_no_torch_in_the_evaluator_study_record_or_report():
    imports = third_party_imports(PACKAGE)
    bad = [
        f"{m} imports {name}"
        for m, names in imports.items()
        for name, banned in FORBIDDEN.items()
        if name in names and banned(m)
    ]
    assert not bad, bad
    assert "ray" in imports["elgan_ray.sweep.tune"] and "torch" in imports["elgan_ray.train.loop"]  # the walk sees them


def test_every_package_says_what_its_modules_hold():
    """Each sub-package's __init__.py names every module of the package (one line each)."""
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        missing = [p.name for p in sorted(init.parent.glob("*.py")) if p.name != "__init__.py" and p.name not in doc]
        assert not missing, f"{init.relative_to(PACKAGE.parent)} does not name {missing}"


def test_the_package_top_holds_at_most_ten_modules():
    assert len([p for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]) <= 10


def test_the_readme_layout_names_every_module():
    readme = (PACKAGE.parent / "README.md").read_text()
    layout = readme[readme.index("## Layout") :].split("```")[1]
    missing = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py") and path.name not in layout
    ]
    assert not missing, missing
