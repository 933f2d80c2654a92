"""What a tensor-product benchmark result did not measure, and the command that completes it.

A run can stop short. ``--budget-min`` stops our harness from starting new cases once it has run
that long (their rows say "time budget of the run exhausted"). The research implementation has
its own budget (``--pof-budget-s``), split over one subprocess per research variant. Its cut rows
say "time budget of the research run exhausted", or "research worker: timeout (killed)" when the
subprocess was killed. :func:`coverage_lines` counts the measured cases per (setting, mode) and
per research variant, says why the others were not measured, and gives the command that reruns
what a budget cut. Every count is read from the rows.
"""

from __future__ import annotations

from .bench_format import variants_of

__all__ = ["RESEARCH_LIMITS", "coverage_lines", "l_ranges", "skip_kind"]

SETTINGS_ORDER = ("mimo", "edge", "siso", "simo")
_CUT = ("budget", "killed")  # kinds that a rerun with more time completes
ENV = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1"

# research variants that more time cannot complete on the settings' inputs (from its source)
RESEARCH_LIMITS = {
    "pof:VGTP-grid": "its product takes vector-spherical-harmonic coefficients: `VSHCoeffs` "
    "(freedom/tensor_products/vector_spherical_harmonics.py) raises ValueError unless the inputs "
    "carry exactly the irreps of `1o x s2_irreps(jmax)`, which the `s2_irreps(L)` inputs of mimo "
    "never do, so a longer run records these rows as failed, not timed (a different product "
    "from ours: docs/tensorproducts.md, Expressivity)",
}

_KINDS = (  # (reason prefix, kind), first match wins
    ("time budget", "budget"),
    ("research worker: timeout", "killed"),
    ("not measured above", "limit"),
    ("too slow", "slow"),
    ("needs spherical", "n/a"),
    ("no path", "n/a"),
    ("skipped:", "absent"),
)
_WORDS = {
    "budget": "cut by the time budget",
    "killed": "lost when the time limit killed the research subprocess",
    "limit": "above the configured L limit",
    "slow": "over the per-call limit (larger L skipped)",
    "n/a": "not applicable",
    "absent": "not run",
    "failed": "failed",
}


def skip_kind(reason: str) -> str:
    """``budget`` or ``killed`` (a rerun with more time completes it), ``limit``, ``slow``,
    ``n/a``, ``absent`` (research code not run) or ``failed`` (anything else: read the reason)."""
    for prefix, kind in _KINDS:
        if reason.startswith(prefix):
            return kind
    return "failed"


def l_ranges(ls) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    ls = sorted(set(ls))
    runs: list[list[int]] = []
    for lv in ls:
        if runs and lv == runs[-1][-1] + 1:
            runs[-1].append(lv)
        else:
            runs.append([lv])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)


def _count(rows, where: str = "") -> str:
    """``"8 of 30 measured (mimo L=1-8); 22 cut by the time budget"``, most frequent kind first."""
    timed = [r for r in rows if "median_ms" in r]
    head = (
        f"{len(timed)} of {len(rows)} measured{where}" if timed else f"none of {len(rows)} measured"
    )
    per: dict[str, int] = {}
    for r in rows:
        if "skipped" in r:
            per[skip_kind(r["skipped"])] = per.get(skip_kind(r["skipped"]), 0) + 1
    tail = "; ".join(f"{n} {_WORDS[k]}" for k, n in sorted(per.items(), key=lambda t: -t[1]))
    return head + (f"; {tail}" if tail else "")


def _ours(rows) -> tuple[list[str], bool]:
    out, cut = [], False
    for setting in SETTINGS_ORDER:
        for mode in ("fwd", "fwd_bwd"):
            sel = [r for r in rows if r.get("setting") == setting and r.get("mode") == mode]
            if not sel:
                continue
            cut |= any(skip_kind(r.get("skipped", "")) in _CUT for r in sel if "skipped" in r)
            timed = [r for r in sel if "median_ms" in r]
            where = ""
            if timed and setting != "edge":
                where = f" (L={l_ranges(r['L'] for r in timed)})"
            elif timed:
                where = (
                    " (" + ", ".join(sorted({f"L{r['L']} C{r['channels']}" for r in timed})) + ")"
                )
            out.append(f"- ours, **{setting} {mode}**: {_count(sel, where)}.")
    return out, cut


def _research(pof_rows) -> tuple[list[str], bool]:
    out, cut = [], False
    for name in variants_of(pof_rows):
        sel = [r for r in pof_rows if r["variant"] == name]
        cut |= any(skip_kind(r.get("skipped", "")) in _CUT for r in sel if "skipped" in r)
        timed = [r for r in sel if "median_ms" in r]
        where = ""
        if timed:
            per = {}
            for r in timed:
                per.setdefault(r["setting"], []).append(r["L"])
            where = " (" + "; ".join(f"{s} L={l_ranges(ls)}" for s, ls in per.items()) + ")"
        ours = sel[0].get("ours")
        label = f"research {name}" + (f" (beside our {ours})" if ours else "")
        out.append(f"- {label}: {_count(sel, where)}.")
        if name in RESEARCH_LIMITS and len(timed) < len(sel):
            out.append(f"  Note: {RESEARCH_LIMITS[name]}.")
    return out, cut


def coverage_lines(result: dict) -> list[str]:
    """Markdown lines: what this result measured, what it did not and why, and how to finish."""
    rows = result["rows"]
    pof = result.get("pof", {})
    ours, ours_cut = _ours(rows)
    research, research_cut = _research(pof.get("rows", []))
    out = ["Cases per (setting, mode), ours and the research code's, and why any were not "
           "measured:", ""] + ours + research  # fmt: skip
    failed = sorted(
        {
            (r["variant"], r["skipped"])
            for r in rows + pof.get("rows", [])
            if "skipped" in r and skip_kind(r["skipped"]) == "failed"
        }
    )
    if failed:
        out += ["", "Failed (read the reason; more time does not fix these):"]
        out += [f"- {v}: {why}" for v, why in failed]
    if not (ours_cut or research_cut):
        out += ["", "No case was cut by a time budget."]
        return out
    deadline = result.get("config", {}).get("deadline_s")
    parts = []
    if ours_cut:
        parts.append(
            "our harness stopped starting cases after "
            + (f"{deadline / 60:.0f} min (`--budget-min`)" if deadline else "its time budget")
        )
    if research_cut:
        budget = pof.get("meta", {}).get("budget_s")
        parts.append(
            "the research run's budget ("
            + (f"`--pof-budget-s {budget:.0f}`" if budget else "`--pof-budget-s`, not recorded")
            + ") ran out or killed its subprocesses"
        )
    ran_pof = any(skip_kind(r.get("skipped", "")) != "absent" for r in pof.get("rows", []))
    cmd = f"{ENV} facet bench tp" + (" --pof PATH" if ran_pof else "")
    cmd += " --pof-budget-s 3600" if research_cut else ""
    fixes = ["no `--budget-min` (no deadline)"] if ours_cut else []
    if research_cut:
        fixes.append(
            "a larger research budget (3600 s is a suggestion: what it needs is not known from "
            "this run)"
        )
    out += [
        "",
        f"**Not completed in this run**: {' and '.join(parts)}. The rows cut this way are "
        "missing, not slow: nothing can be read from them. To complete them, rerun on a quiet "
        f"machine with {' and '.join(fixes)}:",
        "",
        f"    {cmd}",
        "",
        "The command has no option to run only the missing settings, so the rerun measures "
        "every case again (all rows of a report must come from one run).",
    ]
    return out
