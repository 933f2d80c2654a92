"""Markdown report and matplotlib plots for a :func:`tensorproducts.bench.run` result.

:func:`write_report` writes ``results.json``, ``report.md`` and ``*.png`` into one folder. Every
number in the report is read from the result; the few sentences that explain *why* a variant
loses are in :data:`WHY` and are printed only when the measured data show the loss.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .bench import median_of, slopes

__all__ = ["write_report", "checks", "WHY"]

WHY = {
    "cg-sparse": "the selection rule removes about 4.5x of the multiply-adds (XLA FLOPs), but the "
    "products x_m1 y_m2 it keeps must be gathered, which is memory-bound on a CPU and costs more "
    "than the compute-bound dense matmul it replaces (a gather-free Toeplitz/skew layout and a "
    "single gather from the flattened outer product were both measured slower still)",
    "gaunt-fourier": "XLA's CPU FFT is slow for a batch of small 2D transforms and the torus grid "
    "has twice the points of the sphere grid; the SH<->Fourier tables cost O(L^3) like the grid",
    "gaunt-fourier[direct]": "the direct convolution is O(L^4) complex multiply-adds per sample",
    "matrix": "the (L+1)^2 x (L+1)^2 matrix product is O(L^6) and its embedding/decomposition "
    "tables are dense",
    "so2": "two rotations per product (O(L^3) but with many small J-matrix multiplies) dominate at "
    "small L, where dense CG is only a few hundred multiply-adds",
    "cg-dense": "O(L^6) multiply-adds",
    "gaunt-grid": "a fixed cost of two forward and one inverse grid transform per product",
    "vector-gaunt-grid": "three vector components per grid point and VSH transforms",
    "e3nn": "per-path einsums",
}


def _fmt(v, digits=3):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def _table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _variants(rows):
    seen = []
    for r in rows:
        if r["variant"] not in seen:
            seen.append(r["variant"])
    return seen


def _find(rows, **match):
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def _cell(r):
    if r is None:
        return ""
    if "skipped" in r:
        return "skip"
    return f"{_fmt(r['median_ms'])} ±{_fmt(r['iqr_ms'], 2)}"


def checks(result: dict) -> list[tuple[str, str, str]]:
    """``(check, measured, verdict)`` for the issue's acceptance comparisons.

    Only rows of one run are compared: ours carry the run's ``run`` id (rows of any other run in
    ``result`` are ignored), the research rows come from the subprocess of the same invocation."""
    run = result.get("meta", {}).get("run_id")
    rows = [r for r in result["rows"] if run is None or r.get("run") == run]
    out = []
    lmax = max((r["L"] for r in rows if r.get("setting") == "mimo"), default=None)
    g = median_of(rows, variant="gaunt-grid", setting="mimo", L=lmax, mode="fwd")
    c = median_of(rows, variant="cg-dense", setting="mimo", L=lmax, mode="fwd")
    if g and c:
        out.append(
            (
                f"gaunt-grid >= 7x faster than cg-dense, mimo L={lmax}",
                f"{c / g:.1f}x ({_fmt(c)} vs {_fmt(g)} ms)",
                "yes" if c / g >= 7 else "NO",
            )
        )
    for setting in ("siso", "simo", "mimo", "edge"):
        for mode in ("fwd", "fwd_bwd"):
            ratios = []
            for r in rows:
                if (r.get("variant"), r.get("setting"), r.get("mode")) != ("e3nn", setting, mode):
                    continue
                if "median_ms" not in r:
                    continue
                match = dict(setting=setting, L=r["L"], mode=mode, channels=r.get("channels", 1))
                cd = median_of(rows, variant="cg-dense", **match)
                if cd:
                    tag = f"L{r['L']}" + (f"C{r['channels']}" if setting == "edge" else "")
                    ratios.append((tag, r["median_ms"] / cd))
            if ratios:
                worst = min(ratios, key=lambda t: t[1])
                out.append(
                    (
                        f"cg-dense at least as fast as e3nn.tensor_product ({setting}, {mode})",
                        f"e3nn/cg-dense = {', '.join(f'{t}: {q:.2f}' for t, q in ratios)}",
                        "yes" if worst[1] >= 1 else f"NO at {worst[0]}",
                    )
                )
    pof = result.get("pof", {}).get("rows", [])
    for ours in sorted({r.get("ours") for r in pof if r.get("ours")}):
        cmp, lost, skipped = [], [], 0
        for r in pof:
            if r.get("ours") != ours:
                continue
            if "median_ms" not in r:
                skipped += 1
                continue
            mine = median_of(rows, variant=ours, setting=r["setting"], L=r["L"], mode="fwd")
            if mine is None:
                continue
            q = r["median_ms"] / mine
            cmp.append(q)
            if q < 1:
                lost.append(f"{r['setting']} L={r['L']} ({q:.2f}x)")
        if cmp:
            verdict = "yes" if not lost else "NO: " + ", ".join(lost)
            out.append(
                (
                    f"{ours} at least as fast as the research implementation",
                    f"research/ours median {np.median(cmp):.1f}x, min {min(cmp):.2f}x over "
                    f"{len(cmp)} cases ({skipped} research cases skipped)",
                    verdict,
                )
            )
        elif skipped:
            out.append((f"{ours} vs research implementation", "research side skipped", "n/a"))
    return out


def _plot(result: dict, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    pof = result.get("pof", {}).get("rows", [])
    files = []
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), sharey=True)
    for ax, setting in zip(axes, ("siso", "simo", "mimo"), strict=True):
        for v in _variants(rows):
            pts = sorted(
                (r["L"], r["us_per_sample"])
                for r in rows
                if r["variant"] == v
                and r.get("setting") == setting
                and r.get("mode") == "fwd"
                and "us_per_sample" in r
            )
            if pts:
                ax.loglog(*zip(*pts, strict=True), "o-", label=v, ms=3)
        for v in sorted({r["variant"] for r in pof}):
            pts = sorted(
                (r["L"], r["us_per_sample"])
                for r in pof
                if r["variant"] == v and r.get("setting") == setting and "us_per_sample" in r
            )
            if pts:
                ax.loglog(*zip(*pts, strict=True), "x--", label=v, ms=4, alpha=0.7)
        ax.set_title(f"{setting} forward")
        ax.set_xlabel("L")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("time per sample (us)")
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(out_dir / "time_vs_L.png", dpi=110)
    plt.close(fig)
    files.append("time_vs_L.png")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for v in _variants(rows):
        for ax, key, mode in ((axes[0], "flops", "fwd"), (axes[1], "us_per_sample", "fwd_bwd")):
            pts = sorted(
                (r["L"], (r[key] / r["batch"]) if key == "flops" else r[key])
                for r in rows
                if r["variant"] == v
                and r.get("setting") == "mimo"
                and r.get("mode") == mode
                and r.get(key)
            )
            if pts:
                ax.loglog(*zip(*pts, strict=True), "o-", label=v, ms=3)
    axes[0].set_title("mimo forward: XLA FLOPs per sample")
    axes[1].set_title("mimo forward+backward: time per sample (us)")
    for ax in axes:
        ax.set_xlabel("L")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir / "flops_and_backward.png", dpi=110)
    plt.close(fig)
    files.append("flops_and_backward.png")

    edge = [
        r
        for r in rows
        if r.get("setting") == "edge" and r.get("mode") == "fwd" and "median_ms" in r
    ]
    if edge:
        cases = sorted({(r["L"], r["channels"]) for r in edge})
        names = _variants(edge)
        fig, ax = plt.subplots(figsize=(max(8, len(cases) * 1.2), 4.5))
        width = 0.8 / len(names)
        for k, v in enumerate(names):
            vals = [
                (_find(edge, variant=v, L=l, channels=c) or {}).get("median_ms", np.nan)
                for l, c in cases
            ]
            ax.bar(np.arange(len(cases)) + k * width, vals, width, label=v)
        ax.set_xticks(np.arange(len(cases)) + 0.4, [f"L{l} C{c}" for l, c in cases])
        ax.set_yscale("log")
        ax.set_ylabel("ms per call")
        ax.set_title(f"edge setting (channels x {edge[0]['batch']} edges), forward")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "edge_channels.png", dpi=110)
        plt.close(fig)
        files.append("edge_channels.png")
    return files


def write_report(result: dict, out_dir, command: str = "") -> Path:
    """Write ``results.json``, the plots and ``report.md`` into ``out_dir``; return the report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = dict(result, slopes=slopes(result["rows"]))
    (out_dir / "results.json").write_text(json.dumps(result, indent=1, default=str))
    files = _plot(result, out_dir)
    rows, meta, cfg = result["rows"], result["meta"], result["config"]
    md = ["# Tensor-product microbenchmark", ""]
    md += [
        f"Generated by `{command or 'facet bench tp'}` on {meta['date_utc']} "
        f"({meta['wall_s'] / 60:.1f} min). Raw rows: `results.json`.",
        "",
    ]
    md += [
        "**Machine**: " + f"{meta['cpu']}, {meta['cores']} cores (affinity {meta['affinity']}), "
        f"{meta['device']}, {meta['platform']}. **Versions**: Python {meta['python']}, jax "
        f"{meta['jax']}, jaxlib {meta['jaxlib']}, e3nn-jax {meta['e3nn_jax']}, flax "
        f"{meta['flax']}, numpy {meta['numpy']}.",
        "",
    ]
    load = meta.get("load_average_at_start") or meta.get("load_average")
    if load:
        md += [
            f"**Machine load** at the start: load average {', '.join(f'{v:.1f}' for v in load)} "
            f"(1/5/15 min) on {meta['cores']} cores: the machine was shared, so absolute times "
            "and their spread (IQR) are inflated and noisy; variants were interleaved call by "
            "call so that ratios within one case stay comparable.",
            "",
        ]
    if meta.get("run_id"):
        md += [
            f"**One run**: every row of ours carries the run id `{meta['run_id']}`; the research "
            "rows come from the subprocess of the same invocation"
            + (
                f", started {pm0['started_utc']}"
                if (pm0 := result.get("pof", {}).get("meta", {})).get("started_utc")
                else ""
            )
            + ". The acceptance checks compare only these rows.",
            "",
        ]
    if meta.get("expressivity_note"):
        md += [meta["expressivity_note"] + ".", ""]
    pm = result.get("pof", {}).get("meta", {})
    md += [
        f"**Research implementation** (PriceofFreedom): {pm.get('pof', 'not run')}; "
        f"{pm.get('environment', '')} jax {pm.get('jax', '-')}, e3nn-jax "
        f"{pm.get('e3nn_jax', '-')}."
        + (
            f" Cases: {json.dumps(pm['config'].get('lmaxes'))}, time budget "
            f"{pm.get('budget_s', 0):.0f} s split over its variants (run one subprocess each; "
            "cases beyond the budget are listed as skipped)."
            if pm.get("config")
            else ""
        ),
        "",
    ]
    md += [
        "**Method**: float32, jit; compile timed separately; "
        f"{cfg['warmup']} warm-up calls then {cfg['repeats']} timed calls per variant, "
        "variants interleaved call by call; median ± inter-quartile range in ms per call; "
        "FLOPs and peak memory from XLA's compiled cost/memory analysis; equivariance error = "
        "max |f(Dx, Dy) - D f(x, y)| / max |f| for a rotation composed with inversion, on the "
        "benchmarked batch. Batch sizes by L (mimo and edge-free settings): "
        + ", ".join(f"L{k}: {v}" for k, v in cfg["batch"].items() if ":" not in str(k))
        + _overrides(cfg["batch"])
        + f". Edge setting: {cfg['edges']} edges x C channels.",
        "",
    ]
    md += [
        "Settings: `siso` one irrep L in (parity (-1)^L), CG-allowed `Le` out; `simo` one irrep "
        "in, `s2_irreps(2L)` out; `mimo` `s2_irreps(L)` in, `s2_irreps(2L)` out; `edge` C "
        "channels of `s2_irreps(L)` times the spherical harmonics of one edge, `s2_irreps(L)` "
        "out. `so2` needs spherical-harmonic input with a degree-1 block, so it runs in `mimo` "
        "(L>=1) and `edge` only; `e3nn` is `e3nn.tensor_product` on the same paths.",
        "",
    ]
    md += ["## Acceptance checks", "", _table(["check", "measured", "met"], checks(result)), ""]
    for setting, mode in (("siso", "fwd"), ("simo", "fwd"), ("mimo", "fwd"), ("mimo", "fwd_bwd")):
        sel = [r for r in rows if r.get("setting") == setting and r.get("mode") == mode]
        if not sel:
            continue
        names = _variants(sel)
        pof = [
            r
            for r in result.get("pof", {}).get("rows", [])
            if r.get("setting") == setting and mode == "fwd"
        ]
        pnames = _variants(pof) if pof else []
        ls = sorted({r["L"] for r in sel})
        body = [
            [f"L={l}", str((_find(sel, L=l) or {}).get("batch", ""))]
            + [_cell(_find(sel, variant=v, L=l)) for v in names]
            + [_cell(_find(pof, variant=v, L=l)) for v in pnames]
            for l in ls
        ]
        md += [
            f"## {setting}, {'forward' if mode == 'fwd' else 'forward+backward'}: ms per call",
            "",
            _table(["L", "batch"] + names + pnames, body),
            "",
        ]
        err = [
            [
                v,
                _fmt(max((r.get("equivariance_error") or 0) for r in sel if r["variant"] == v), 2),
                _fmt(max((r.get("compile_s") or 0) for r in sel if r["variant"] == v), 2),
                _fmt(max((r.get("peak_bytes") or 0) for r in sel if r["variant"] == v) / 2**20, 3),
            ]
            for v in names
        ]
        err += [
            [
                v,
                _fmt(max((r.get("equivariance_error") or 0) for r in pof if r["variant"] == v), 2),
                _fmt(max((r.get("compile_s") or 0) for r in pof if r["variant"] == v), 2),
                _fmt(max((r.get("peak_bytes") or 0) for r in pof if r["variant"] == v) / 2**20, 3),
            ]
            for v in pnames
        ]
        md += [
            _table(["variant", "max equivariance error", "max compile s", "max peak MiB"], err),
            "",
        ]
        skips = sorted({(r["variant"], r["skipped"]) for r in sel + pof if "skipped" in r})
        if skips:
            md += ["Skipped: " + "; ".join(f"{v}: {why}" for v, why in skips), ""]
    edge = [r for r in rows if r.get("setting") == "edge"]
    if edge:
        names = _variants(edge)
        keys = sorted({(r["mode"], r["L"], r["channels"]) for r in edge})
        body = [
            [m, f"L={l}", c]
            + [_cell(_find(edge, variant=v, L=l, channels=c, mode=m)) for v in names]
            for m, l, c in keys
        ]
        md += [
            "## edge setting (realistic channels): ms per call",
            "",
            _table(["mode", "L", "C"] + names, body),
            "",
        ]
    sl = [s for s in result["slopes"] if s["mode"] == "fwd"]
    if sl:
        body = [
            [
                s["variant"],
                s["setting"],
                s["L_range"],
                _fmt(s["time_slope"], 2),
                _fmt(s["flops_slope"], 2),
                _fmt(s["theory"], 2),
            ]
            for s in sl
        ]
        md += [
            "## Cost versus L (log-log slopes, per sample, large L: L >= 5)",
            "",
            "Measured exponent k of time ~ L^k and of XLA FLOPs ~ L^k beside the theoretical "
            "operation count (see docs/tensorproducts.md). Fixed overheads flatten measured "
            "slopes at small L.",
            "",
            _table(["variant", "setting", "L", "time slope", "FLOPs slope", "theory"], body),
            "",
        ]
    ex = result.get("expressivity", [])
    if ex:
        body = [
            [
                e["variant"],
                e["L"],
                f"{e['paths']}/{e['cg_paths']}",
                e.get("interactability", "-"),
                e.get("interactability_internal", "-"),
            ]
            for e in ex
        ]
        md += [
            "## Expressivity (computed)",
            "",
            "Paths realised for `s2_irreps(L)` inputs and outputs of any parity up to 2L (of "
            "all CG paths); interactability = rank of the Jacobian of the output w.r.t. the "
            "weights of the linear layers around the product (`s2_irreps(2L)` out), and with "
            "the product's internal weights where it has them.",
            "",
            _table(["variant", "L", "paths", "interactability", "with internal weights"], body),
            "",
        ]
    md += ["## Where a variant loses, and why", ""]
    md += _losses(result)
    md += ["", "## Plots", ""] + [f"![{f}]({f})" for f in files] + [""]
    path = out_dir / "report.md"
    path.write_text("\n".join(md))
    return path


