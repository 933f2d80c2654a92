"""Verdicts of a tensor-product benchmark result: acceptance checks and where a variant loses.

:func:`checks` compares the rows with the issue's acceptance criteria; :func:`losses` names, per
setting and mode, the fastest variant and each slower one's factor, with the reasons in
:data:`WHY`, which are printed only for variants the data show.
"""

from __future__ import annotations

import numpy as np

from .coverage import l_ranges
from .format import fmt, variants_of
from .harness import median_of
from .runs import (
    case_key,
    current,
    newest_pairs,
    one_run,
    paired_times,
    partner_index,
    runs_of,
    stamp,
)

__all__ = ["RESEARCH_WHY", "WHY", "checks", "losses", "paired_ratio"]


WHY = {
    "cg-sparse": "the selection rule removes about 4.5x of the multiply-adds (XLA FLOPs), but the "
    "products x_m1 y_m2 it keeps must be gathered, which is memory-bound on a CPU; with the batch "
    "cache-blocked (tensorproducts/_blocking.py) the gathers stay in cache and the fewer FLOPs "
    "pay from moderate L in many-output settings, while for single outputs, small L and the "
    "backward pass (whose transposed gathers are scatters) the compute-bound dense matmul wins "
    "(a gather-free Toeplitz/skew layout and a single gather from the flattened outer product "
    "were both measured slower still)",
    "gaunt-fourier": "XLA's CPU FFT is slow for a batch of small 2D transforms and the torus grid "
    "has twice the points of the sphere grid; the SH<->Fourier tables cost O(L^3) like the grid",
    "gaunt-fourier[direct]": "the direct convolution is O(L^4) complex multiply-adds per sample",
    "matrix": "the (L+1)^2 x (L+1)^2 matrix product is O(L^6) and its embedding/decomposition "
    "tables are dense",
    "so2": "two rotations per product (O(L^3) but with many small J-matrix multiplies) dominate at "
    "small L, where dense CG is only a few hundred multiply-adds; at large L, because the "
    "benchmark passes no weights, so2 first turns the CG path weights into its per-m slots for "
    "every sample with a dense paths x slots matmul, which is most of its XLA FLOPs and why its "
    "FLOPs slope exceeds the O(L^3) of rotations and mixing (the model passes per-edge slot "
    "weights from its radial network and skips that step)",
    "cg-dense": "O(L^6) multiply-adds",
    "gaunt-grid": "a fixed cost of two forward and one inverse grid transform per product",
    "vector-gaunt-grid": "three vector components per grid point and VSH transforms",
    "e3nn": "per-path einsums",
}

# why ours can lose to the research implementation of the same variant while doing more XLA
# FLOPs (printed only for a measured loss with ours/research FLOPs above 1.05)
RESEARCH_WHY = {
    "cg-dense": "where D1 D2 Dout <= 16384 (`s2_irreps(L)` x `s2_irreps(L)` -> `s2_irreps(2L)` "
    "up to L = 3) our cg-dense multiplies the whole outer product by one stacked CG matrix, zeros "
    "included: more FLOPs in fewer, larger ops, which pays at L = 1, 2 and is about even at the "
    "threshold",
}


def checks(result: dict) -> list[tuple[str, str, str]]:
    """``(check, measured, verdict)`` for the issue's acceptance comparisons.

    Only rows of one run are compared (:mod:`tensorproducts.bench.runs`): every pair of rows
    (e3nn against cg-dense, the research code against ours) carries the same ``run`` id, and
    gaunt-grid against cg-dense is read from one run. In a merged result each check therefore
    reads the run that measured its rows; a row whose run lacks the partner is not compared.
    A research row with a ``paired`` field (ours timed beside it in the research worker,
    ABBA-interleaved: :func:`paired_ratio`) is compared by that pair instead of our row."""
    default = result.get("meta", {}).get("run_id", "")
    rows = stamp(result["rows"], default)
    out = []
    pair = _largest_l_pair(rows)
    if pair:
        lmax, c, g, run = pair
        out.append(
            (
                f"gaunt-grid >= 7x faster than cg-dense, mimo L={lmax}",
                f"{c / g:.1f}x ({fmt(c)} vs {fmt(g)} ms){_tag(result, run)}",
                "yes" if c / g >= 7 else "NO",
            )
        )
    out += _e3nn_checks(rows)
    all_pof = stamp(result.get("pof", {}).get("rows", []), default)
    pof = current(all_pof)
    for ours in sorted({r.get("ours") for r in pof if r.get("ours")}):
        out += _research_check(ours, all_pof, pof, rows)
    return out


