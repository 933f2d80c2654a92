"""The layout rules of the house (docs/architecture.md), read from the code's own syntax trees.

* The installed packages (``facet``, ``tensorproducts``) never read code from the checkout: no
  module loaded by file path (``importlib.util.spec_from_file_location``), no path built from a
  ``"scripts"`` folder, no import of a module of ``scripts/``.
* No ``sys.path`` edits anywhere (packages, scripts, tests): code is reached by importing the
  installed packages; a script's own folder is on its path only because Python puts it there.
* ``scripts/`` holds thin entry points: no private modules (``scripts/_*.py``) and no script
  importing another script.
* ``tensorproducts`` stands alone: outside its benchmark (``tensorproducts.bench``) it imports
  neither facet nor its benchmark.
* No import cycle among the modules of ``facet`` and of ``tensorproducts`` (every import counts,
  also those inside functions).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("facet", "tensorproducts")
SCRIPTS = {p.stem for p in (ROOT / "scripts").glob("*.py")}

#: The one cycle still open, being taken apart this session (issue 19: the calculator imports
#: the training package to load a model, which imports the root package, whose lazy exports
#: import the calculator). A cycle among these modules only is tolerated; any other fails.
def _open_cycle(modules: list[str]) -> bool:
    return all(m in ("facet", "facet.calculator") or m.startswith("facet.train.") for m in modules)


#: Files that still edit sys.path, with the reason (each one is an open item of issue 19).
OPEN_SYS_PATH = {
    "tests/edges/conftest.py": "reaches helpers of tests/dynamics, data, train (issue 17 suite)",
}
#: Scripts that still import a sibling script, with the reason.
OPEN_SCRIPT_IMPORTS = {
    "ab_train_step.py": "new this session, imports profile_train_step; belongs in facet/bench",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


def _trees(*folders: str):
    for path in _sources(*folders):
        yield path, ast.parse(path.read_text(), filename=str(path))


MODULES = {_module_name(p): p for p in _sources(*PACKAGES)}


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of ``from ...x import y`` in ``module``."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if MODULES[module].name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imported(module: str, tree: ast.AST) -> set[str]:
    """Every module of the packages that ``module`` imports (anywhere in its body)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            names = subs + ([base] if len(subs) < len(node.names) else [])
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def _top_names(tree: ast.AST) -> set[str]:
    """First components of every absolute import of a file."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _sys_path_edits(tree: ast.AST) -> list[int]:
    """Lines that change ``sys.path`` (a call of its methods, an assignment, pytest's
    ``syspath_prepend``)."""
    lines = []
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "syspath_prepend":
                lines.append(node.lineno)
            target = node.func.value
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            target = next((t for t in targets if isinstance(t, ast.Attribute)), None)
        if (
            isinstance(target, ast.Attribute)
            and target.attr == "path"
            and isinstance(target.value, ast.Name)
            and target.value.id == "sys"
        ):
            lines.append(node.lineno)
    return lines


def test_the_packages_read_no_code_from_the_checkout():
    bad = []
    for path, tree in _trees(*PACKAGES):
        docs = _docstrings(tree)
        rel = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "spec_from_file_location":
                bad.append(f"{rel}:{node.lineno}: module loaded by file path")
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and (node.value == "scripts" or node.value.startswith("scripts/"))
            ):
                bad.append(f"{rel}:{node.lineno}: path into scripts/ ({node.value!r})")
        if found := _top_names(tree) & SCRIPTS:
            bad.append(f"{rel}: imports {sorted(found)} of scripts/")
    assert not bad, "\n".join(bad)


def test_tests_import_no_script():
    bad = [
        f"{p.relative_to(ROOT)}: imports {sorted(_top_names(t) & SCRIPTS)} of scripts/"
        for p, t in _trees("tests")
        if _top_names(t) & SCRIPTS
    ]
    assert not bad, "\n".join(bad)


def test_no_sys_path_edits_anywhere():
    bad = [
        f"{p.relative_to(ROOT)}:{line}"
        for p, t in _trees(*PACKAGES, "scripts", "tests")
        if str(p.relative_to(ROOT)) not in OPEN_SYS_PATH
        for line in _sys_path_edits(t)
    ]
    assert not bad, "sys.path edited at:\n" + "\n".join(bad)


def test_scripts_are_thin_entry_points():
    private = sorted(p.name for p in (ROOT / "scripts").rglob("_*.py"))
    assert not private, f"private modules in scripts/: {private}"
    siblings = {
        p.name: sorted(_top_names(t) & (SCRIPTS - {p.stem}))
        for p, t in _trees("scripts")
        if _top_names(t) & (SCRIPTS - {p.stem}) and p.name not in OPEN_SCRIPT_IMPORTS
    }
    assert not siblings, f"scripts importing other scripts: {siblings}"


def test_tensorproducts_stands_alone():
    bad = []
    for path, tree in _trees("tensorproducts"):
        module = _module_name(path)
        if module.startswith("tensorproducts.bench"):
            continue
        if "facet" in _top_names(tree):
            bad.append(f"{module} imports facet")
        if bench := {m for m in _imported(module, tree) if m.startswith("tensorproducts.bench")}:
            bad.append(f"{module} imports its benchmark {sorted(bench)}")
    assert not bad, "\n".join(bad)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imported(_module_name(p), t) for p, t in _trees(*PACKAGES)}


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert not _open_cycle(["facet.calculator", "facet.bench.summary"])


def test_no_import_cycles_in_the_packages():
    cycles = [c for c in _cycles(_graph()) if not _open_cycle(c)]
    assert not cycles, f"import cycles: {cycles}"


def test_tensorproducts_imports_without_facet_or_its_benchmark():
    """At run time too: the variants (all in the registry) and the expressivity measures import
    with ``facet`` and ``tensorproducts.bench`` made unimportable."""
    import subprocess
    import sys

    code = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'facet' or name.startswith(('facet.', 'tensorproducts.bench')):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import tensorproducts, tensorproducts.expressivity\n"
        "print(len(tensorproducts.REGISTRY))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=ROOT / "docs")  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout) >= 7
