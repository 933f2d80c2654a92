"""Batched FIRE (+ Frechet cell filter) in one compiled loop reproduces ASE's one-at-a-time
FIRE + FrechetCellFilter relaxations: same step counts and the same minima, in float64."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from dyn_helpers import ase_morse, cluster, slab, strained_rattled_cu

from facet.dynamics import BatchedFIRE, FireConfig, analytic_predict
from facet.dynamics.neighbors import build_graphs, list_is_valid

FMAX, STEPS = 0.01, 300


def _structures():
    return [strained_rattled_cu(0), strained_rattled_cu(1, cubic=True), slab(2), cluster(3)]


@pytest.fixture(scope="module")
def batched(morse64):
    # A small skin forces several neighbour-list rebuilds during the run.
    relaxer = BatchedFIRE(morse64, FireConfig(skin=0.3), dtype="float64", predict=analytic_predict)
    with jax.enable_x64(True):
        result = relaxer.relax(_structures(), fmax=FMAX, max_steps=STEPS)
    return relaxer, result


def _ase_relax(atoms):
    a = atoms.copy()
    a.calc = ase_morse()
    opt = FIRE(FrechetCellFilter(a) if a.pbc.all() else a, logfile=None)
    converged = opt.run(fmax=FMAX, steps=STEPS)
    return a, opt.nsteps, converged


def test_same_minima_as_ase(batched):
    _, result = batched
    assert result.n_rebuilds >= 1
    for k, atoms in enumerate(_structures()):
        ref, nsteps, converged = _ase_relax(atoms)
        assert converged and result.converged[k], k
        assert result.steps[k] == nsteps, (k, result.steps[k], nsteps)
        got = result.atoms[k]
        np.testing.assert_allclose(got.positions, ref.positions, atol=1e-8)
        np.testing.assert_allclose(got.cell[:], ref.cell[:], atol=1e-8)
        np.testing.assert_allclose(
            got.get_potential_energy(), ref.get_potential_energy(), rtol=1e-10
        )
        # The minimum is a real one: forces (and stress for bulk) vanish, energy went down.
        assert np.abs(got.get_forces()).max() < 2 * FMAX
        e0 = atoms.copy()
        e0.calc = ase_morse()
        assert got.get_potential_energy() < e0.get_potential_energy() - 1e-3
        if atoms.pbc.all():
            assert np.abs(got.get_stress()).max() * atoms.get_volume() / len(atoms) < 2 * FMAX
            assert not np.allclose(got.cell[:], atoms.cell[:], atol=1e-3)  # the cell moved


def test_compiles_once_and_recompiles_only_on_new_capacity(batched, morse64):
    relaxer, _ = batched
    assert relaxer.compile_count() == 1
    with jax.enable_x64(True):
        again = relaxer.relax(_structures()[:1] * 1 + _structures()[1:], fmax=FMAX, max_steps=5)
    assert relaxer.compile_count() == 1  # same shapes: no new program
    assert np.all(again.steps == 5) and not again.converged.any()


def test_skin_criterion_is_complete(morse64):
    """Whenever list_is_valid says yes, the skin list holds every pair within the cutoff."""
    rng = np.random.default_rng(0)
    base = strained_rattled_cu(5)
    cutoff, skin = morse64.cutoff, 0.4
    args = ([base.positions], [base.numbers], [np.asarray(base.cell)], [base.pbc])
    (g_skin,) = build_graphs(*args, cutoff + skin)
    listed = set(zip(g_skin.senders, g_skin.receivers, map(tuple, g_skin.shifts), strict=True))
    n_valid = n_invalid = 0
    for _ in range(30):
        a = base.copy()
        amp = rng.uniform(0.0, 1.0)
        strain = np.eye(3) + 0.02 * amp * rng.standard_normal((3, 3))
        a.set_cell(a.cell[:] @ strain, scale_atoms=True)
        a.positions += amp * rng.uniform(-0.2, 0.2, a.positions.shape)
        with jax.enable_x64(True):
            ok = bool(
                list_is_valid(
                    a.positions,
                    a.cell[:][None],
                    base.positions,
                    base.cell[:][None],
                    np.zeros(len(a), np.int32),
                    np.ones(len(a), bool),
                    np.ones(1, bool),
                    cutoff,
                    skin,
                )
            )
        (g_now,) = build_graphs([a.positions], [a.numbers], [np.asarray(a.cell)], [a.pbc], cutoff)
        now = set(zip(g_now.senders, g_now.receivers, map(tuple, g_now.shifts), strict=True))
        if ok:
            n_valid += 1
            assert now <= listed
        else:
            n_invalid += 1
    assert n_valid > 3 and n_invalid > 3  # both branches exercised