def _e3nn_checks(rows: list[dict]) -> list[tuple[str, str, str]]:
    """cg-dense against ``e3nn.tensor_product`` per setting and mode, on rows of one run."""
    out = []
    for setting in ("siso", "simo", "mimo", "edge"):
        for mode in ("fwd", "fwd_bwd"):
            ratios = []
            e3 = [
                r
                for r in rows
                if (r.get("variant"), r.get("setting"), r.get("mode")) == ("e3nn", setting, mode)
            ]
            for r, cd in _newest_pairs(e3, rows, lambda r: dict(variant="cg-dense")).values():
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
    return out


def _research_check(ours: str, all_pof, pof, rows) -> list[tuple[str, str, str]]:
    """Our variant ``ours`` against the research rows that name it (none or one check): by
    each row's ``paired`` times, else by our row of the same run and case."""
    cmp, lost, skipped, unpaired, interleaved, other = [], [], 0, 0, 0, False
    mine_of = _newest_pairs(
        [r for r in all_pof if r.get("ours") == ours],
        rows,
        lambda r: dict(variant=r["ours"], setting=r.get("ours_setting", r["setting"])),
    )
    for r in pof:
        if r.get("ours") != ours:
            continue
        q = paired_ratio(r) if "median_ms" in r else None
        if q is not None:  # timed beside ours in one process: no cross-row pairing needed
            interleaved += 1
        elif case_key(r) in mine_of:
            r, mine = mine_of[case_key(r)]
            q = r["median_ms"] / mine
        elif "median_ms" not in r:
            skipped += 1
            continue
        else:
            unpaired += 1
            continue
        other |= r.get("ours_setting", r["setting"]) != r["setting"]
        cmp.append(q)
        if q < 1:
            lost.append(f"{r['setting']} L={r['L']} ({q:.2f}x)")
    note = f"{skipped} research cases skipped" + (
        f", {unpaired} without a row of ours in their run" if unpaired else ""
    )
    title = f"{ours} at least as fast as the research implementation" + (
        " (research on VSH-coefficient inputs, ours on s2_irreps: different products at equal L)"
        if other
        else ""
    )
    if cmp:
        verdict = "yes" if not lost else "NO: " + ", ".join(lost)
        return [
            (
                title,
                f"research/ours median {np.median(cmp):.1f}x, min {min(cmp):.2f}x over "
                f"{len(cmp)} cases ({interleaved} interleaved; {note})",
                verdict,
            )
        ]
    if skipped or unpaired:
        return [(f"{ours} vs research implementation", f"nothing compared ({note})", "n/a")]
    return []


def paired_ratio(row: dict) -> float | None:
    """research / ours median time of a research row's ``paired`` field (both timed in the
    research worker's process, ABBA-interleaved: :func:`~.runs.paired_times`); None when
    the row has none (results written before the worker paired, or ours skipped there)."""
    t = paired_times(row)
    return t[1] / t[0] if t else None


def _newest_pairs(cands, rows, partner) -> dict[tuple, tuple[dict, float]]:
    """Per case of the measured rows ``cands``: ``(row, partner median ms)`` from the newest run
    in which ``rows`` hold the partner (:func:`~.runs.newest_pairs`)."""
    pairs = newest_pairs(cands, rows, partner)
    return {k: (cands[i], rows[j]["median_ms"]) for k, (i, j) in pairs.items()}