def _overrides(batch: dict) -> str:
    """``"; siso: 10000 at L1-10"`` for the ``"setting:L"`` keys of a batch table."""
    per: dict = {}
    for k, v in batch.items():
        if ":" in str(k):
            setting, lmax = str(k).split(":")
            per.setdefault((setting, v), []).append(int(lmax))
    return "".join(f"; {s}: {v} at L{min(ls)}-{max(ls)}" for (s, v), ls in sorted(per.items()))


def _losses(result) -> list[str]:
    """One line per (setting, mode) naming the fastest variant and each slower one's factor at
    the largest L, with the reason from :data:`WHY`."""
    rows = result["rows"]
    out = []
    for setting in ("siso", "simo", "mimo", "edge"):
        for mode in ("fwd", "fwd_bwd"):
            sel = [
                r
                for r in rows
                if r.get("setting") == setting and r.get("mode") == mode and "median_ms" in r
            ]
            if not sel:
                continue
            lmax = max(r["L"] for r in sel)
            at = [
                r
                for r in sel
                if r["L"] == lmax
                and r.get("channels", 1) == max(x.get("channels", 1) for x in sel if x["L"] == lmax)
            ]
            best = min(at, key=lambda r: r["median_ms"])
            slower = sorted((r for r in at if r is not best), key=lambda r: r["median_ms"])
            desc = "; ".join(
                f"{r['variant']} {r['median_ms'] / best['median_ms']:.1f}x" for r in slower
            )
            out.append(
                f"- **{setting} {mode}, L={lmax}**: fastest {best['variant']} "
                f"({_fmt(best['median_ms'])} ms); slower: {desc}."
            )
    names = {r["variant"] for r in rows if "median_ms" in r}
    out += ["", "Reasons (from the algorithms; the factors above are what the data show):"]
    out += [f"- {v}: {why}." for v, why in WHY.items() if v in names]
    return out
