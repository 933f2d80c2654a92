"""The comparison of ``facet bench properties``: per-property rows of a Facet side against its
teacher and the summary metrics against the targets of issue 16 (:data:`TARGETS`).

Rules (see :mod:`facet.bench.properties_report`): a crystal where the teacher has no fitted
minimum is left out of the medians; a Facet failure where the teacher has one counts as an
infinite error (worse than any measured one), never as a skipped crystal.
"""

from __future__ import annotations

import math
import statistics

#: metric -> (target, unit, description): a metric is met when its value <= target.
TARGETS = {
    "median_lattice_error_pct": (1.0, "%", "median lattice-constant error"),
    "median_bulk_modulus_error_pct": (10.0, "%", "median bulk-modulus error"),
    "water_angle_diff_deg": (5.0, "deg", "water H-O-H angle difference"),
    "phonon_max_rel_error_pct": (5.0, "%", "Si and NaCl Gamma phonons, max relative error"),
}

N_ACOUSTIC = 3


def _rel_pct(ours: float, ref: float) -> float:
    return 100.0 * abs(ours - ref) / abs(ref)


def _median_with_failures(values: list[float]) -> float | None:
    """Median where failures are ``inf`` (sorted last); None when empty."""
    return statistics.median(values) if values else None


def optical(freqs: list[float]) -> list[float]:
    """The frequencies without the :data:`N_ACOUSTIC` of smallest magnitude, sorted."""
    order = sorted(range(len(freqs)), key=lambda i: abs(freqs[i]))
    return sorted(freqs[i] for i in order[N_ACOUSTIC:])


def _eos_row(f: dict, t: dict | None) -> dict:
    """One crystal: both sides' a0, B0, B0' and the relative errors of a0 and B0 (None without
    a teacher fit, inf without a Facet one)."""
    row = {
        "kind": "eos",
        "name": f["name"],
        "structure": f.get("structure"),
        "teacher_status": t["status"] if t else "not run",
        "facet_status": f["status"],
        "teacher_reason": (t or {}).get("reason") or (t or {}).get("fit_warning"),
        "facet_reason": f.get("reason") or f.get("fit_warning"),
    }
    for side, r in (("teacher", t), ("facet", f)):
        ok = bool(r) and r["status"] == "ok"
        row[f"{side}_a0"] = r["a0"] if ok else None
        row[f"{side}_b0_GPa"] = r["b0_GPa"] if ok else None
        row[f"{side}_bp"] = r["bp"] if ok else None
    if not t or t["status"] != "ok":
        row["a_err_pct"] = row["b_err_pct"] = None
    elif f["status"] != "ok":
        row["a_err_pct"] = row["b_err_pct"] = math.inf
    else:
        row["a_err_pct"] = _rel_pct(f["a0"], t["a0"])
        row["b_err_pct"] = _rel_pct(f["b0_GPa"], t["b0_GPa"])
    return row


def _phonon_row(f: dict, t: dict | None) -> dict:
    """One crystal's optical Gamma frequencies on both sides and their largest relative error."""
    row = {
        "kind": "phonons",
        "name": f["name"],
        "facet_status": f["status"],
        "teacher_status": t["status"] if t else "not run",
    }
    row["facet_THz"] = optical(f["frequencies_THz"]) if f["status"] == "ok" else None
    row["teacher_THz"] = optical(t["frequencies_THz"]) if t and t["status"] == "ok" else None
    row["facet_a"], row["teacher_a"] = f.get("a"), (t or {}).get("a")
    if row["teacher_THz"] is None:
        row["max_rel_err_pct"] = None
    elif row["facet_THz"] is None:
        row["max_rel_err_pct"] = math.inf
    else:
        row["max_rel_err_pct"] = max(
            _rel_pct(a, b) for a, b in zip(row["facet_THz"], row["teacher_THz"], strict=True)
        )
    return row


def _water_row(fw: dict | None, tw: dict | None) -> dict:
    """The relaxed water molecule on both sides: angle and O-H length and their differences."""
    water = {
        "kind": "water",
        "name": "H2O",
        "facet_status": fw["status"] if fw else "not run",
        "teacher_status": tw["status"] if tw else "not run",
    }
    for side, r in (("facet", fw), ("teacher", tw)):
        ok = bool(r) and r["status"] == "ok"
        water[f"{side}_angle_deg"] = r["angle_deg"] if ok else None
        water[f"{side}_oh_A"] = r["oh_mean_A"] if ok else None
        water[f"{side}_converged"] = r.get("converged") if ok else None
    if water["teacher_angle_deg"] is None:
        water["angle_diff_deg"] = water["oh_diff_A"] = None
    elif water["facet_angle_deg"] is None:
        water["angle_diff_deg"] = water["oh_diff_A"] = math.inf
    else:
        water["angle_diff_deg"] = abs(water["facet_angle_deg"] - water["teacher_angle_deg"])
        water["oh_diff_A"] = abs(water["facet_oh_A"] - water["teacher_oh_A"])
    return water


def _metrics(values: dict) -> dict:
    """Each value of :data:`TARGETS` with its target, unit, description and verdict (None
    without a teacher value)."""
    metrics = {}
    for key, (target, unit, what) in TARGETS.items():
        v = values[key]
        metrics[key] = {
            "value": v,
            "target": target,
            "unit": unit,
            "what": what,
            "met": None if v is None else bool(v <= target),
        }
    return metrics


def compare(teacher: dict | None, facet: dict) -> dict:
    """Rows per property and the summary metrics of the Facet side against the teacher."""
    t_eos = {r["name"]: r for r in (teacher or {}).get("eos", [])}
    eos_rows = [_eos_row(f, t_eos.get(f["name"])) for f in facet["eos"]]
    excluded = [r["name"] for r in eos_rows if r["a_err_pct"] is None]
    a_err = [r["a_err_pct"] for r in eos_rows if r["a_err_pct"] is not None]
    b_err = [r["b_err_pct"] for r in eos_rows if r["a_err_pct"] is not None]
    t_ph = {r["name"]: r for r in (teacher or {}).get("phonons", [])}
    ph_rows = [_phonon_row(f, t_ph.get(f["name"])) for f in facet["phonons"]]
    ph_err = [r["max_rel_err_pct"] for r in ph_rows if r["max_rel_err_pct"] is not None]
    water = _water_row(facet.get("water"), (teacher or {}).get("water"))
    metrics = _metrics({
        "median_lattice_error_pct": _median_with_failures(a_err),
        "median_bulk_modulus_error_pct": _median_with_failures(b_err),
        "water_angle_diff_deg": water["angle_diff_deg"],
        "phonon_max_rel_error_pct": max(ph_err) if ph_err else None,
    })
    metrics["median_lattice_error_pct"]["n"] = len(a_err)
    metrics["median_bulk_modulus_error_pct"]["n"] = len(b_err)
    return {
        "rows": eos_rows + ph_rows + [water],
        "metrics": metrics,
        "crystals_without_teacher_fit": excluded,
        "facet_without_minimum": [r["name"] for r in eos_rows if r["facet_status"] != "ok"],
    }