def _largest_l_pair(rows) -> tuple | None:
    """``(L, cg-dense ms, gaunt-grid ms, run)`` at the largest mimo L where one run timed both
    (newest run on a tie)."""
    best = None
    for r in rows:
        if (r.get("variant"), r.get("setting"), r.get("mode")) != ("gaunt-grid", "mimo", "fwd"):
            continue
        if "median_ms" not in r:
            continue
        c = median_of(rows, variant="cg-dense", setting="mimo", L=r["L"], mode="fwd", run=r["run"])
        if c and (best is None or (r["L"], r["run"]) > (best[0], best[3])):
            best = (r["L"], c, r["median_ms"], r["run"])
    return best


def _tag(result, run) -> str:
    return f" [run {run}]" if len(runs_of(result)) > 1 else ""


def losses(result) -> list[str]:
    """One line per (setting, mode) naming the fastest variant and each slower one's factor at
    the largest L, with the reason from :data:`WHY`."""
    rows = stamp(result["rows"], result.get("meta", {}).get("run_id", ""))
    out = []
    for setting in ("siso", "simo", "mimo", "edge"):
        for mode in ("fwd", "fwd_bwd"):
            sel = [r for r in one_run(rows, setting=setting, mode=mode) if "median_ms" in r]
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
                f"({fmt(best['median_ms'])} ms); slower: {desc}.{_tag(result, best['run'])}"
            )
    out += _versus_reference(rows, tag=lambda run: _tag(result, run))
    out += _versus_research(result)
    names = {r["variant"] for r in rows if "median_ms" in r}
    out += ["", "Reasons (from the algorithms; the factors above are what the data show):"]
    out += [f"- {v}: {why}." for v, why in WHY.items() if v in names]
    return out


def _versus_reference(rows, ref: str = "cg-dense", tag=lambda run: "") -> list[str]:
    """Per (setting, mode) with ``ref`` timed at two L or more: the L where each variant is
    slower than ``ref`` (with the range of its time ratio) and where it is not; rows of the
    run that measured most of that (setting, mode)."""
    out = []
    for setting in ("siso", "simo", "mimo"):
        for mode in ("fwd", "fwd_bwd"):
            sel = [r for r in one_run(rows, setting=setting, mode=mode) if "median_ms" in r]
            base = {r["L"]: r["median_ms"] for r in sel if r["variant"] == ref}
            if len(base) < 2:
                continue
            parts = []
            for v in variants_of(sel):
                q = {r["L"]: r["median_ms"] / base[r["L"]] for r in sel
                     if r["variant"] == v and r["L"] in base}  # fmt: skip
                if v == ref or not q:
                    continue
                slow = [lv for lv in sorted(q) if q[lv] > 1]
                fast = [lv for lv in sorted(q) if q[lv] <= 1]
                text = (
                    f"{v} slower at L={l_ranges(slow)} ({_span(q[lv] for lv in slow)})"
                    if slow
                    else f"{v} never slower (L={l_ranges(fast)})"
                )
                parts.append(text + (f", not at L={l_ranges(fast)}" if slow and fast else ""))
            out.append(
                f"- **{setting} {mode}, L by L against {ref}** (time ratio; > 1 is slower): "
                + "; ".join(parts)
                + "."
                + tag(sel[0]["run"])
            )
    return out


def _span(values) -> str:
    vals = sorted(values)
    return f"{vals[0]:.1f}x" if len(vals) == 1 else f"{vals[0]:.1f}-{vals[-1]:.1f}x"


