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

from .format import variants_of
from .runs import current, runs_of, stamp

__all__ = ["RESEARCH_LIMITS", "completion_command", "coverage_lines", "l_ranges", "skip_kind"]

SETTINGS_ORDER = ("mimo", "edge", "siso", "simo")
_CUT = ("budget", "killed")  # kinds that a rerun with more time completes
ENV = "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1"
MERGE_TARGET = "docs/benchmarks/tp/results.json"

# research variants that more time cannot complete on the settings' inputs (from its source)
RESEARCH_LIMITS = {
    "pof:VGTP-grid": "its product takes vector-spherical-harmonic coefficients: `VSHCoeffs` "
    "(freedom/tensor_products/vector_spherical_harmonics.py) raises ValueError unless the inputs "
    "carry exactly the irreps of `1o x s2_irreps(jmax)`, which the `s2_irreps(L)` inputs of the "
    "three settings never do; tensorproducts.bench.pof therefore times it in the research-only "
    "setting `vsh` (both inputs the VSH coefficients up to jmax = L, output "
    "jmax = 2L: the inputs of the paper's own MIMO benchmark) and shows it beside our mimo rows "
    "(`[vsh]`); its rows on the three settings are not applicable. It is a different product "
    "from ours (docs/tensorproducts.md, Expressivity), so the comparison is at equal L, not "
    "equal work",
}

