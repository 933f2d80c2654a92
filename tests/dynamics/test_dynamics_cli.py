"""``facet relax`` and ``facet md`` end to end with a registered Morse model (fast), checking the
written files against the Python API and ASE."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read, write
from dyn_helpers import MORSE, ase_morse, strained_rattled_cu

from facet.cli import main


@pytest.fixture(scope="module", autouse=True)
def morse_model():
    from facet.calculator import MODELS, register_model
    from facet.dynamics import MorsePotential

    register_model("test-morse", lambda dtype: MorsePotential(**MORSE, dtype=dtype))
    yield
    MODELS.pop("test-morse", None)


def test_facet_relax_ase_and_batched(tmp_path):
    structures = [strained_rattled_cu(0), strained_rattled_cu(1, cubic=True)]
    write(tmp_path / "in.extxyz", structures)
    write(tmp_path / "one.cif", structures[0])
    out = tmp_path / "relaxed.extxyz"
    rc = main(
        [
            "relax",
            str(tmp_path / "in.extxyz"),
            "--model",
            "test-morse",
            "--fmax",
            "0.02",
            "--steps",
            "300",
            "-o",
            str(out),
            "--trajectory-dir",
            str(tmp_path / "traj"),
            "--no-progress",
        ]
    )
    assert rc == 0
    frames = read(out, index=":")
    assert [f.info["key"] for f in frames] == ["in.extxyz:0", "in.extxyz:1"]
    for f, s in zip(frames, structures, strict=True):
        assert f.info["converged"]
        ref = f.copy()
        ref.calc = ase_morse()
        np.testing.assert_allclose(f.get_potential_energy(), ref.get_potential_energy(), rtol=1e-5)
        start = s.copy()
        start.calc = ase_morse()
        assert f.get_potential_energy() < start.get_potential_energy() - 1e-3
    assert len(list((tmp_path / "traj").iterdir())) == 2
    out_b = tmp_path / "batched.extxyz"
    rc = main(
        [
            "relax",
            str(tmp_path / "in.extxyz"),
            "--model",
            "test-morse",
            "--fmax",
            "0.02",
            "--steps",
            "300",
            "-o",
            str(out_b),
            "--batched",
        ]
    )
    assert rc == 0
    for a, b in zip(read(out, index=":"), read(out_b, index=":"), strict=True):
        np.testing.assert_allclose(a.get_potential_energy(), b.get_potential_energy(), atol=1e-4)
        assert a.info["steps"] == b.info["steps"]


def test_facet_md_both_engines(tmp_path, monkeypatch):
    from ase.build import bulk

    monkeypatch.chdir(tmp_path)  # the jax run writes its default trajectory to the working dir

    write(tmp_path / "cu.cif", bulk("Cu", "fcc", a=3.6) * (2, 2, 2))
    rc = main(
        [
            "md",
            str(tmp_path / "cu.cif"),
            "--model",
            "test-morse",
            "--ensemble",
            "nve",
            "--steps",
            "100",
            "--timestep",
            "2",
            "--temperature",
            "600",
            "--trajectory",
            str(tmp_path / "md.traj"),
            "--log",
            str(tmp_path / "md.log"),
            "-o",
            str(tmp_path / "final.extxyz"),
        ]
    )
    assert rc == 0
    assert len(read(tmp_path / "md.traj", index=":")) == 11
    rc = main(
        [
            "md",
            str(tmp_path / "cu.cif"),
            "--model",
            "test-morse",
            "--engine",
            "jax",
            "--steps",
            "100",
            "--timestep",
            "2",
            "--temperature",
            "600",
            "--log",
            str(tmp_path / "jax.csv"),
            "-o",
            str(tmp_path / "final_jax.extxyz"),
        ]
    )
    assert rc == 0
    table = np.loadtxt(tmp_path / "jax.csv", delimiter=",", skiprows=1)
    assert table.shape == (11, 6)
    etot = table[:, 4]
    assert np.ptp(etot) / 8 < 2e-3  # NVE: total energy per atom conserved
    assert table[:, 5].max() > 100  # and the atoms are hot
    assert len(read(tmp_path / "cu_md.traj", index=":")) == 11  # default: <stem>_md.traj
    assert (
        main(
            [
                "md",
                str(tmp_path / "cu.cif"),
                "--model",
                "test-morse",
                "--engine",
                "jax",
                "--ensemble",
                "npt",
            ]
        )
        == 2
    )