def _versus_research(result) -> list[str]:
    """Each case where the research implementation was faster than ours, with the ratio of XLA
    FLOPs (ours / research) that tells arithmetic apart from timing."""
    run = result.get("meta", {}).get("run_id", "")
    rows = stamp(result["rows"], run)
    pof = [
        r
        for r in current(stamp(result.get("pof", {}).get("rows", []), run))
        if "median_ms" in r and r.get("ours")
    ]
    if not pof:
        return []
    lost: dict[str, list[tuple]] = {}
    spreads: dict[str, list[float]] = {}  # IQR / median of the equal-FLOP losses, not paired
    tight: dict[str, list[float]] = {}  # the same of the paired (interleaved) losses
    for r in pof:
        got = _research_case(r, rows)
        if got is None or got[0] >= 1:
            continue
        q, fl, spread, inter = got
        lost.setdefault(r["ours"], []).append((r, q, fl, inter))
        equal = spread if fl and abs(fl - 1) <= 0.05 else 0
        (tight if inter else spreads).setdefault(r["ours"], []).append(equal)
    load = result.get("meta", {}).get("load_average_at_start")
    out = []
    for ours in sorted({r["ours"] for r in pof}):
        n = sum(1 for r in pof if r["ours"] == ours)
        k = sum(1 for r in pof if r["ours"] == ours and paired_ratio(r) is not None)
        n_cases = f"{n} cases" + (f" ({k} interleaved)" if k else "")
        if ours not in lost:
            out.append(
                f"- **{ours} against the research code**: not slower in any of the {n_cases} "
                "both measured."
            )
            continue
        cases = ", ".join(
            f"{r['setting']} L={r['L']} (research/ours time {q:.2f}, XLA FLOPs ours/research "
            f"{'-' if fl is None else f'{fl:.2f}'}{', interleaved' if inter else ''})"
            for r, q, fl, inter in lost[ours]
        )
        out.append(
            f"- **{ours} against the research code** ({lost[ours][0][0]['variant']}): "
            f"slower in {len(lost[ours])} of {n_cases}: {cases}."
        )
        if max(spreads.get(ours, [0])) > 0:
            out.append(
                "  Where the FLOPs are equal (within 5 %) both run the same arithmetic, so the gap "
                "is timing, not work: the research rows run after ours in the same invocation, "
                "not interleaved"
                + (f", on a machine with load {load[0]:.1f} at the start" if load else "")
                + f"; the IQR of these rows is up to {100 * max(spreads[ours]):.0f} % of their "
                "median."
            )
        if max(tight.get(ours, [0])) > 0:
            out.append(
                "  The cases marked interleaved were timed in one process, ours and the research "
                "code alternating call by call (ABBA), so machine drift hits both alike; where "
                "their FLOPs are equal (within 5 %) the IQR is up to "
                f"{100 * max(tight[ours]):.0f} % of the median."
            )
        if ours in RESEARCH_WHY and any(f is not None and f > 1.05 for _, _, f, _ in lost[ours]):
            out.append(f"  Where ours does more FLOPs: {RESEARCH_WHY[ours]}.")
    return out


def _research_case(r: dict, rows) -> tuple | None:
    """``(research/ours time, ours/research XLA FLOPs or None, IQR / median, interleaved)`` of
    the research row ``r``: from its ``paired`` field where it has one, else against our row of
    the same case and run in ``rows``; None when neither exists."""
    q = paired_ratio(r)
    i = partner_index(r, rows, variant=r["ours"], setting=r.get("ours_setting", r["setting"]))
    mine = [] if i is None else [rows[i]]
    if q is not None:
        p = r["paired"]
        ours_fl = p.get("ours_flops") or (mine[0].get("flops") if mine else None)
        fl = ours_fl / r["flops"] if ours_fl and r.get("flops") else None
        spread = max(
            p.get(f"{s}_iqr_ms", 0.0) / p[f"{s}_median_ms"] if p[f"{s}_median_ms"] else 0.0
            for s in ("ours", "research")
        )
        return q, fl, spread, True
    if not mine:
        return None
    fl = (mine[0].get("flops") or 0) / r["flops"] if r.get("flops") else None
    spread = max(x.get("iqr_ms", 0.0) / x["median_ms"] for x in (r, mine[0]))
    return r["median_ms"] / mine[0]["median_ms"], fl, spread, False
