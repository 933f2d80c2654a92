"""Reports (``results.json``, ``report.md``, PNG) of the ``train`` and ``accuracy`` selections.

Rows come from :func:`facet.bench.train_rows.train_result` and
:func:`facet.bench.wrapped.accuracy_result`; each carries ``source`` (the JSON it was read from)
so that every number in a report can be traced to the recorded run.
"""

from __future__ import annotations

from pathlib import Path

from .common import fmt, md_table, meta_lines, pyplot, write_json


def _header(title: str, res: dict) -> list[str]:
    meta = res["meta"]
    lines = [f"# {title}", ""] + meta_lines(meta) + [""]
    rec = meta.get("recorded") or {}
    if meta.get("rerendered", meta.get("quick")) and rec:
        lines += [
            f"{'Quick mode' if meta.get('quick') else '--render-only'} re-renders the "
            "recorded full run (no training here): "
            f"`{res['rows'][0].get('source')}`, made by `{rec.get('command')}`.",
            "",
        ]
    if meta.get("script_failure"):
        lines += [f"**The script failed in this run:** {meta['script_failure']}", ""]
    if rec.get("note"):
        lines += [f"Note of the recorded run: {rec['note']}", ""]
    return lines + _supplement_lines(res)


def _supplement_lines(res: dict) -> list[str]:
    """Which supplementary run each row not measured by the main run comes from (with that
    run's command and note), the partner it is compared with, and unreadable supplements."""
    lines = []
    for s in res["meta"].get("supplements", []):
        if "status" in s:
            lines += [f"Supplementary run `{s['source']}` not used: {s['status']}", ""]
            continue
        if not s["models"]:
            continue
        lines += [
            f"Rows taken from the supplementary run `{s['source']}` (not measured in the main "
            f"run): {', '.join(s['models'])}; made by `{s.get('command')}`. Their ratio is "
            "against the MACE model of that same run, never of the main run.",
            "",
        ]
        if s.get("note"):
            lines += [f"Note of that run: {s['note']}", ""]
    for r in res["rows"]:
        if r.get("replaces"):
            pair = r.get("paired") or {}
            vs = (
                f"; same-run {pair['model']}: {fmt(pair.get('structures_per_cpu_s'))} "
                "structures per CPU-s"
                if pair
                else "; its partner is not ok in that run"
            )
            lines += [f"- {r['model']}: main run {r['replaces']}{vs}."]
    return lines + ([""] if lines and lines[-1] else [])


#: Per report: the plot's file name, its alt text and the closing "Method" line.
_TAILS = {
    "train": (
        "train_throughput.png",
        "throughput",
        "Method: docstring of `facet/bench/train_peers.py`; per-block rows in the "
        "recorded `train_peers.json`.",
    ),
    "accuracy": (
        "accuracy_mae.png",
        "MAE",
        "Method: docstring of `facet/bench/accuracy.py` (same splits, same budget, "
        "one scoring function for both).",
    ),
}


def _finish(lines: list[str], out: Path, report: str, figure) -> Path:
    """The common tail of a report (:data:`_TAILS`): save ``figure`` (None: no plot) and link
    it, add the Method line, write ``out/report.md``; returns its path."""
    png, alt, method = _TAILS[report]
    if figure is not None:
        figure.tight_layout()
        figure.savefig(out / png, dpi=110)
        pyplot().close(figure)
        lines += ["", f"![{alt}]({png})"]
    lines += ["", method]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_train_report(res: dict, out: Path) -> Path:
    write_json(out / "results.json", res)
    rows = res["rows"]
    lines = _header("Training throughput: Facet's trainer vs mace_run_train", res)
    lines += md_table(
        [
            "trainer",
            "model",
            "status",
            "params",
            "structures/s (min-max)",
            "structures per CPU-s (min-max)",
            "atoms per CPU-s",
            "Facet/MACE per CPU-s",
            "run",
        ],
        [
            [
                r["trainer"],
                r["model"],
                r["status"],
                r.get("params", ""),
                f"{fmt(r.get('structures_per_s'))} ({fmt(r.get('structures_per_s_min'))}-"
                f"{fmt(r.get('structures_per_s_max'))})",
                f"{fmt(r.get('structures_per_cpu_s'))} ({fmt(r.get('structures_per_cpu_s_min'))}-"
                f"{fmt(r.get('structures_per_cpu_s_max'))})",
                fmt(r.get("atoms_per_cpu_s")),
                fmt(r.get("ratio_vs_mace_structures_per_cpu_s")),
                "supplement" if r.get("replaces") else "main",
            ]
            for r in rows
        ],
    )
    ok = [r for r in rows if r["status"] == "ok" and r.get("structures_per_cpu_s")]
    return _finish(lines, out, "train", _train_figure(ok) if ok else None)


def _train_figure(ok: list[dict]):
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    names = [r["model"] + ("*" if r.get("replaces") else "") for r in ok]
    col = ["tab:blue" if r["trainer"] == "facet" else "tab:orange" for r in ok]
    v = [r["structures_per_cpu_s"] for r in ok]
    err = [
        [x - r.get("structures_per_cpu_s_min", x) for x, r in zip(v, ok, strict=True)],
        [r.get("structures_per_cpu_s_max", x) - x for x, r in zip(v, ok, strict=True)],
    ]
    ax[0].bar(names, v, color=col, yerr=err, capsize=4)
    ax[0].set(title="structures per CPU second (median, min-max)")
    ax[1].bar(names, [r.get("params") or 0 for r in ok], color=col)
    ax[1].set(title="parameters")
    title = "Facet (blue) vs MACE (orange), same data, one thread each"
    if any(r.get("replaces") for r in ok):
        title += "; * from a supplementary run"
    fig.suptitle(title)
    return fig


def write_accuracy_report(res: dict, out: Path) -> Path:
    write_json(out / "results.json", res)
    rows = res["rows"]
    lines = _header("Accuracy at equal wall-clock training time: Facet vs MACE", res)
    rec = res["meta"].get("recorded") or {}
    if rec.get("budget_minutes"):
        lines += [
            f"Budget {rec['budget_minutes']:g} min per trainer; data {rec.get('data')}, "
            f"splits {rec.get('splits')}.",
            "",
        ]
    lines += md_table(
        [
            "trainer",
            "model",
            "status",
            "params",
            "steps",
            "energy MAE meV/atom",
            "force MAE meV/A",
            "stress MAE meV/A^3",
        ],
        [
            [
                r["trainer"],
                r.get("model", ""),
                r["status"],
                r.get("params", ""),
                r.get("steps", ""),
                fmt(r.get("energy_mae")),
                fmt(r.get("forces_mae")),
                fmt(r.get("stress_mae")),
            ]
            for r in rows
        ],
    )
    ok = [r for r in rows if r["status"] == "ok" and "forces_mae" in r]
    return _finish(lines, out, "accuracy", _accuracy_figure(ok) if ok else None)


def _accuracy_figure(ok: list[dict]):
    plt = pyplot()
    fig, ax = plt.subplots(1, 3, figsize=(11, 3.6))
    for a, k, unit in zip(
        ax,
        ("energy_mae", "forces_mae", "stress_mae"),
        ("meV/atom", "meV/A", "meV/A^3"),
        strict=True,
    ):
        a.bar(
            [f"{r['trainer']}\n{r.get('params')} p." for r in ok],
            [r.get(k, 0.0) for r in ok],
            color=["tab:blue" if r["trainer"] == "facet" else "tab:orange" for r in ok],
        )
        a.set(title=f"test {k.split('_')[0]} MAE ({unit})")
    return fig
