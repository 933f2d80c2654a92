"""Markdown report and plots of a ``facet bench scaling`` run (rows of :mod:`facet.bench.scaling`).

Derived figures (also stored in ``results.json`` under ``"derived"``, which the summary page
reads): the log-log slope of time per call against atoms over the sizes of at least
``SLOPE_MIN_ATOMS`` atoms (1 = linear scaling), microseconds per atom at the largest size, XLA's
memory estimate per atom there, and the best fraction of the matmul rate reached by the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import fmt, md_table, meta_lines, pyplot, write_json

#: Smallest size used in the fitted cost-vs-size slope (below it fixed overheads dominate).
SLOPE_MIN_ATOMS = 100


def _ok(rows, sweep=None):
    out = [r for r in rows if r.get("kind") == "model" and r.get("status") == "ok"]
    return [r for r in out if sweep is None or sweep in r["sweeps"]]


def derived(result: dict) -> dict:
    """Headline numbers of a run (see module docstring); ``None`` where not measured."""
    rows = result["rows"]
    mm = next((r for r in rows if r.get("kind") == "matmul"), {})
    size = sorted(_ok(rows, "size"), key=lambda r: r["atoms"])
    out = {"matmul_flop_rate": mm.get("flop_rate"), "matmul_n": mm.get("n")}
    big = [r for r in size if r["atoms"] >= SLOPE_MIN_ATOMS]
    if len(big) >= 2:
        x = np.log([r["atoms"] for r in big])
        y = np.log([r["time_fwd_bwd_s"] for r in big])
        out["time_vs_atoms_slope"] = float(np.polyfit(x, y, 1)[0])
        out["slope_atoms_range"] = [big[0]["atoms"], big[-1]["atoms"]]
    if size:
        last = size[-1]
        out["largest_atoms"] = last["atoms"]
        out["us_per_atom_largest"] = last["us_per_atom"]
        out["atoms_per_s_largest"] = last["atoms_per_s"]
        xla = last.get("memory_fwd_bwd", {}).get("xla_total_bytes")
        out["xla_bytes_per_atom_largest"] = xla / last["atoms"] if xla else None
    fracs = [(r.get("frac_matmul_fwd_bwd"), r) for r in _ok(rows)]
    fracs = [(f, r) for f, r in fracs if f is not None]
    if fracs:
        f, r = max(fracs, key=lambda t: t[0])
        out["best_frac_matmul_fwd_bwd"] = f
        out["best_frac_at"] = {k: r[k] for k in ("atoms", "channels", "lmax")}
        out["best_flop_rate_fwd_bwd"] = r["flop_rate_fwd_bwd"]
    not_ok = [r for r in rows if r.get("status") != "ok"]
    out["not_ok"] = [
        f"{r.get('atoms')} atoms C={r.get('channels')} L={r.get('lmax')}: {r.get('status')}"
        for r in not_ok
    ]
    return out


def write_report(result: dict, out: Path) -> Path:
    """``results.json``, ``report.md`` and three PNGs in ``out``; returns the report's path."""
    out.mkdir(parents=True, exist_ok=True)
    result["derived"] = derived(result)
    write_json(out / "results.json", result)
    plots = _plots(result, out)
    d, meta, rows = result["derived"], result["meta"], result["rows"]
    lines = ["# Scaling of Facet's energy + forces + stress", ""] + meta_lines(meta) + [""]
    lines += [
        "Method: docstring of `facet/bench/scaling.py` (fcc Cu at a fixed density, "
        "interleaved repeats, median with min-max, compile time separate, XLA cost and "
        f"memory analysis). Preset {meta['config']['preset']}. Matmul precision: JAX's default "
        f"({meta.get('matmul_precision')}) for the model and the reference product alike; on "
        "NVIDIA GPUs that lets float32 products use TF32 tensor cores.",
        "",
    ]
    lines += ["## Headline", ""] + _headline_lines(d)
    lines += ["", "## Cost against system size", "", f"![time]({plots[0]})", ""]
    lines += _tables(rows, plots)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _headline_lines(d: dict) -> list[str]:
    """Scaling slope, cost per atom at the largest size, best FLOP rate, what was not measured."""
    lines = []
    if "time_vs_atoms_slope" in d:
        a, b = d["slope_atoms_range"]
        lines.append(
            f"- Time per call grows as atoms^{d['time_vs_atoms_slope']:.2f} from {a} to "
            f"{b} atoms (1.00 = linear)."
        )
    if "us_per_atom_largest" in d:
        lines.append(
            f"- At {d['largest_atoms']} atoms: {fmt(d['us_per_atom_largest'])} us per "
            f"atom ({fmt(d['atoms_per_s_largest'])} atoms/s), XLA memory estimate "
            f"{fmt((d['xla_bytes_per_atom_largest'] or 0) / 1024)} KiB per atom."
        )
    if "best_frac_matmul_fwd_bwd" in d:
        lines.append(
            f"- Best achieved FLOP rate (forward + backward): "
            f"{fmt(d['best_flop_rate_fwd_bwd'] / 1e9)} GFLOP/s at {d['best_frac_at']}, "
            f"{100 * d['best_frac_matmul_fwd_bwd']:.1f} % of the {d['matmul_n']}^3 matmul "
            f"rate ({fmt(d['matmul_flop_rate'] / 1e9)} GFLOP/s) measured in the same run."
        )
    for s in d["not_ok"]:
        lines.append(f"- Not measured: {s}")
    return lines


