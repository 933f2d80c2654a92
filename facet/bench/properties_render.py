"""The report of ``facet bench properties``: ``report.md`` (summary against the targets, the
equations of state, Gamma phonons and water side by side) and ``properties.png``, rendered from
the comparison of :mod:`facet.bench.properties_compare`."""

from __future__ import annotations

import math
from pathlib import Path

from . import common
from .properties_compare import TARGETS


def verdict(met) -> str:
    return "n/a (no teacher)" if met is None else ("met" if met else "not met")


def _f(x, spec=".3g") -> str:
    if x is not None and isinstance(x, float) and math.isinf(x):
        return "fail"
    return common.fmt(x, spec)


def _plot_parity(ax, rows: list[dict], key: str, label: str) -> None:
    """Facet against teacher for one EOS quantity, one point per crystal."""
    pts = [
        (r[f"teacher_{key}"], r[f"facet_{key}"], r["name"])
        for r in rows
        if r[f"teacher_{key}"] is not None and r[f"facet_{key}"] is not None
    ]
    if pts:
        x, y, names = zip(*pts, strict=True)
        ax.scatter(x, y, s=18)
        for xi, yi, n in pts:
            ax.annotate(n, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
        lo, hi = min(min(x), min(y)), max(max(x), max(y))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="Facet = teacher")
        if key == "b0_GPa":
            ax.set_xscale("log")
            ax.set_yscale("log")
    missing = [
        r["name"] for r in rows if r["teacher_status"] == "ok" and r["facet_status"] != "ok"
    ]
    ax.set_title(
        label + (f"\nno Facet minimum: {', '.join(missing)}" if missing else ""), fontsize=9
    )
    ax.set_xlabel("SevenNet-0 (teacher)")
    ax.set_ylabel("Facet")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _plot_errors(ax, rows: list[dict]) -> None:
    """a0 and B0 errors per crystal (hatched: no Facet minimum) and the targets."""
    names = [r["name"] for r in rows]
    cap = 100.0
    for k, (key, lab) in enumerate((("a_err_pct", "a0"), ("b_err_pct", "B0"))):
        vals = [min(r[key], cap) if r[key] is not None else 0.0 for r in rows]
        bars = ax.bar(
            [i + 0.4 * k for i in range(len(rows))], vals, width=0.4, label=f"{lab} error"
        )
        for bar, r in zip(bars, rows, strict=True):
            if r[key] is not None and math.isinf(r[key]):  # no Facet minimum: a failure
                bar.set_hatch("//")
                bar.set_alpha(0.5)
    ax.axhline(TARGETS["median_lattice_error_pct"][0], color="C0", ls=":", lw=0.8)
    ax.axhline(TARGETS["median_bulk_modulus_error_pct"][0], color="C1", ls=":", lw=0.8)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xticks([i + 0.2 for i in range(len(rows))], names, rotation=90, fontsize=7)
    ax.set_ylabel(f"|Facet - teacher| / teacher (%), capped at {cap:g}")
    ax.set_title(
        "errors per crystal (dotted: targets 1 % and 10 %; hatched: no Facet minimum)", fontsize=9
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _plot_phonons(ax, res: dict) -> None:
    """Optical Gamma frequencies of both sides; the water angles in the title."""
    xt = []
    for k, r in enumerate(r for r in res["rows"] if r["kind"] == "phonons"):
        for side, mk in (("teacher", "o"), ("facet", "x")):
            if r[f"{side}_THz"]:
                ax.scatter(
                    [k] * len(r[f"{side}_THz"]),
                    r[f"{side}_THz"],
                    marker=mk,
                    label=side if k == 0 else None,
                    color="C0" if side == "teacher" else "C3",
                )
        xt.append(r["name"])
    w = next(r for r in res["rows"] if r["kind"] == "water")
    ax.set_xticks(range(len(xt)), xt)
    ax.set_xlim(-0.7, len(xt) - 0.3)
    ax.set_ylabel("Gamma optical frequencies (THz)")
    ax.set_title(
        f"Gamma phonons; water H-O-H: teacher {_f(w['teacher_angle_deg'], '.1f')} deg, "
        f"Facet {_f(w['facet_angle_deg'], '.1f')} deg",
        fontsize=9,
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def plot(res: dict, path: Path) -> Path:
    """``properties.png``: a0 and B0 parity plots, errors per crystal, Gamma phonons."""
    plt = common.pyplot()
    rows = [r for r in res["rows"] if r["kind"] == "eos"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    _plot_parity(axes[0, 0], rows, "a0", "lattice constant a0 (A)")
    _plot_parity(axes[0, 1], rows, "b0_GPa", "bulk modulus B0 (GPa)")
    _plot_errors(axes[1, 0], rows)
    _plot_phonons(axes[1, 1], res)
    fig.suptitle(f"{res['sides']['facet']['calculator']['model']} vs SevenNet-0 (teacher)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _intro_lines(res: dict) -> list[str]:
    """Title, run metadata, both sides and the method in one paragraph."""
    meta, sides = res["meta"], res["sides"]
    facet, teacher = sides["facet"], sides.get("teacher")
    lines = ["# Material properties: Facet vs its teacher SevenNet-0", ""]
    lines += common.meta_lines(meta) + [""]
    tc = teacher["calculator"] if teacher else None
    lines += [
        f"Facet side: {facet['calculator']['model']}, {facet['calculator']['dtype']}. "
        "Teacher side: "
        + (f"{tc['model']} ({tc['checkpoint']}, float32)" if tc else "none")
        + f", {meta.get('teacher_from')}.",
        "",
        "Both sides run the same code (`facet.bench.properties`, pure ASE), each in its own "
        "environment. Equations of state: primitive cell at "
        f"{facet['settings']['n_points']} lattice constants within +-"
        f"{100 * facet['settings']['span']:g} % of a reference (experimental) value, third-order "
        "Birch-Murnaghan fit (`ase.eos`); a scan whose lowest energy lies at an end has no "
        "minimum and is not fitted (it counts as a failed crystal in the medians). All crystals "
        "are cubic with atoms on fixed positions (no internal relaxation; the largest residual "
        "force of each scan is in results.json). Gamma phonons: +-0.01 A finite displacements in "
        "the primitive cell at each model's own a0, no LO-TO correction; optical modes compared. "
        "Water: `molecule('H2O')` distorted, 15 A box, FIRE to fmax 0.01 eV/A.",
        "",
        "![properties](properties.png)",
        "",
        "## Summary against the targets of issue 16",
        "",
    ]
    return lines


def _summary_lines(res: dict) -> list[str]:
    """The metrics against their targets and the crystals each median leaves out or fails."""
    mrows = []
    for m in res["metrics"].values():
        n = f" (n = {m['n']})" if "n" in m else ""
        mrows.append(
            [
                m["what"] + n,
                f"{_f(m['value'])} {m['unit']}",
                f"<= {m['target']:g} {m['unit']}",
                verdict(m["met"]),
            ]
        )
    lines = common.md_table(["metric", "Facet vs teacher", "target", "status"], mrows)
    if res.get("facet_without_minimum"):
        lines += [
            "",
            "Facet scans without a fitted minimum (counted as failures): "
            + ", ".join(res["facet_without_minimum"])
            + ".",
        ]
    if res.get("crystals_without_teacher_fit"):
        lines += [
            "",
            "Crystals left out of the medians because the teacher has no fitted "
            "minimum or did not run: " + ", ".join(res["crystals_without_teacher_fit"]) + ".",
        ]
    return lines


def _eos_lines(res: dict) -> list[str]:
    lines = ["", "## Equations of state", ""]
    trows = []
    for r in (r for r in res["rows"] if r["kind"] == "eos"):
        note = "; ".join(
            f"{s}: {r[f'{s}_reason']}" for s in ("teacher", "facet") if r.get(f"{s}_reason")
        )
        trows.append(
            [
                r["name"],
                r["structure"],
                _f(r["teacher_a0"], ".4f"),
                _f(r["facet_a0"], ".4f"),
                _f(r["a_err_pct"], ".2f"),
                _f(r["teacher_b0_GPa"], ".1f"),
                _f(r["facet_b0_GPa"], ".1f"),
                _f(r["b_err_pct"], ".1f"),
                _f(r["teacher_bp"], ".2f"),
                _f(r["facet_bp"], ".2f"),
                note,
            ]
        )
    lines += common.md_table(
        [
            "crystal",
            "structure",
            "a0 teacher (A)",
            "a0 Facet (A)",
            "a0 err %",
            "B0 teacher (GPa)",
            "B0 Facet (GPa)",
            "B0 err %",
            "B' teacher",
            "B' Facet",
            "note",
        ],
        trows,
    )
    return lines


def _phonon_water_lines(res: dict) -> list[str]:
    lines = ["", "## Gamma phonons (optical modes, THz)", ""]
    prow = []
    for r in (r for r in res["rows"] if r["kind"] == "phonons"):
        fmt_list = lambda v: "n/a" if not v else ", ".join(f"{x:.3f}" for x in v)  # noqa: E731
        prow.append(
            [
                r["name"],
                f"{_f(r['teacher_a'], '.4f')} / {_f(r['facet_a'], '.4f')}",
                fmt_list(r["teacher_THz"]),
                fmt_list(r["facet_THz"]),
                _f(r["max_rel_err_pct"], ".2f"),
            ]
        )
    lines += common.md_table(
        ["crystal", "a teacher / Facet (A)", "teacher", "Facet", "max rel. err %"], prow
    )
    w = next(r for r in res["rows"] if r["kind"] == "water")
    lines += ["", "## Water molecule (FIRE, fmax 0.01 eV/A)", ""]
    lines += common.md_table(
        ["", "H-O-H angle (deg)", "O-H (A)", "converged"],
        [
            [
                "teacher",
                _f(w["teacher_angle_deg"], ".2f"),
                _f(w["teacher_oh_A"], ".4f"),
                w["teacher_converged"],
            ],
            [
                "Facet",
                _f(w["facet_angle_deg"], ".2f"),
                _f(w["facet_oh_A"], ".4f"),
                w["facet_converged"],
            ],
            ["difference", _f(w["angle_diff_deg"], ".2f"), _f(w["oh_diff_A"], ".4f"), ""],
        ],
    )
    return lines


def write_report(res: dict, out: Path) -> Path:
    """``report.md`` (and ``properties.png``) in ``out``; only the introduction and the Facet
    side's error when the comparison could not be made."""
    out.mkdir(parents=True, exist_ok=True)
    facet, teacher = res["sides"]["facet"], res["sides"].get("teacher")
    lines = _intro_lines(res)
    path = out / "report.md"
    if "metrics" not in res:
        lines += ["The Facet side failed: " + facet.get("error", "?")]
        path.write_text("\n".join(lines) + "\n")
        return path
    lines += _summary_lines(res) + _eos_lines(res) + _phonon_water_lines(res)
    times = [
        f"Facet side {facet.get('time_s', 0):.0f} s of properties "
        f"({facet.get('wall_s', 0):.0f} s with start-up)"
    ]
    if teacher:
        times.append(f"teacher {teacher.get('time_s', 0):.0f} s")
    lines += ["", "Time: " + ", ".join(times) + ".", ""]
    path.write_text("\n".join(lines) + "\n")
    plot(res, out / "properties.png")
    return path
