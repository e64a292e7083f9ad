"""The package layout: no import cycles, and the README's layout section names every subpackage."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("jobs", "lf_library", "labelmodel")


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = path
    return mods


def import_graph() -> dict[str, set[str]]:
    """Edges from each project module to the project modules it imports, anywhere in its body."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rsplit(".", 1)[0] if "." in target else ""
                if target and target != mod:
                    graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_project():
    graph = import_graph()
    assert len(graph) > 40
    assert "jobs.runtime.config" in graph["jobs.apply_lfs"]


def test_cycle_detection_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_jobs_subpackages_are_in_the_readme_layout():
    readme = (ROOT / "README.md").read_text()
    subpackages = sorted(p.parent.name for p in (ROOT / "jobs").glob("*/__init__.py"))
    assert subpackages, "no subpackages found under jobs/"
    for name in subpackages:
        assert f"jobs/{name}/" in readme, f"README's layout section does not describe jobs/{name}/"
    for job in ("apply_lfs", "aggregate", "fit_label_model", "write_labels", "pipeline"):
        assert (ROOT / "jobs" / f"{job}.py").exists()


def test_the_stage_jobs_never_import_the_cli():
    graph = import_graph()
    for mod, deps in graph.items():
        if mod != "jobs.cli":
            assert "jobs.cli" not in deps, f"{mod} imports jobs.cli"


def test_the_readme_layout_names_every_module_of_jobs_and_lf_library():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### Layout", 1)[1].split("### Tests and notes", 1)[0]
    missing = [f"jobs/{p.name}" for p in sorted((ROOT / "jobs").glob("*.py"))
               if p.stem != "__init__" and f"{p.name} " not in block]
    for pkg in [*sorted(p.parent for p in (ROOT / "jobs").glob("*/__init__.py")), ROOT / "lf_library"]:
        missing += [str(p.relative_to(ROOT)) for p in sorted(pkg.glob("*.py"))
                    if p.stem != "__init__" and f"`{p.stem}`" not in block]
    assert not missing, f"README's layout section does not name {missing}: add a line or a word for each"
