"""Markdown report and plots for :mod:`facet.bench.dynamics` (rows in results.json).

Rows carry wall-clock ``time_s`` and, from runners that report it, the process CPU time
``cpu_s`` of the same span. Every process runs one thread, so on a shared, overloaded machine the
CPU time is the figure that measures the work (wall time also counts waiting for a core); the
report gives both, and the ratios from both.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path


def _stats(values):
    v = sorted(values)
    return statistics.median(v), v[0], v[-1]


def summarise(rows):
    """``{(task, model, size): {...}}`` with medians and spread over the timed repeats."""
    groups = defaultdict(list)
    warm = {}
    for r in rows:
        if "error" in r or "time_s" not in r:
            continue
        key = (r["task"], r["model"], r["size"])
        if r["warmup"]:
            warm[key] = r["time_s"]
        else:
            groups[key].append(r)
    out = {}
    for key, rs in groups.items():
        task = key[0]
        t = [r["time_s"] for r in rs]
        s = {"n": len(rs), "time": _stats(t), "warmup_s": warm.get(key)}
        for suffix, tk in (("", "time_s"), ("_cpu", "cpu_s")):
            if not all(tk in r for r in rs):
                continue
            if task in ("md", "md_jax"):
                s["steps_per_s" + suffix] = _stats([r["steps"] / r[tk] for r in rs])
            if task in ("relax_step", "converge"):
                s["per_step" + suffix] = _stats([r[tk] / max(r["steps"], 1) for r in rs])
            if task.startswith("batched"):
                s["per_structure" + suffix] = _stats([r[tk] / r["structures"] for r in rs])
        if task in ("relax_step", "converge"):
            s["steps"] = _stats([r["steps"] for r in rs])
            s["converged"] = all(r.get("converged") for r in rs)
        out[key] = s
    return out


def _fmt(stat, scale=1.0, digits=3):
    med, lo, hi = (x * scale for x in stat)
    return f"{med:.{digits}g} ({lo:.{digits}g}-{hi:.{digits}g})"


def _head(info: dict, rows: list) -> list[str]:
    """Title, the run's machine and settings, what was skipped, the models."""
    lines = ["# Relaxation and MD speed: Facet vs peers", ""]
    st = info["settings"]
    m = info["machine"]
    start = m.get("loadavg_start")
    load = f"load average at start {start[0]:.1f}, " if start else ""
    lines += [
        f"Run {info['date']} on {m['cpu']} ({m['cpu_count']} cores; {load}at the end "
        f"{m['loadavg_end'][0]:.1f}: a shared machine, so absolute times are inflated; ratios "
        "come from interleaved repeats in the same run).",
        *([f"Note: {info['note']}"] if info.get("note") else []),
        f"Threads: {info['threads']} (JAX: {info['jax_threads']}). Facet weights: "
        f"{st['facet_model']}. Medians over {st['repeats']} timed repeats, (min-max) in "
        "brackets; warm-up (compilation) times are separate.",
        "",
    ]
    errors = [r for r in rows if "error" in r]
    if info["skipped"] or errors:
        lines += ["## Skipped", ""]
        for k, v in info["skipped"].items():
            lines.append(f"- {k}: {v}")
        for r in errors[:20]:
            lines.append(f"- {r['model']} {r['task']} size {r['size']}: {r['error']}")
        lines.append("")
    lines += ["## Models", "", "| model | parameters | versions | set-up s |", "|---|---|---|---|"]
    for name, h in info["models"].items():
        lines.append(
            f"| {name} | {h.get('parameters') or '-'} | {h.get('versions')} | "
            f"{h.get('setup_s', 0):.1f} |"
        )
    lines.append("")
    return lines


def _table(summ: dict, task: str, value_key: str, header: str, scale: float = 1.0) -> list[str]:
    """One row per (model, size) of ``task``: wall and CPU figures, warm-up time."""
    keys = sorted(k for k in summ if k[0] == task)
    if not keys:
        return []
    res = [
        f"| model | size | {header} (wall) | {header} (CPU time) | warm-up s |",
        "|---|---|---|---|---|",
    ]
    for k in keys:
        s = summ[k]
        w = s["warmup_s"]
        cpu = s.get(value_key + "_cpu")
        res.append(
            f"| {k[1]} | {k[2]} | {_fmt(s[value_key], scale)} | "
            f"{'-' if cpu is None else _fmt(cpu, scale)} | "
            f"{'-' if w is None else f'{w:.2f}'} |"
        )
    return res + [""]


def _ratio(a, b, key):
    if a is None or b is None or key not in a or key not in b:
        return "-"
    return f"{a[key][0] / b[key][0]:.2f}"