def _tables(rows: list[dict], plots: list) -> list[str]:
    """The size table, the memory plot, and the channels and L sweep table."""
    lines = md_table(
        [
            "atoms",
            "edges/atom",
            "compile s",
            "ms per call (min-max)",
            "us/atom",
            "fwd ms",
            "XLA MiB",
            "peak RSS MiB",
            "device peak MiB",
            "GFLOP/s fwd+bwd",
            "% of matmul",
        ],
        [_size_cells(r) for r in sorted(_ok(rows, "size"), key=lambda r: r["atoms"])],
    )
    lines += [
        "",
        f"![memory]({plots[1]})",
        "",
        "## Channels and L",
        "",
        f"![sweeps]({plots[2]})",
        "",
    ]
    sweep = [r for r in _ok(rows) if {"channels", "lmax"} & set(r["sweeps"])]
    lines += md_table(
        [
            "atoms",
            "channels",
            "L",
            "params",
            "ms per call (min-max)",
            "XLA MiB",
            "GFLOP/s",
            "% of matmul",
        ],
        [
            [
                r["atoms"],
                r["channels"],
                r["lmax"],
                r["params"],
                _ms(r),
                _mib(r),
                fmt(r.get("flop_rate_fwd_bwd", 0) / 1e9),
                fmt(100 * r.get("frac_matmul_fwd_bwd", 0)),
            ]
            for r in sorted(sweep, key=lambda r: (r["lmax"], r["channels"]))
        ],
    )
    lines += [
        "",
        "Peak RSS and device peak are the process's peaks so far (sizes run in "
        "ascending order after the sweeps); XLA MiB is the compiled function's arguments + "
        "outputs + temporaries. Rows: `results.json`.",
    ]
    return lines


def _ms(r):
    return (
        f"{1e3 * r['time_fwd_bwd_s']:.3g} ({1e3 * r['time_fwd_bwd_min_s']:.3g}-"
        f"{1e3 * r['time_fwd_bwd_max_s']:.3g})"
    )


def _mib(r, key="memory_fwd_bwd"):
    b = r.get(key, {}).get("xla_total_bytes")
    return fmt(b / 2**20 if b else None)


