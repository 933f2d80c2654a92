"""References from a summary statement to the numbers of a report's JSON.

A reference is ``{"file": <path relative to the root>, "path": [key, index, ...]}`` for a value
stored in the JSON, or ``{"file", "rows": <list key>, "where": {field: value}, "num": <field>,
"den": <field or None>}`` for the median of ``num / den`` over the matching rows (warm-up rows
excluded). :func:`resolve` evaluates a reference, so a test can check that every number on the
summary page equals the JSON it came from. A :func:`finding` compares Facet with a peer on one
axis; its ``ratio`` is always ``Facet's cost / the peer's cost`` (time, error, parameters): below
1 Facet is ahead. A :func:`note` is a statement without a comparison.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from .common import read_json


def _get(obj, path):
    for k in path:
        obj = obj[k]
    return obj


def resolve(root: Path, ref: dict, cache: dict | None = None) -> float:
    """The number a reference points at (see the module docstring)."""
    cache = {} if cache is None else cache
    f = ref["file"]
    if f not in cache:
        cache[f] = read_json(Path(root) / f, "a benchmark report's JSON")
    data = cache[f]
    if "path" in ref:
        return _get(data, ref["path"])
    vals = [
        r[ref["num"]] / (r[ref["den"]] if ref.get("den") else 1.0)
        for r in _get(data, [ref["rows"]])
        if not r.get("warmup")
        and all(r.get(k) == v for k, v in ref["where"].items())
        and r.get(ref["num"]) is not None
    ]
    if not vals:
        raise ValueError(f"{f}: no rows match {ref['where']}")
    return statistics.median(vals)


def finding(
    axis, peer, what, facet_ref, peer_ref, root, unit, scale=1.0, cache=None, higher_is_better=False
) -> dict:
    """Facet vs peer on one axis; values resolved from their references (``scale``: display).

    ``ratio`` is Facet's cost over the peer's: ``facet / peer`` for costs (time, error,
    parameters), ``peer / facet`` for rates (``higher_is_better``).
    """
    fv, pv = resolve(root, facet_ref, cache), resolve(root, peer_ref, cache)
    ratio = (pv / fv if fv else None) if higher_is_better else (fv / pv if pv else None)
    return {
        "axis": axis,
        "peer": peer,
        "what": what,
        "unit": unit,
        "scale": scale,
        "facet": fv,
        "peer_value": pv,
        "ratio": ratio,
        "higher_is_better": higher_is_better,
        "refs": {"facet": facet_ref, "peer": peer_ref},
    }


def note(axis, peer, text) -> dict:
    """A statement without a comparison (peer skipped, no recorded run, Facet-only axis)."""
    return {"axis": axis, "peer": peer, "note": text}
