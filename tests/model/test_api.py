"""Config round trips, presets, parameter counts, setters and the minimal ASE calculator."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from ase.build import bulk, molecule
from flax import nnx

import facet
from facet.nn import AtomicEnergies, ModelConfig, check_atomic_numbers
from facet.nn.presets import PRESETS, count_parameters, describe_presets


def test_config_round_trip_and_unknown_keys():
    cfg = PRESETS["facet-m"].replace(grid_resolution=(6, 11), radial_mlp=(16, 16))
    d = json.loads(json.dumps(cfg.to_dict()))
    assert ModelConfig.from_dict(d) == cfg
    with pytest.raises(KeyError, match="'lmaxx'"):
        ModelConfig.from_dict({**d, "lmaxx": 3})
    with pytest.raises(ValueError, match="mixer_activation"):
        cfg.replace(mixer_activation="relu")
    with pytest.raises(KeyError, match="'chanels'"):
        facet.create_model("facet-s", chanels=3)
    with pytest.raises(KeyError, match="facet-xl"):
        facet.create_model("facet-xl")


def test_parameter_counts_and_describe():
    text = describe_presets()
    counts = {}
    for line in text.splitlines()[1:]:
        name, n = line.split()[:2]
        counts[name] = int(n.replace(",", ""))
    assert set(counts) == set(PRESETS)
    # the paper's small model has ~250k parameters (the authors' Facet-S: 252,989)
    assert 230_000 <= counts["facet-s"] <= 270_000
    assert counts["facet-m"] > 2 * counts["facet-s"]


def test_float64_needs_x64_and_e0_is_not_a_param():
    if jax.numpy.zeros(()).dtype == np.float64:  # pragma: no cover - someone enabled x64
        pytest.skip("x64 is enabled globally")
    with pytest.raises(ValueError, match="enable_x64"):
        facet.create_model("facet-s", dtype="float64", lmax=1, num_layers=1)
    model = facet.create_model("facet-s", lmax=1, num_layers=1, channels=8, mixer_hidden=8)
    params = nnx.state(model, nnx.Param)
    e0 = nnx.state(model, AtomicEnergies)
    assert count_parameters(model) == sum(x.size for x in jax.tree_util.tree_leaves(params))
    assert [x.shape for x in jax.tree_util.tree_leaves(e0)] == [(119,)]
    model.set_atomic_energies(np.arange(119.0))
    assert float(model.atomic_energies[...][26]) == 26.0
    with pytest.raises(ValueError, match="119"):
        model.set_atomic_energies(np.zeros(5))


def test_atomic_number_check():
    check_atomic_numbers([1, 118])
    for bad in ([0, 1], [119]):
        with pytest.raises(ValueError, match="1..118"):
            check_atomic_numbers(bad, where="frame 7")


@pytest.fixture(scope="module")
def small_calc():
    model = facet.create_model(
        "facet-s", seed=3, lmax=1, num_layers=2, channels=16, mixer_hidden=16, residual_init=1.0
    )
    return facet.FacetCalculator(model=model)


def test_calculator_matches_finite_differences_and_conventions(small_calc):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=2)
    atoms.calc = small_calc
    e = atoms.get_potential_energy()
    f = atoms.get_forces()
    s = atoms.get_stress()
    assert s.shape == (6,) and f.shape == (4, 3)
    np.testing.assert_allclose(atoms.get_potential_energies().sum(), e, rtol=1e-5)
    assert atoms.get_potential_energy(force_consistent=True) == e
    np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=1e-4)  # Newton's third law
    # float32: finite differences with a step that keeps round-off below the tolerance
    h = 1e-2
    for i, k in [(0, 0), (2, 1)]:
        pe = []
        for sign in (1, -1):
            a2 = atoms.copy()
            a2.positions[i, k] += sign * h
            a2.calc = small_calc
            pe.append(a2.get_potential_energy())
        fd = -(pe[0] - pe[1]) / (2 * h)
        assert abs(fd - f[i, k]) < 2e-2 * max(1.0, abs(f[i, k])), (fd, f[i, k])

    # stress: a strain eps changes E by V sum_ab sigma_ab eps_ab (central differences with
    # Richardson extrapolation: the random model is rough). An isotropic strain gives the trace,
    # a symmetric shear eps_xy = eps_yx the xy component twice; the compressed, sheared cell
    # makes both large against the tolerance, so a sign or factor error cannot pass.
    atoms = bulk("Cu", "fcc", a=3.3, cubic=True)
    atoms.set_cell(atoms.cell[:] @ np.array([[1, 0.06, 0], [0, 1, 0], [0, 0, 1.0]]),
                   scale_atoms=True)
    atoms.rattle(0.05, seed=2)
    atoms.calc = small_calc
    s = atoms.get_stress()

    def central(h, strain):
        pe = []
        for sign in (1, -1):
            a2 = atoms.copy()
            a2.set_cell(atoms.cell[:] @ (np.eye(3) + sign * h * strain), scale_atoms=True)
            a2.calc = small_calc
            pe.append(a2.get_potential_energy())
        return (pe[0] - pe[1]) / (2 * h)

    shear = np.zeros((3, 3))
    shear[0, 1] = shear[1, 0] = 1.0
    for strain, expect in ((np.eye(3), s[:3].sum()), (shear, 2 * s[5])):
        de = (4 * central(2e-3, strain) - central(4e-3, strain)) / 3 / atoms.get_volume()
        assert abs(expect) > 2e-3, expect  # eV/A^3: far above the tolerance below
        np.testing.assert_allclose(de, expect, rtol=1e-2, atol=1e-5)


def test_calculator_keeps_its_compiled_shape_and_rejects_bad_input(small_calc):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.calc = small_calc
    atoms.get_potential_energy()
    n_compiled = small_calc._predict._cache_size()
    atoms.positions[0] += 0.02
    atoms.get_potential_energy()
    assert small_calc._predict._cache_size() == n_compiled
    mol = molecule("H2O")
    mol.calc = small_calc
    assert np.isfinite(mol.get_potential_energy())
    with pytest.raises(Exception, match="periodic"):
        mol.get_stress()
    bad = bulk("Cu", "fcc", a=3.6)
    bad.numbers[0] = 0
    bad.calc = small_calc
    with pytest.raises(ValueError, match="1..118"):
        bad.get_potential_energy()