def _size_cells(r):
    fwd = r.get("time_fwd_s")
    dev = r.get("device_peak_bytes")
    return [
        r["atoms"],
        fmt(r["neighbours_per_atom"], ".1f"),
        fmt(r.get("compile_fwd_bwd_s"), ".1f"),
        _ms(r),
        fmt(r["us_per_atom"]),
        fmt(1e3 * fwd if fwd else None),
        _mib(r),
        fmt(r["rss_peak_bytes"] / 2**20, ".0f"),
        fmt(dev / 2**20 if dev else None, ".0f"),
        fmt((r.get("flop_rate_fwd_bwd") or 0) / 1e9),
        fmt(100 * (r.get("frac_matmul_fwd_bwd") or 0)),
    ]


def _plots(result: dict, out: Path) -> list[str]:
    plt = pyplot()
    rows = result["rows"]
    mm = next((r for r in rows if r.get("kind") == "matmul"), {})
    size = sorted(_ok(rows, "size"), key=lambda r: r["atoms"])
    n = [r["atoms"] for r in size]
    names = ["scaling_time.png", "scaling_memory.png", "scaling_sweeps.png"]
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for key, lab in (("fwd_bwd", "energy+forces+stress"), ("fwd", "energy only")):
        pts = [r for r in size if f"time_{key}_s" in r]
        if not pts:
            continue
        t = np.array([r[f"time_{key}_s"] for r in pts])
        err = [t - [r[f"time_{key}_min_s"] for r in pts], [r[f"time_{key}_max_s"] for r in pts] - t]
        ax[0].errorbar([r["atoms"] for r in pts], t, yerr=err, marker="o", capsize=3, label=lab)
        if key == "fwd_bwd":
            rate = [r.get(f"flop_rate_{key}") or np.nan for r in pts]
            ax[1].plot([r["atoms"] for r in pts], np.array(rate) / 1e9, "o-", label=lab)
        else:
            rate = [r.get(f"flop_rate_{key}") or np.nan for r in pts]
            ax[1].plot([r["atoms"] for r in pts], np.array(rate) / 1e9, "s--", label=lab)
    if n:
        ax[0].plot(n, [size[0]["time_fwd_bwd_s"] * k / n[0] for k in n], "k:", label="linear")
    if mm.get("flop_rate"):
        ax[1].axhline(mm["flop_rate"] / 1e9, color="r", ls=":", label=f"matmul n={mm['n']}")
    ax[0].set(xscale="log", yscale="log", xlabel="atoms", ylabel="s per call (median, min-max)")
    ax[1].set(xscale="log", yscale="log", xlabel="atoms", ylabel="GFLOP/s (XLA FLOPs / time)")
    for a in ax:
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8)
    fig.suptitle(f"Facet {result['meta']['config']['preset']}: cost vs size, fcc Cu")
    fig.tight_layout()
    fig.savefig(out / names[0], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, lab in (
        ("xla", "XLA estimate (fwd+bwd)"),
        ("rss_peak_bytes", "process peak RSS"),
        ("device_peak_bytes", "device peak"),
    ):
        if key == "xla":
            v = [r.get("memory_fwd_bwd", {}).get("xla_total_bytes") for r in size]
        else:
            v = [r.get(key) for r in size]
        if any(v):
            ax.plot(n, [x / 2**20 if x else np.nan for x in v], "o-", label=lab)
    ax.set(xscale="log", yscale="log", xlabel="atoms", ylabel="MiB")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / names[1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for a, sweep, key in ((ax[0], "channels", "channels"), (ax[1], "lmax", "lmax")):
        pts = sorted(_ok(rows, sweep), key=lambda r: r[key])
        if pts:
            t = np.array([r["time_fwd_bwd_s"] for r in pts])
            err = [
                t - [r["time_fwd_bwd_min_s"] for r in pts],
                [r["time_fwd_bwd_max_s"] for r in pts] - t,
            ]
            a.errorbar(
                [r[key] for r in pts], 1e3 * t, yerr=1e3 * np.array(err), marker="o", capsize=3
            )
            a.set_title(f"{pts[0]['atoms']} atoms")
        a.set(xlabel=key, ylabel="ms per call (fwd+bwd)", yscale="log")
    fig.tight_layout()
    fig.savefig(out / names[2], dpi=110)
    plt.close(fig)
    return names
