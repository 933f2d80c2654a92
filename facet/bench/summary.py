"""``docs/benchmarks/README.md``: where Facet stands against each peer on each axis.

Every statement is computed from a report's JSON by one registered extractor
(:data:`EXTRACTORS`, name -> function of the reports' root folder) and carries a reference to
each number it quotes: ``{"file": <path relative to the root>, "path": [key, index, ...]}`` for a
value stored in the JSON, or ``{"file", "rows": <list key>, "where": {field: value},
"num": <field>, "den": <field or None>}`` for the median of ``num / den`` over the matching
rows (warm-up rows excluded). :func:`resolve` evaluates a reference, so a test can check that
every number on the page equals the JSON it came from. ``ratio`` is always
``Facet's cost / the peer's cost`` (time, error, parameters): below 1 Facet is ahead.

Regenerate after any report changes: ``facet bench summary`` (``--quick`` for the quick runs).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

from .common import fmt, md_table, read_json, write_json

EXTRACTORS: dict[str, Callable[[Path], list[dict]]] = {}

#: Reports linked from the page: (folder, title).
REPORTS = (
    ("tp", "Tensor products"),
    ("model", "Model throughput and cost split"),
    ("scaling", "Scaling with size, channels, L; FLOP rate"),
    ("dynamics", "MD and relaxation speed (md, relax)"),
    ("train", "Training throughput"),
    ("accuracy", "Accuracy at equal training time"),
    ("sevennet_trim", "SevenNet-0 trimming"),
    ("scaling/h200", "Scaling on an NVIDIA H200 (GPU run of `facet bench scaling`)"),
)
#: Reports listed only when present (no selection of their own).
OPTIONAL = {"sevennet_trim", "scaling/h200"}


def extractor(name: str):
    def register(fn):
        if name in EXTRACTORS:
            raise ValueError(f"summary extractor {name!r} already registered")
        EXTRACTORS[name] = fn
        return fn

    return register


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


# ----------------------------------------------------------------------------- the page
def build(root: Path) -> dict:
    """Findings of every extractor whose report exists under ``root``; errors kept by name."""
    from . import summary_sources  # noqa: F401 - registers the extractors

    root = Path(root)
    out: dict = {"findings": {}, "missing": {}, "errors": {}}
    for name, fn in EXTRACTORS.items():
        try:
            out["findings"][name] = fn(root)
        except FileNotFoundError as e:
            out["missing"][name] = str(e)
        except (KeyError, ValueError, TypeError, IndexError) as e:
            out["errors"][name] = f"{type(e).__name__}: {e}"
    return out


def _cell(x, scale):
    return fmt(x * scale) if isinstance(x, int | float) else fmt(x)


def _verdict(ratio):
    if ratio is None:
        return "n/a"
    if abs(ratio - 1.0) < 0.05:
        return f"{ratio:.2f}x: par"
    return f"{ratio:.2f}x: **Facet ahead**" if ratio < 1 else f"{ratio:.2f}x: **Facet behind**"


def write_page(root: Path, *, command: str, date: str) -> Path:
    """``README.md`` and ``summary.json`` in ``root`` (see the module docstring)."""
    root = Path(root)
    res = build(root)
    write_json(root / "summary.json", {"command": command, "date_utc": date, **res})
    lines = [
        "# Facet benchmarks: summary",
        "",
        f"Generated by `{command}` on {date} from the JSON of every report below; each number "
        "is traceable (`summary.json` holds a reference to the value in its source file). "
        "Ratio = Facet's cost / the peer's cost (time per step, seconds per structure, "
        "error, parameters): below 1 Facet is ahead, above 1 it loses. The machines these "
        "ran on and their load are stated in each report; ratios come from interleaved "
        "runs on the same machine.",
        "",
        "## Reports",
        "",
    ]
    for folder, title in REPORTS:
        page = next((p for p in ("report.md", "README.md") if (root / folder / p).exists()), None)
        if page:
            lines.append(f"- [{title}]({folder}/{page})")
        elif folder not in OPTIONAL:
            lines.append(f"- {title}: no report yet (`facet bench {folder}`)")
    comp = [(n, f) for n, fs in res["findings"].items() for f in fs if "ratio" in f]
    lines += ["", "## Where Facet stands", ""]
    lines += md_table(
        ["axis", "peer", "comparison", "Facet", "peer", "Facet / peer"],
        [
            [
                f["axis"],
                f["peer"],
                f["what"],
                _cell(f["facet"], f["scale"]),
                _cell(f["peer_value"], f["scale"]),
                _verdict(f["ratio"]),
            ]
            for _, f in comp
        ],
    )
    behind = [f for _, f in comp if f["ratio"] and f["ratio"] > 1.05]
    ahead = [f for _, f in comp if f["ratio"] and f["ratio"] < 0.95]
    lines += [
        "",
        f"Facet is ahead in {len(ahead)} and behind in {len(behind)} of {len(comp)} comparisons.",
    ]
    if behind:
        lines += ["", "Where Facet loses:", ""]
        lines += [
            f"- {f['axis']}, {f['what']}: {_cell(f['facet'], f['scale'])} vs "
            f"{_cell(f['peer_value'], f['scale'])} {f['unit']} ({f['ratio']:.2f}x)"
            for f in behind
        ]
    notes = [f for fs in res["findings"].values() for f in fs if "note" in f]
    if notes:
        lines += ["", "## Other figures and skipped comparisons", ""]
        lines += [f"- {f['axis']} ({f['peer']}): {f['note']}" for f in notes]
    for name, msg in {**res["missing"], **res["errors"]}.items():
        lines.append(f"- {name}: not summarised ({msg})")
    path = root / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path