def _speed_sections(summ: dict, st: dict) -> list[str]:
    """MD steps/s (ASE and jax-md), time per relaxation step and Facet-S / MACE ratios."""
    lines = [f"## MD (ASE velocity Verlet, {st['md_steps']} steps, 1 fs, 300 K, Si)", ""]
    lines += _table(summ, "md", "steps_per_s", "steps/s")
    lines += ["Facet's compiled jax-md loop (same cells, steps/s):", ""]
    lines += _table(summ, "md_jax", "steps_per_s", "steps/s")
    lines += [
        f"## Time per relaxation step (FIRE + FrechetCellFilter, {st['relax_steps']} "
        "steps, Si, strained 2 %, rattled)",
        "",
    ]
    lines += _table(summ, "relax_step", "per_step", "ms/step", 1e3)
    ratio_lines = []
    for size in st["sizes"]:
        f = summ.get(("relax_step", "facet-s", size))
        for peer in ("mace-mp0-small", "mace-mp0-medium"):
            ms = summ.get(("relax_step", peer, size))
            if f and ms:
                ratio_lines.append(
                    f"| {peer} | {size} | {_ratio(f, ms, 'per_step')} | "
                    f"{_ratio(f, ms, 'per_step_cpu')} |"
                )
    if ratio_lines:
        lines += [
            "Facet-S / MACE time per relaxation step (goal vs MACE-MP-0 small: <= 0.5):",
            "",
            "| peer | atoms | ratio (wall) | ratio (CPU time) |",
            "|---|---|---|---|",
            *ratio_lines,
            "",
        ]
    return lines


def _converge_section(summ: dict, st: dict) -> list[str]:
    """Time to convergence per model and structure."""
    lines = [
        "## Time to convergence (fmax 0.05 eV/A, <= "
        f"{st['converge_steps_trained']} steps; MP structures strained 2 %, rattled)",
        "",
    ]
    conv = sorted(k for k in summ if k[0] == "converge")
    if not conv:
        return lines
    lines += [
        "| model | structure | total s | steps | ms/step (wall) | ms/step (CPU) | converged |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in conv:
        s = summ[k]
        cpu = s.get("per_step_cpu")
        lines.append(
            f"| {k[1]} | {k[2]} | {_fmt(s['time'])} | {s['steps'][0]:.0f} | "
            f"{_fmt(s['per_step'], 1e3)} | {'-' if cpu is None else _fmt(cpu, 1e3)} | "
            f"{s['converged']} |"
        )
    # facet-s converges only with a trained model (--facet-model); random weights run
    # a fixed number of steps.
    untrained = st.get("facet_model", "random weights") == "random weights"
    lines += [
        "",
        *(
            [
                f"Facet with random weights cannot converge: it runs a fixed "
                f"{st['converge_steps_random']} steps (fmax 0) and its row gives the time per "
                "step only."
            ]  # fmt: skip
            if untrained
            else []
        ),
        "",
    ]
    return lines


def _batched_section(summ: dict, st: dict) -> list[str]:
    """Batched FIRE in one compiled loop against one structure at a time through ASE."""
    b = summ.get(("batched_batched", "facet-s", st["batched_structures"]))
    q = summ.get(("batched_sequential", "facet-s", st["batched_structures"]))
    if not (b and q):
        return []
    return [
        f"## Batched relaxation ({st['batched_structures']} small structures, "
        f"{st['batched_steps']} FIRE steps each)",
        "",
        "| path | s per structure (wall) | s per structure (CPU) | warm-up s |",
        "|---|---|---|---|",
        f"| one compiled loop (facet.dynamics) | {_fmt(b['per_structure'])} | "
        f"{_fmt(b['per_structure_cpu']) if 'per_structure_cpu' in b else '-'} | "
        f"{b['warmup_s']:.1f} |",
        f"| one at a time through ASE | {_fmt(q['per_structure'])} | "
        f"{_fmt(q['per_structure_cpu']) if 'per_structure_cpu' in q else '-'} | "
        f"{q['warmup_s']:.1f} |",
        "",
        f"Speed-up per structure (one-at-a-time / batched): wall {_ratio(q, b, 'per_structure')}"
        f"x, CPU time {_ratio(q, b, 'per_structure_cpu')}x (goal >= 5x).",
        "",
    ]


def write_report(out: Path, info: dict, rows: list) -> None:
    """``report.md`` and the plots of a run's ``info`` and rows."""
    summ = summarise(rows)
    st = info["settings"]
    lines = [*_head(info, rows), *_speed_sections(summ, st), *_converge_section(summ, st),
             *_batched_section(summ, st)]
    lines += ["Plots: `md_steps_per_s.png`, `relax_time_per_step.png`.", ""]
    (out / "report.md").write_text("\n".join(lines))
    _plots(out, summ)


def _plots(out: Path, summ: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for task, key, ylabel, fname, scale in [
        ("md", "steps_per_s", "MD steps / s", "md_steps_per_s.png", 1.0),
        ("relax_step", "per_step", "ms per FIRE step", "relax_time_per_step.png", 1e3),
    ]:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        models = sorted({k[1] for k in summ if k[0] in (task, task + "_jax")})
        for model in models:
            for t in (task, task + "_jax"):
                pts = sorted((k[2], summ[k][key]) for k in summ if k[0] == t and k[1] == model)
                if not pts:
                    continue
                x = [p[0] for p in pts]
                y = [p[1][0] * scale for p in pts]
                lo = [(p[1][0] - p[1][1]) * scale for p in pts]
                hi = [(p[1][2] - p[1][0]) * scale for p in pts]
                label = model + (" (jax-md)" if t.endswith("_jax") else "")
                ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("atoms")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=120)
        plt.close(fig)
