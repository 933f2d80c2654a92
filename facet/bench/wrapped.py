"""Selections that wrap the stand-alone benchmark scripts: ``model``, ``train``, ``accuracy``.

The scripts stay as their owners wrote them; each runs as a subprocess of this interpreter with
its own command line (``scripts/`` of the source checkout, :func:`script_path`). This module turns
their JSON into the common layout (``results.json`` with ``meta`` and ``rows``, ``report.md``,
PNG plots; see :mod:`facet.bench.common`):

* ``model`` runs ``scripts/bench_model.py --json`` (Facet presets: throughput of energy + forces
  + stress, compile time, cost split) and renders its rows.
* ``train`` runs ``scripts/bench_train_peers.py`` (Facet's trainer vs ``mace_run_train``) in full
  mode; ``--quick`` re-renders the committed ``docs/benchmarks/train/train_peers.json``.
* ``accuracy`` runs ``scripts/bench_accuracy.py`` (equal wall-clock training budget) in full mode;
  ``--quick`` re-renders the committed ``docs/benchmarks/accuracy/accuracy.json``.

A missing recorded run, a missing peer environment or a failed script is a row with
``"status": "skipped: <reason>"`` or ``"failed: <reason>"``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .common import fmt, md_table, meta_lines, pyplot, read_json, write_json
from .meta import load_average, row_meta, run_meta


def script_path(name: str) -> Path:
    """``scripts/<name>`` of this source checkout (scripts are not installed with the package)."""
    import facet

    path = Path(facet.__file__).resolve().parent.parent / "scripts" / name
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: `facet bench` runs this selection from a "
                                "source checkout of Facet")  # fmt: skip
    return path


def run_script(name: str, argv: list[str], *, env: dict | None = None) -> tuple[int, str]:
    """Run ``scripts/<name>`` with this Python; output streams through; returns (code, tail)."""
    cmd = [sys.executable, str(script_path(name)), *argv]
    print("[bench] " + " ".join([f"scripts/{name}", *argv]), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, **(env or {})))  # fmt: skip
    tail: list[str] = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        tail = (tail + [line.rstrip()])[-20:]
    return proc.wait(), "\n".join(tail)


# ------------------------------------------------------------------------------------ model
MODEL_QUICK = ["--presets", "facet-s", "--sizes", "2", "--repeats", "3"]
MODEL_FULL = ["--products", "cg-dense", "gaunt-grid", "so2", "--sizes", "2", "3",
              "--repeats", "10"]  # fmt: skip


def model_result(raw: dict | None, meta: dict, status: str = "ok") -> dict:
    """Rows of ``bench_model.py``'s JSON with the run's meta; a failure is one row saying so."""
    if raw is None:
        return {"meta": meta, "rows": [{"kind": "model", "status": status}]}
    extra = row_meta(dtype=meta["dtype"], seed=meta["seed"])
    rows = [{"kind": "model", "status": "ok", **r, **extra} for r in raw.get("rows", [])]
    meta["script_header"] = {k: v for k, v in raw.items() if k != "rows"}
    return {"meta": meta, "rows": rows}


def run_model(out: Path, *, quick: bool, argv: list[str] | None, command: str) -> dict:
    args = list(argv) if argv else (MODEL_QUICK if quick else MODEL_FULL)
    dtype = args[args.index("--dtype") + 1] if "--dtype" in args else "float32"
    meta = run_meta(dtype=dtype, seed=0, quick=quick, command=command)
    meta["script_args"] = args
    raw_path = out / "bench_model.json"
    out.mkdir(parents=True, exist_ok=True)
    code, tail = run_script("bench_model.py", [*args, "--json", str(raw_path)])
    if code != 0 or not raw_path.exists():
        res = model_result(None, meta, f"failed: scripts/bench_model.py exit {code}: {tail[-300:]}")
    else:
        res = model_result(read_json(raw_path, "scripts/bench_model.py --json output"), meta)
    meta["loadavg_end"] = load_average()
    return res


def write_model_report(res: dict, out: Path) -> Path:
    write_json(out / "results.json", res)
    rows = [r for r in res["rows"] if r.get("status") == "ok"]
    lines = ["# Facet model: energy + forces + stress throughput, compile time, cost split", ""]
    lines += meta_lines(res["meta"]) + [""]
    lines += ["Method: docstring of `scripts/bench_model.py` (rattled diamond Si, median of "
              "timed calls after a warm-up, compile time separate). Arguments: "
              f"`{' '.join(res['meta'].get('script_args', []))}`.", ""]  # fmt: skip
    lines += md_table(
        ["preset", "product", "atoms", "edges", "params", "compile s", "ms/call (min-max)",
         "atoms/s", "cost split"],
        [[r["preset"], r["product"], r["atoms"], r["edges"], r["params"], fmt(r["compile_s"]),
          f"{1e3 * r['step_s']:.3g} ({1e3 * r['step_min_s']:.3g}-{1e3 * r['step_max_s']:.3g})",
          fmt(r["atoms_per_s"]), ", ".join(f"{k} {v:.0%}" for k, v in r["split"].items())]
         for r in rows])  # fmt: skip
    for r in res["rows"]:
        if r.get("status") != "ok":
            lines += ["", f"Not measured: {r['status']}"]
    if rows:
        lines += ["", "![throughput](model_throughput.png)"]
        _model_plot(rows, out / "model_throughput.png")
    lines += ["", "Peers: the per-step inference cost of MACE-MP-0 sizes, SevenNet-0, CHGNet and "
              "Nequix is measured side by side in `facet bench relax` / `md` "
              "(docs/benchmarks/dynamics/)."]  # fmt: skip
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _model_plot(rows, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"{r['preset']}\n{r['product']}\n{r['atoms']} at." for r in rows]
    ax[0].bar(
        labels,
        [r["atoms_per_s"] for r in rows],
        yerr=[
            [r["atoms_per_s"] - r["atoms"] / r["step_max_s"] for r in rows],
            [r["atoms"] / r["step_min_s"] - r["atoms_per_s"] for r in rows],
        ],
        capsize=3,
    )
    ax[0].set(ylabel="atoms/s (median, min-max)", yscale="log")
    bottom = [0.0] * len(rows)
    for part in rows[0]["split"]:
        vals = [r["split"].get(part, 0.0) for r in rows]
        ax[1].bar(labels, vals, bottom=bottom, label=part)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax[1].set(ylabel="fraction of forward+backward cost")
    ax[1].legend(fontsize=8)
    for a in ax:
        a.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
