"""House rule of issue 19: no function over 80 lines in ``facet/`` or ``tensorproducts/``
without a reason written down, read from the code's syntax trees.

:data:`LONG_FUNCTIONS` is that written reason for each function still over the limit; a new long
function fails with its place and length, and a listed one that is no longer long (or no longer
exists) fails too, so that the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("facet", "tensorproducts")
MAX_LINES = 80

#: ``"path:function"`` -> why it is still longer than :data:`MAX_LINES` (or who takes it apart).
LONG_FUNCTIONS = {
    # Benchmark and study reports: one linear document, section after section; splitting them
    # into functions per section is the open item (issue 19, benchmarks).
    "tensorproducts/bench/pof.py:_worker": "benchmark worker process (open, issue 19)",
    # Library code in other areas of issue 19 (dynamics, CLI): open items there.
}


def _long_functions() -> dict[str, int]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            rel = path.relative_to(ROOT).as_posix()
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    n = node.end_lineno - node.lineno + 1
                    if n > MAX_LINES:
                        out[f"{rel}:{node.name}"] = n
    return out


def test_no_unexplained_long_function():
    found = _long_functions()
    new = {k: n for k, n in found.items() if k not in LONG_FUNCTIONS}
    assert not new, (
        f"functions over {MAX_LINES} lines without a reason in LONG_FUNCTIONS "
        f"(split them, or write the reason there): {new}"
    )


def test_long_function_list_is_current():
    stale = sorted(set(LONG_FUNCTIONS) - set(_long_functions()))
    assert not stale, (
        f"no longer over {MAX_LINES} lines (or gone): remove from LONG_FUNCTIONS: {stale}"
    )
