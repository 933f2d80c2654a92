"""Parity plots: each title gives the MAE in the unit of its axes (and in the metrics' unit)."""

from __future__ import annotations

import re

import numpy as np
import pytest


def test_titles_and_axes_share_units(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from facet.train.evaluate import parity_plots

    rng = np.random.default_rng(0)
    n_atoms = np.array([2, 3])
    forces = rng.normal(size=(5, 3))
    stress = rng.normal(scale=0.01, size=(2, 3, 3))
    pred = {
        "energy": np.array([-10.0, -15.0]), "energy_ref": np.array([-10.2, -15.3]),
        "n_atoms": n_atoms, "has_energy": np.array([True, True]),
        "forces": forces + 0.05, "forces_ref": forces, "has_forces": np.ones(5, bool),
        "stress": stress + 0.001, "stress_ref": stress, "has_stress": np.array([True, True]),
    }
    figs = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: (figs.append(fig), real_close(fig)))
    parity_plots(pred, tmp_path)
    expect = {"energy": (0.1, "eV/atom", 100.0, "meV/atom"),   # |0.2/2|, |0.3/3|
              "forces": (0.05, "eV/A", 50.0, "meV/A"),
              "stress": (0.001 * 160.21766208, "GPa", 1.0, "meV/A^3")}
    assert len(figs) == 3
    for fig in figs:
        ax = fig.axes[0]
        name = ax.get_title().split(":")[0]
        mae, unit, mae_metric, metric_unit = expect[name]
        m = re.match(rf"{name}: MAE (\S+) (\S+) \((\S+) (\S+), n=\d+\)", ax.get_title())
        assert m, ax.get_title()
        assert float(m.group(1)) == pytest.approx(mae, rel=1e-2) and m.group(2) == unit
        assert float(m.group(3)) == pytest.approx(mae_metric, rel=1e-2)
        assert m.group(4) == metric_unit
        assert ax.get_xlabel().endswith(f"({unit})") and ax.get_ylabel().endswith(f"({unit})")
