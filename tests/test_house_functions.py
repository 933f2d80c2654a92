"""House rule of issue 19: no function over 80 lines in ``facet/`` or ``tensorproducts/``
without a reason written down, read from the code's syntax trees.

:data:`LONG_FUNCTIONS` is that written reason for each function still over the limit, and the
same reason stands beside the function (a ``# Long by design:`` comment directly above its
``def``); a new long function fails with its place and length, a listed one without that comment
fails with its place, and a listed one that is no longer long (or no longer exists) fails too, so
that the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("facet", "tensorproducts")
MAX_LINES = 80

#: ``"path:function"`` -> why it is still longer than :data:`MAX_LINES`; the same reason is
#: written beside the function, in a ``# Long by design:`` comment directly above its ``def``
#: (:data:`MARK`, checked by :func:`test_long_functions_say_why_beside_them`).
LONG_FUNCTIONS = {
    # The research benchmark's worker: it imports the PriceofFreedom checkout (freedom) and runs
    # only in that environment, so a split could not be checked against a run here.
    "tensorproducts/bench/pof.py:_worker": "runs only in the research environment, "
    "which the tests cannot import: a split could not be checked by a run",
}
MARK = "# Long by design:"


def _functions():
    """``(relative path, source lines, function node)`` of every function in :data:`PACKAGES`."""
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            text = path.read_text()
            tree = ast.parse(text, filename=str(path))
            rel = path.relative_to(ROOT).as_posix()
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield rel, text.splitlines(), node


def _comment_above(lines: list[str], node) -> list[str]:
    """The comment lines directly above ``node``'s ``def`` (or its first decorator)."""
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    i = first - 2  # 0-based index of the line above
    block = []
    while i >= 0 and lines[i].lstrip().startswith("#"):
        block.insert(0, lines[i].strip())
        i -= 1
    return block


def _long_functions() -> dict[str, int]:
    out = {}
    for rel, _, node in _functions():
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


def test_long_functions_say_why_beside_them():
    """Every function in :data:`LONG_FUNCTIONS` carries its reason beside it: a comment starting
    with :data:`MARK` in the comment lines directly above its ``def``."""
    missing = []
    for rel, lines, node in _functions():
        key = f"{rel}:{node.name}"
        if key in LONG_FUNCTIONS and not any(
            line.startswith(MARK) for line in _comment_above(lines, node)
        ):
            missing.append(f"{rel}:{node.lineno} ({node.name})")
    assert not missing, f"no '{MARK} ...' comment directly above the def of: {missing}"