_KINDS = (  # (reason prefix, kind), first match wins
    ("time budget", "budget"),
    ("research worker: timeout", "killed"),
    ("not measured above", "limit"),
    ("too slow", "slow"),
    ("needs spherical", "n/a"),
    ("needs VSH", "n/a"),
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


def _runs_tag(sel, many: bool) -> str:
    if not many:
        return ""
    ids = sorted({r.get("run", "?") for r in sel})
    return f" [run{'s' if len(ids) > 1 else ''} {', '.join(ids)}]"


def _ours(rows, many: bool = False) -> tuple[list[str], set]:
    out, cut = [], set()
    for setting in SETTINGS_ORDER:
        for mode in ("fwd", "fwd_bwd"):
            sel = [r for r in rows if r.get("setting") == setting and r.get("mode") == mode]
            if not sel:
                continue
            if any(skip_kind(r.get("skipped", "")) in _CUT for r in sel if "skipped" in r):
                cut.add(setting)
            timed = [r for r in sel if "median_ms" in r]
            where = ""
            if timed and setting != "edge":
                where = f" (L={l_ranges(r['L'] for r in timed)})"
            elif timed:
                where = (
                    " (" + ", ".join(sorted({f"L{r['L']} C{r['channels']}" for r in timed})) + ")"
                )
            out.append(f"- ours, **{setting} {mode}**: {_count(sel, where)}.{_runs_tag(sel, many)}")
    return out, cut


def _research(pof_rows, many: bool = False) -> tuple[list[str], set]:
    out, cut = [], set()
    for name in variants_of(pof_rows):
        sel = [r for r in pof_rows if r["variant"] == name]
        for r in sel:
            if skip_kind(r.get("skipped", "")) in _CUT and "skipped" in r:
                cut.add((name.removeprefix("pof:"), r.get("ours_setting", r.get("setting"))))
        timed = [r for r in sel if "median_ms" in r]
        where = ""
        if timed:
            per = {}
            for r in timed:
                per.setdefault(r["setting"], []).append(r["L"])
            where = " (" + "; ".join(f"{s} L={l_ranges(ls)}" for s, ls in per.items()) + ")"
        ours = sel[0].get("ours")
        label = f"research {name}" + (f" (beside our {ours})" if ours else "")
        out.append(f"- {label}: {_count(sel, where)}.{_runs_tag(sel, many)}")
        if name in RESEARCH_LIMITS and any(r.get("setting") != "vsh" and "median_ms" not in r
                                           for r in sel):  # fmt: skip
            out.append(f"  Note: {RESEARCH_LIMITS[name]}.")
    return out, cut


def _budgets(result: dict, run_ids: set) -> tuple[list[str], list[str]]:
    """``--budget-min`` and ``--pof-budget-s`` of the runs ``run_ids`` as recorded (options),
    else as inferable (config ``deadline_s``, research meta ``budget_s``), else "not recorded"."""
    ours, research = [], []
    for run in runs_of(result):
        if run["run_id"] not in run_ids:
            continue
        opts = run.get("options") or {}
        minutes = opts.get("budget_min")
        if minutes is None and (run.get("config") or {}).get("deadline_s", 1e9) < 1e8:
            minutes = run["config"]["deadline_s"] / 60
        seconds = opts.get("pof_budget_s") or (run.get("pof") or {}).get("budget_s")
        ours.append(f"{minutes:.0f} min" if minutes else "its time budget (not recorded)")
        research.append(f"{seconds:.0f} s" if seconds else "not recorded")
    return ours or ["its time budget"], research or ["not recorded"]


def coverage_lines(result: dict) -> list[str]:
    """Markdown lines: what this result measured (one row per case: in a merged result the
    newest run's), what it did not and why, and the command that completes the rest."""
    default = result.get("meta", {}).get("run_id", "")
    rows = current(stamp(result["rows"], default))
    pof_rows = current(stamp(result.get("pof", {}).get("rows", []), default))
    many = len(runs_of(result)) > 1
    ours, ours_cut = _ours(rows, many)
    research, research_cut = _research(pof_rows, many)
    head = "Cases per (setting, mode), ours and the research code's, and why any were not measured"
    if many:
        head += (
            f" (this file merges {len(runs_of(result))} runs, see *Runs*; each case is counted "
            "once, from the newest run that measured it)"
        )
    out = [head + ":", ""] + ours + research
    failed = sorted(
        {
            (r["variant"], r["skipped"])
            for r in rows + pof_rows
            if "skipped" in r and skip_kind(r["skipped"]) == "failed"
        }
    )
    if failed:
        out += ["", "Failed (read the reason; more time does not fix these):"]
        out += [f"- {v}: {why}" for v, why in failed]
    if not (ours_cut or research_cut):
        out += ["", "No case was cut by a time budget."]
        return out
    cut_runs = {
        r.get("run") for r in rows + pof_rows if "skipped" in r and skip_kind(r["skipped"]) in _CUT
    }
    minutes, seconds = _budgets(result, cut_runs)
    parts = []
    if ours_cut:
        parts.append(
            f"our harness stopped starting cases after {' / '.join(sorted(set(minutes)))} "
            "(`--budget-min`)"
        )
    if research_cut:
        parts.append(
            f"the research run's budget (`--pof-budget-s`: {' / '.join(sorted(set(seconds)))}) "
            "ran out or killed its subprocesses"
        )
    out += [
        "",
        f"**Not completed**: {' and '.join(parts)}. The rows cut this way are missing, not slow: "
        "nothing can be read from them. To complete them, run only what is missing on a quiet "
        "machine and merge it into this file (no `--budget-min`: no deadline):",
        "",
        f"    {completion_command(rows, pof_rows)}",
        "",
        "The new run's rows carry its own run id; checks pair ours with e3nn and with the "
        "research code only within one run, which is why the research variants' settings are "
        "run again on our side too. Each setting is self-contained in this sense, so the "
        "command can also be split by `--settings` into shorter runs, each merged in turn. "
        "PATH is a PriceofFreedom checkout"
        + (
            "; the research budget is a suggestion (what it needs is not known from this file)."
            if research_cut
            else "."
        ),
    ]
    return out


def completion_command(rows: list[dict], pof_rows: list[dict]) -> str:
    """The ``facet bench tp`` command that measures the cases a budget cut (ours: their
    settings; research: its cut variants with their settings on both sides), merged into the
    committed file."""
    settings, pof_variants = set(), set()
    for r in rows:
        if "skipped" in r and skip_kind(r["skipped"]) in _CUT:
            settings.add(r["setting"])
    for r in pof_rows:
        if "skipped" in r and skip_kind(r["skipped"]) in _CUT:
            pof_variants.add(r["variant"].removeprefix("pof:"))
            settings.add(r.get("ours_setting", r["setting"]))
    order = [s for s in SETTINGS_ORDER if s in settings]
    cmd = f"{ENV} facet bench tp"
    cmd += f" --settings {','.join(order)}" if len(order) < len(SETTINGS_ORDER) else ""
    if pof_variants:
        every = {r["variant"].removeprefix("pof:") for r in pof_rows}
        cmd += " --pof PATH"
        cmd += f" --pof-variants {','.join(sorted(pof_variants))}" if pof_variants < every else ""
        cmd += " --pof-budget-s 3600"
    return cmd + f" --merge-into {MERGE_TARGET}"
