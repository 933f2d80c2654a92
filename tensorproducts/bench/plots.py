"""Matplotlib plots of a tensor-product benchmark result (PNG files beside ``report.md``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .format import find_row, variants_of
from .runs import current, stamp

__all__ = ["plot"]


def plot(result: dict, out_dir: Path) -> list[str]:
    """Draw the figures of ``result`` into ``out_dir``; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = result.get("meta", {}).get("run_id")
    rows = current(stamp(result["rows"], run))  # one row per case (the newest run's)
    pof = [  # the research vector Gaunt on VSH inputs is drawn beside our mimo rows
        dict(r, variant=r["variant"] + "[vsh]", setting=r["ours_setting"]) if "ours_setting" in r
        else r
        for r in current(stamp(result.get("pof", {}).get("rows", []), run))
    ]  # fmt: skip
    files = [_time_vs_l(plt, rows, pof, out_dir), _flops_and_backward(plt, rows, out_dir)]
    edge = [
        r
        for r in rows
        if r.get("setting") == "edge" and r.get("mode") == "fwd" and "median_ms" in r
    ]
    if edge:
        files.append(_edge_channels(plt, edge, out_dir))
    return files


def _time_vs_l(plt, rows: list[dict], pof: list[dict], out_dir: Path) -> str:
    """Forward time per sample against L, one panel per setting, ours and the research code's."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), sharey=True)
    for ax, setting in zip(axes, ("siso", "simo", "mimo"), strict=True):
        for v in variants_of(rows):
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
    return "time_vs_L.png"


def _flops_and_backward(plt, rows: list[dict], out_dir: Path) -> str:
    """mimo: XLA FLOPs per sample (forward) and time per sample (forward+backward) against L."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for v in variants_of(rows):
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
    return "flops_and_backward.png"


def _edge_channels(plt, edge: list[dict], out_dir: Path) -> str:
    """Edge setting, forward: ms per call by (L, channels), one bar per variant."""
    cases = sorted({(r["L"], r["channels"]) for r in edge})
    names = variants_of(edge)
    fig, ax = plt.subplots(figsize=(max(8, len(cases) * 1.2), 4.5))
    width = 0.8 / len(names)
    for k, v in enumerate(names):
        vals = [
            (find_row(edge, variant=v, L=l, channels=c) or {}).get("median_ms", np.nan)
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
    return "edge_channels.png"
