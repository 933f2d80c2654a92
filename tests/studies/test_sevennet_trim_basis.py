"""Pure logic of the SevenNet-0 trim basis study (facet.studies.sevennet_trim.basis and its
markdown module): bases, error measures, parameter arithmetic, the report.md section. No torch.

The parameter figures are SevenNet-0's (8 -> 64 -> 64 -> n MLPs with n = 384, 960, 960, 960,
224; 842,440 trainable parameters), worked out by hand in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facet.studies.sevennet_trim import basis as tb
from facet.studies.sevennet_trim import basis_md as tmd
from facet.studies.sevennet_trim import report as trep

ROOT = Path(__file__).resolve().parents[2]

N_OUT = [384, 960, 960, 960, 224]
MLP = [8 * 64 + 64 * 64 + 64 * n for n in N_OUT]
TRAINABLE = 842440
OUT_DIR = ROOT / "docs" / "benchmarks" / "sevennet_trim"


def test_bessel_values():
    B = tb.bessel_basis([2.5], 3, 5.0)
    # sin(pi/2)/2.5, sin(pi)/2.5, sin(3 pi/2)/2.5
    assert B == pytest.approx(np.array([[0.4, 0.0, -0.4]]), abs=1e-15)


def test_bspline_knot_values_partition_and_cubic_reproduction():
    lo, hi, K = 1.0, 5.0, 10
    h = (hi - lo) / (K - 3)
    B = tb.cubic_bspline_basis([lo], K, lo, hi)[0]
    assert B[:3] == pytest.approx([1 / 6, 2 / 3, 1 / 6], abs=1e-15)
    assert B[3:] == pytest.approx(np.zeros(K - 3), abs=1e-15)
    r = np.linspace(lo, hi, 301)
    S = tb.cubic_bspline_basis(r, K, lo, hi)
    assert S.sum(1) == pytest.approx(np.ones_like(r), abs=1e-12)
    # a cubic is in the span: least squares reproduces it to rounding
    y = 2.0 - r + 0.5 * r**2 - 0.1 * r**3
    c = np.linalg.lstsq(S, y, rcond=None)[0]
    assert np.max(np.abs(S @ c - y)) < 1e-10
    assert h == pytest.approx(4 / 7)
    with pytest.raises(ValueError):
        tb.cubic_bspline_basis(r, 3, lo, hi)


def test_fit_errors_by_hand():
    # column 0: mean 1, SS_tot 2, SS_res 0.25; column 1: mean 0, SS_tot 2, SS_res 0
    Y = np.array([[0.0, -1.0], [2.0, 1.0]])
    Yhat = np.array([[0.5, -1.0], [2.0, 1.0]])
    e = tb.fit_errors(Y, Yhat)
    assert e["rel_rms"] == pytest.approx(np.sqrt(0.25 / 4))
    assert e["r2_pooled"] == pytest.approx(1 - 0.0625)
    assert e["r2_mean"] == pytest.approx((0.875 + 1.0) / 2)


@pytest.mark.parametrize(
    ("K", "basis", "removed", "pct"),
    [
        # 5 * 4608 + (64 - 8) * 3488 = 23,040 + 195,328
        (8, 0, 218368, 25.9209),
        # 23,040 + 54 * 3488 + 8 frequencies
        (10, 8, 211400, 25.0938),
        # 23,040 + 52 * 3488 + 8 = 204,424; 23,040 + 48 * 3488 + 8 = 190,472
        (12, 8, 204424, 24.2658),
        (16, 8, 190472, 22.6096),
    ],
)
def test_parameter_cut_sevennet(K, basis, removed, pct):
    assert sum(N_OUT) == 3488 and MLP[0] == 8 * 64 + 4096 + 64 * 384
    p = tb.parameter_cut(MLP, N_OUT, TRAINABLE, K, basis)
    assert p["removed"] == removed
    assert p["trimmed_trainable"] == TRAINABLE - removed
    assert p["reduction_pct"] == pytest.approx(pct, abs=1e-4)


def _study(rel):
    """A synthetic study: bessel K -> worst-layer relative RMS ``rel[K]``, two layers."""
    res = []
    for fam, K in [("sevennet", 8)] + [("bessel", k) for k in rel if k != "own"]:
        r = rel["own"] if fam == "sevennet" else rel[K]
        cut = tb.parameter_cut(MLP, N_OUT, TRAINABLE, K, 0 if fam == "sevennet" else 8)
        lay = {
            f: {"rel_rms": r, "r2_pooled": 1 - r**2, "r2_mean": 1 - r**2}
            for f in ("fit", "heldout", "heldout_deriv", "uniform", "uniform_deriv")
        }
        res.append(
            {
                "family": fam,
                "K": K,
                "label": tmd.family_label(fam, K),
                "layers": {"0_convolution": lay, "1_convolution": {**lay, "heldout": {
                    "rel_rms": r / 2, "r2_pooled": 1, "r2_mean": 1}}},
                "parameters": cut,
            }
        )  # fmt: skip
    return {"n_own_features": 8, "goal_param_cut_pct": 25.0, "results": res,
            "label_check": {"force_mae_meV_A": 0.0002, "frames_checked": 8}}  # fmt: skip


def test_goal_forces_k10_and_report_section(tmp_path):
    study = _study({"own": 0.124, 8: 0.133, 10: 0.051, 12: 0.032})
    assert tmd.max_k_meeting_goal(study) == 10
    assert tmd.worst(tmd.find(study, "bessel", 10), "heldout") == 0.051
    assert tb.md.report_section(tmp_path / "basis_study.json") == []
    (tmp_path / "basis_study.json").write_text(json.dumps(study))
    text = "\n".join(tmd.report_section(tmp_path / "basis_study.json"))
    assert "[basis_study.md](basis_study.md)" in text
    assert "own 8 features 0.124" in text
    assert "Bessel K=10 0.051 (25.09 % fewer parameters)" in text
    assert "Bessel K=12 0.032 (24.27 % fewer parameters)" in text
    assert "forces K <= 10" in text and "0.0002 meV/A on 8 frames" in text


def test_committed_report_regenerates_with_basis_section():
    """report.md = the generator's output for the committed results.json and basis_study.json."""
    res = json.loads((OUT_DIR / "results.json").read_text())
    md = trep.markdown(res, trep.basis_report_section(OUT_DIR))
    assert md == (OUT_DIR / "report.md").read_text()
    assert "## Basis study" in md
    study = json.loads((OUT_DIR / "basis_study.json").read_text())
    assert tmd.max_k_meeting_goal(study) == 10
    assert study["label_check"]["force_mae_meV_A"] < 0.01
