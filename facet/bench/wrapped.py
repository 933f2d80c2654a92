"""Selections that run a benchmark module in its own process: ``model``, ``train``, ``accuracy``.

Each module runs as ``python -m MODULE`` of this interpreter with its own command line
(:func:`run_module`), so that its memory and threads stay apart. This module turns their JSON
into the common layout (``results.json`` with ``meta`` and ``rows``, ``report.md``, PNG plots;
see :mod:`facet.bench.common`):

* ``model`` runs ``python -m facet.bench.model --json`` (Facet presets: throughput of energy +
  forces + stress, compile time, cost split) and renders its rows.
* ``train`` runs :mod:`facet.bench.train_peers` (Facet's trainer vs ``mace_run_train``) in full
  mode; ``--quick`` re-renders the committed ``docs/benchmarks/train/train_peers.json``, rows
  it could not measure taken from the supplementary runs of :data:`_RECORDED`
  (:mod:`facet.bench.train_rows`).
* ``accuracy`` runs :mod:`facet.bench.accuracy` (equal wall-clock training budget) in full mode;
  ``--quick`` re-renders the committed ``docs/benchmarks/accuracy/accuracy.json``.

A missing recorded run, a missing peer environment or a failed run is a row with
``"status": "skipped: <reason>"`` or ``"failed: <reason>"``.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from .common import fmt, md_table, meta_lines, pyplot, read_json, write_json
from .meta import load_average, row_meta, run_meta
from .train_rows import train_result


def run_module(module: str, argv: list[str], *, env: dict | None = None) -> tuple[int, str]:
    """Run ``python -m module`` with this Python; output streams through; returns (code, tail)."""
    cmd = [sys.executable, "-m", module, *argv]
    print("[bench] " + " ".join(["python -m", module, *argv]), flush=True)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, **(env or {})),
    )
    tail: list[str] = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        tail = (tail + [line.rstrip()])[-20:]
    return proc.wait(), "\n".join(tail)


# ------------------------------------------------------------------------------------ model
MODEL_MODULE = "facet.bench.model"
MODEL_QUICK = ["--presets", "facet-s", "--sizes", "2", "--repeats", "3"]
MODEL_FULL = ["--products", "cg-dense", "gaunt-grid", "so2", "--sizes", "2", "3", "--repeats", "10"]


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
    code, tail = run_module(MODEL_MODULE, [*args, "--json", str(raw_path)])
    if code != 0 or not raw_path.exists():
        res = model_result(None, meta, f"failed: {MODEL_MODULE} exit {code}: {tail[-300:]}")
    else:
        res = model_result(read_json(raw_path, f"{MODEL_MODULE} --json output"), meta)
    meta["loadavg_end"] = load_average()
    return res


def write_model_report(res: dict, out: Path) -> Path:
    write_json(out / "results.json", res)
    rows = [r for r in res["rows"] if r.get("status") == "ok"]
    lines = ["# Facet model: energy + forces + stress throughput, compile time, cost split", ""]
    lines += meta_lines(res["meta"]) + [""]
    lines += [
        "Method: docstring of `facet/bench/model.py` (rattled diamond Si, median of "
        "timed calls after a warm-up, compile time separate). Arguments: "
        f"`{' '.join(res['meta'].get('script_args', []))}`.",
        "",
    ]
    lines += md_table(
        [
            "preset",
            "product",
            "atoms",
            "edges",
            "params",
            "compile s",
            "ms/call (min-max)",
            "atoms/s",
            "cost split",
        ],
        [
            [
                r["preset"],
                r["product"],
                r["atoms"],
                r["edges"],
                r["params"],
                fmt(r["compile_s"]),
                f"{fmt(1e3 * r['step_s'])} ({fmt(1e3 * r['step_min_s'])}-"
                f"{fmt(1e3 * r['step_max_s'])})",
                fmt(r["atoms_per_s"]),
                ", ".join(f"{k} {v:.0%}" for k, v in r["split"].items()),
            ]
            for r in rows
        ],
    )
    for r in res["rows"]:
        if r.get("status") != "ok":
            lines += ["", f"Not measured: {r['status']}"]
    if rows:
        lines += ["", "![throughput](model_throughput.png)"]
        _model_plot(rows, out / "model_throughput.png")
    lines += [
        "",
        "Peers: the per-step inference cost of MACE-MP-0 sizes, SevenNet-0, CHGNet and "
        "Nequix is measured side by side in `facet bench relax` / `md` "
        "(docs/benchmarks/dynamics/).",
    ]
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


# ------------------------------------------------------------------------- train, accuracy
ACCURACY_KEYS = ("energy_mae", "forces_mae", "stress_mae")


def _recorded(path: Path, what: str):
    """A committed JSON, or ``(None, "skipped: ...")`` naming the file that is missing/bad."""
    try:
        return read_json(path, what), None
    except (FileNotFoundError, ValueError) as e:
        return None, f"skipped: no recorded run to re-render: {e}"


@dataclasses.dataclass(frozen=True)
class Recorded:
    """How a selection runs in full mode and which committed runs quick mode re-renders.

    ``module`` runs with ``args`` (unless the user gives arguments) and ``--out OUT``; ``path``
    (under the benchmark root) is the recorded main run; ``supplements`` are recorded runs made
    afterwards for rows the main run could not measure (read in quick/render mode only: a
    model row that failed or is missing in the main run is taken from the first supplement
    where it is ``ok``, see :func:`train_result`); ``what`` says what the JSON holds.
    """

    module: str
    args: tuple[str, ...]
    path: str
    what: str
    supplements: tuple[str, ...] = ()


_RECORDED = {
    "train": Recorded(
        "facet.bench.train_peers",
        (),
        "train/train_peers.json",
        "rows of scripts/bench_train_peers.py",
        # facet-m, OOM-killed in the main run on a loaded machine, measured alone with its
        # MACE-MP-0 medium partner
        supplements=("train/facet_m/train_peers.json",),
    ),
    "accuracy": Recorded(
        "facet.bench.accuracy",
        ("--data", "data/distill", "--budget-minutes", "120"),
        "accuracy/accuracy.json",
        "rows of scripts/bench_accuracy.py (a full, committed run)",
    ),
}


def _run_or_recorded(
    name: str, out: Path, quick: bool, argv: list[str] | None, command: str, bench_root: Path
) -> tuple[dict | None, str, str | None, dict]:
    """Full mode: run the selection's module with ``ARGV --out OUT`` (ARGV defaulting to
    :data:`_RECORDED`'s) and read the JSON it leaves in ``out``; quick mode: read the recorded
    run under ``bench_root``.

    Returns ``(raw, source, reason, meta)``: the JSON (None when missing/bad), the path it was
    read from, the ``skipped: ...`` reason when it was missing/bad, and the run's meta, in which
    a failed run is recorded as ``script_failure``.
    """
    rec = _RECORDED[name]
    meta = run_meta(dtype="float32", seed=0, quick=quick, command=command)
    src = bench_root / rec.path
    if not quick:
        out.mkdir(parents=True, exist_ok=True)
        code, tail = run_module(rec.module, [*(argv or rec.args), "--out", str(out)])
        src = out / src.name
        if code != 0:
            meta["script_failure"] = f"{rec.module} exit {code}: {tail[-300:]}"
    raw, reason = _recorded(src, rec.what)
    meta["loadavg_end"] = load_average()
    return raw, str(src), reason, meta


def _supplements(name: str, bench_root: Path) -> list[tuple[str, dict | None, str | None]]:
    """``(source, raw or None, skipped reason or None)`` of each supplementary recorded run."""
    rec = _RECORDED[name]
    return [(str(bench_root / p), *_recorded(bench_root / p, rec.what)) for p in rec.supplements]


def run_train(
    out: Path, *, quick: bool, argv: list[str] | None, command: str, bench_root: Path
) -> dict:
    """Full: run ``python -m facet.bench.train_peers --out OUT``; quick: re-render the recorded run
    with its supplements (:data:`_RECORDED`)."""
    raw, src, reason, meta = _run_or_recorded("train", out, quick, argv, command, bench_root)
    sup = _supplements("train", bench_root) if quick else []
    return train_result(raw, src, meta, reason or meta.get("script_failure"), sup)


def accuracy_result(raw: dict | None, source: str, meta: dict, reason: str | None = None) -> dict:
    """One row per trainer of an ``accuracy.json`` (test MAEs); a missing run as skipped rows."""
    if raw is None:
        rows = [
            {
                "kind": "accuracy",
                "trainer": t,
                "status": reason or "skipped: no run",
                "source": source,
            }
            for t in ("facet", "mace")
        ]
        return {"meta": meta, "rows": rows}
    rows = []
    for i, t in enumerate(raw.get("trainers", [])):
        test = t.get("test", {})
        status = t.get("status", "ok") if test else (t.get("status") or "failed: no test scores")
        row = {
            "kind": "accuracy",
            "trainer": t.get("trainer"),
            "model": t.get("model"),
            "status": status if status != "ok" or test else "failed: no test scores",
            "params": t.get("params"),
            "wall_s": t.get("wall_s"),
            "steps": t.get("steps", t.get("steps_total")),
            "source": source,
            "source_index": i,
            "model_overrides": t.get("model_overrides"),
        }
        row.update({k: test[k] for k in ACCURACY_KEYS if k in test})
        rows.append(row)
    meta["recorded"] = {
        k: raw.get(k) for k in ("command", "date", "data", "budget_minutes", "splits", "note")
    }
    return {"meta": meta, "rows": rows}


def run_accuracy(
    out: Path, *, quick: bool, argv: list[str] | None, command: str, bench_root: Path
) -> dict:
    """Full: run ``python -m facet.bench.accuracy --out OUT``; quick: re-render the recorded run."""
    raw, src, reason, meta = _run_or_recorded("accuracy", out, quick, argv, command, bench_root)
    return accuracy_result(raw, src, meta, meta.get("script_failure") or reason)
