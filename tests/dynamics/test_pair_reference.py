"""The Morse reference model reproduces ASE's MorsePotential (energy, per-atom energies, forces,
stress) through the GraphBatch path, for bulk, slab, molecule and a cell smaller than the cutoff;
and its analytic forces/stress equal autodiff of its node energies."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ase.build import bulk
from ase.stress import full_3x3_to_voigt_6_stress
from dyn_helpers import ase_morse, cluster, slab, strained_rattled_cu

from facet.dynamics import analytic_predict
from facet.dynamics.neighbors import build_graphs, padded_batch


def _tiny_cell():
    # 1-atom primitive fcc cell (2.5 A vectors) with a 4.4 A cutoff: many self-images.
    a = bulk("Cu", "fcc", a=3.55)
    a.rattle(0.0)
    a.set_cell(a.cell[:] @ (np.eye(3) + np.diag([0.02, -0.01, 0.0])), scale_atoms=True)
    return a


CASES = {
    "bulk": lambda: strained_rattled_cu(1),
    "slab": lambda: slab(2),
    "molecule": lambda: cluster(3),
    "tiny_cell": _tiny_cell,
}


def _batch(atoms_list, cutoff):
    g = build_graphs(
        [a.positions for a in atoms_list],
        [a.numbers for a in atoms_list],
        [np.asarray(a.cell) for a in atoms_list],
        [a.pbc for a in atoms_list],
        cutoff,
    )
    return padded_batch(g, sum(x.n_edge for x in g) + 8, dtype="float64")


def test_matches_ase_morse(morse64):
    atoms_list = [f() for f in CASES.values()]
    with jax.enable_x64(True):
        batch = _batch(atoms_list, morse64.cutoff)
        pred = analytic_predict(morse64, batch)
        # Autodiff of the summed node energies gives the same forces.
        grad = jax.grad(lambda x: jnp.sum(morse64(batch._replace(positions=x))))(
            jnp.asarray(batch.positions)
        )
    n0 = 0
    for k, (name, atoms) in enumerate(zip(CASES, atoms_list, strict=True)):
        ref = atoms.copy()
        ref.calc = ase_morse()
        n = len(atoms)
        sl = slice(n0, n0 + n)
        np.testing.assert_allclose(float(pred.energy[k]), ref.get_potential_energy(), rtol=1e-12)
        np.testing.assert_allclose(
            np.asarray(pred.node_energies[sl]), ref.get_potential_energies(), atol=1e-12
        )
        np.testing.assert_allclose(np.asarray(pred.forces[sl]), ref.get_forces(), atol=1e-11)
        np.testing.assert_allclose(np.asarray(-grad[sl]), ref.get_forces(), atol=1e-11)
        if atoms.pbc.all():
            s = full_3x3_to_voigt_6_stress(np.asarray(pred.stress[k]))
            np.testing.assert_allclose(s, ref.get_stress(), atol=1e-12, err_msg=name)
        else:
            assert np.all(np.asarray(pred.stress[k]) == 0.0), name
        assert abs(float(pred.energy[k])) > 0.1, name  # a real interaction, not an empty graph
        n0 += n
    assert float(pred.energy[-1]) == 0.0  # padding graph


@pytest.mark.parametrize("name", ["bulk", "tiny_cell"])
def test_stress_is_strain_derivative(morse64, name):
    """sigma = (1/V) dE/d(eps) by central differences of the ASE reference (independent check)."""
    atoms = CASES[name]()
    with jax.enable_x64(True):
        pred = analytic_predict(morse64, _batch([atoms], morse64.cutoff))
    h, fd = 1e-5, np.zeros((3, 3))
    for i in range(3):
        for j in range(i, 3):
            e = []
            for sgn in (1, -1):
                eps = np.zeros((3, 3))
                eps[i, j] += sgn * h / 2
                eps[j, i] += sgn * h / 2
                a = atoms.copy()
                a.set_cell(a.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
                a.calc = ase_morse()
                e.append(a.get_potential_energy())
            fd[i, j] = fd[j, i] = (e[0] - e[1]) / (2 * h) / atoms.get_volume()
    np.testing.assert_allclose(np.asarray(pred.stress[0]), fd, atol=1e-8)
    assert np.abs(fd).max() > 1e-3


def test_physics_predict_agrees_with_analytic(morse64):
    """facet.physics.predict (autodiff with a strain) on the Morse model = the analytic result."""
    from facet.physics import predict

    atoms_list = [f() for f in CASES.values()]
    with jax.enable_x64(True):
        batch = _batch(atoms_list, morse64.cutoff)
        auto = jax.jit(lambda b: predict(morse64, b))(batch)
        ref = analytic_predict(morse64, batch)
    np.testing.assert_allclose(np.asarray(auto.energy), np.asarray(ref.energy), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(auto.forces), np.asarray(ref.forces), atol=1e-11)
    np.testing.assert_allclose(np.asarray(auto.stress), np.asarray(ref.stress), atol=1e-12)
