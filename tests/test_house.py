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
* The inference side (the calculator, model loading, checkpoints, dynamics) never reaches the
  training package, directly or through other modules.
* Registries are tables written out where they are defined: no module fills one by a call at
  import time.
* In the modules of part B of issue 19 (``facet.dynamics``, ``facet.model_io``,
  ``facet.checkpoint``, ``facet.calculator``, ``facet.predict``, ``facet.lammps``): imports at
  the top of the module except the lazy ones listed with their measured reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("facet", "tensorproducts")
SCRIPTS = {p.stem for p in (ROOT / "scripts").glob("*.py")}

#: Files that still edit sys.path, with the reason (each one is an open item of issue 19).
OPEN_SYS_PATH = {
    "tests/edges/conftest.py": "reaches helpers of tests/dynamics, data, train (issue 17 suite)",
}
#: Scripts that still import a sibling script, with the reason.
OPEN_SCRIPT_IMPORTS: dict[str, str] = {}


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


def test_tests_import_no_conftest_and_their_helpers_have_distinct_names():
    """Test folders are not packages, so ``conftest`` and the helper modules are imported by
    their bare name: ``from conftest import`` gets whichever conftest pytest loaded last
    (``pytest tests/train tests/edges`` failed at collection so), and two helpers of one name
    would shadow each other the same way."""
    bad = [f"{p.relative_to(ROOT)}: imports conftest by name (put shared helpers in a module)"
           for p, t in _trees("tests") if "conftest" in _top_names(t)]
    seen: dict[str, Path] = {}
    for p in _sources("tests"):
        if p.name == "conftest.py":
            continue
        if p.stem in seen:
            bad.append(f"{p.relative_to(ROOT)} and {seen[p.stem].relative_to(ROOT)}: same name")
        seen[p.stem] = p
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


def test_no_import_cycles_in_the_packages():
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles: {cycles}"


#: The inference side: none of these may reach ``facet.train`` through any chain of imports.
INFERENCE = ("facet.calculator", "facet.model_io", "facet.model_spec", "facet.checkpoint",
             "facet.dynamics", "facet.predict", "facet.lammps",
             "facet.physics", "facet.nn", "facet.data")


def _reach(edges: dict[str, set[str]], start: str) -> dict[str, str]:
    """Every module reachable from ``start`` -> the module that imports it on one path."""
    seen, todo = {start: ""}, [start]
    while todo:
        m = todo.pop()
        for n in sorted(edges.get(m, ())):
            if n not in seen:
                seen[n] = m
                todo.append(n)
    return seen


def test_reach_finds_a_chain():
    assert _reach({"a": {"b"}, "b": {"c"}}, "a") == {"a": "", "b": "a", "c": "b"}


def test_the_inference_side_never_reaches_the_training_package():
    edges = _graph()
    bad = []
    for start in sorted(m for m in edges if m.startswith(INFERENCE)):
        seen = _reach(edges, start)
        for m in sorted(seen):
            if m == "facet.train" or m.startswith("facet.train."):
                chain = [m]
                while seen[chain[-1]]:
                    chain.append(seen[chain[-1]])
                bad.append(" <- ".join(chain))
                break
    assert not bad, "the inference side reaches facet.train:\n" + "\n".join(bad)


#: Modules that still fill a registry by a call at import time, with the reason (none left).
OPEN_REGISTRY_CALLS: dict[str, str] = {}


def test_registries_are_tables_not_import_side_effects():
    bad = []
    for path, tree in _trees(*PACKAGES):
        rel = str(path.relative_to(ROOT))
        if rel in OPEN_REGISTRY_CALLS:
            continue
        for node in tree.body:
            call = node.value if isinstance(node, ast.Expr) else None
            if isinstance(call, ast.Call):
                f = call.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                if "register" in name:
                    bad.append(f"{rel}:{node.lineno}: {name}(...) at import time")
    assert not bad, "\n".join(bad)


#: Part B of issue 19: the modules held to "imports at the top" (the 80-line rule for functions is
#: tests/test_house_functions.py, for every module).
TIDY = ("facet/dynamics/", "facet/model_io.py", "facet/model_spec.py", "facet/checkpoint.py",
        "facet/calculator.py", "facet/train/model_io.py",
        "facet/predict.py", "facet/lammps.py")
#: Imports left inside functions there, each with its measured reason.
LAZY_IMPORTS = {
    "jax_md": "32-40 s to import on one core (python -X importtime -c 'import jax_md')",
    "pymatgen.core": "only for pymatgen inputs; pymatgen.io.ase took 3.4 s to import",
    "pymatgen.io.ase": "only for pymatgen inputs; 3.4 s to import",
    "lammps_jax": "an optional dependency (the lammps extra); refused with an install hint",
    "flax": "with e3nn-jax, SymPy and SciPy about 1.5 CPU s: a calculator started from stored "
            "programs (facet.program_cache) never builds the network (issue 18)",
    ".nn.model": "the network (e3nn-jax, SymPy, SciPy), built only when needed (issue 18)",
    ".nn.presets": "its ModelConfig checks import the network (issue 18)",
}


def _tidy_trees():
    for path, tree in _trees("facet"):
        rel = str(path.relative_to(ROOT))
        if rel.startswith(TIDY):
            yield rel, tree


def test_imports_at_the_top_of_the_tidied_modules():
    bad = []
    for rel, tree in _tidy_trees():
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = ["." * node.level + (node.module or "")]
                else:
                    continue
                lazy = {m.split(".")[0] for m in LAZY_IMPORTS if not m.startswith(".")}
                bad += [f"{rel}:{node.lineno}: import {n} inside {fn.name}()"
                        for n in names if n.split(".")[0] not in lazy and n not in LAZY_IMPORTS]
    assert not bad, "\n".join(bad)


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
