"""The shape of the house (ARCHITECTURE.md): imports flow one way, streamlit stays in the UI.

Imports are read as text (ast), including those inside functions, so a lazy import that
closes a loop counts as much as a top-level one.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "insight"

# ARCHITECTURE.md, "Which way imports go": a module may import its own row or a row above.
RANK = {
    "errors": 0, "_version": 0, "launch": 0, "patterns": 0, "shipped": 0, "paths": 0, "serving": 0,
    "remote": 0, "results": 0,
    "model": 1,
    "data": 2,
    "probe": 3,
    "projector": 4, "curves": 4, "compiler": 4, "profiler": 4, "compare": 4,
    "doctor": 5, "callbacks": 5,
    "figures": 6,
    "panels": 7,
    "export": 8, "testing": 8, "cli": 8, "ui": 8, "__main__": 8,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module name `path` imports, resolved to absolute names."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                head = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(head + ([base] if base else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same tree it imports (a package's own parents left out:
    a submodule importing its package is how Python imports it anyway)."""
    files = {module_name(f): f for f in sorted(root.rglob("*.py"))}
    return {m: {n for n in imported(f) if n in files and n != m and not m.startswith(n + ".")}
            for m, f in files.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_no_import_cycles():
    assert find_cycles(import_graph(PACKAGE)) == []


def test_the_cycle_check_finds_a_cycle(tmp_path):
    pkg = tmp_path / "insight"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "one.py").write_text("def f():\n    from insight.b import g\n")
    (pkg / "b.py").write_text("from insight.a.one import f\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        cycles = find_cycles(import_graph(pkg))
    finally:
        ROOT = saved
    assert cycles == [["insight.a.one", "insight.b", "insight.a.one"]]


def test_imports_flow_one_way():
    wrong = []
    for mod, deps in import_graph(PACKAGE).items():
        if mod == "insight":  # the public API names everything, lazily
            continue
        rank = RANK[mod.split(".")[1]]
        wrong += [f"{mod} -> {d}" for d in deps
                  if d != "insight" and RANK[d.split(".")[1]] > rank]
    assert wrong == []


def test_every_module_has_a_row():
    tops = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
            if (p.suffix == ".py" and p.name != "__init__.py")
            or (p.is_dir() and (p / "__init__.py").exists())}
    assert tops - set(RANK) == set(), "add the new module or package to RANK and ARCHITECTURE.md"


@pytest.mark.parametrize("tree", ["insight", "app_pages"])
def test_streamlit_only_in_the_ui_and_pages(tree):
    outside = []
    for path in sorted((ROOT / tree).rglob("*.py")):
        mod = module_name(path)
        uses = any(n.split(".")[0] == "streamlit" for n in imported(path))
        if uses and not mod.startswith(("insight.ui.", "app_pages.")) and mod != "insight.ui":
            outside.append(mod)
    assert outside == []


def test_no_private_name_imported_across_modules():
    """`from insight.x import _name` couples two modules through a name one of them calls
    private; make it public or keep it in one module. Private modules (`_tfrecord`) are
    fine: their names are the package's own business."""
    modules = set(import_graph(PACKAGE))
    found = []
    for tree in ("insight", "app_pages", "tests", "benchmarks"):
        for path in sorted((ROOT / tree).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("insight"):
                    found += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}"
                              for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")
                              and f"{node.module}.{a.name}" not in modules]
    assert found == []


def test_every_package_ships_in_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    packages = {module_name(p.parent) for p in PACKAGE.rglob("__init__.py")}
    assert packages - listed == set()
    assert config["package-dir"] == {"insight.sample_models": "sample_models",
                                     "insight.app_pages": "app_pages"}
    assert {p.stem for p in (ROOT / "app_pages").glob("*.py")} >= {
        "overview", "activations", "gradients", "embeddings", "training", "profiler",
        "compiler"}
