"""Padded shape buckets with headroom: a relaxation and an MD run through FacetCalculator
compile a handful of programs, not one per step (the neighbour count changes at most steps)."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.filters import FrechetCellFilter
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet
from ase.optimize import FIRE
from calc_helpers import MORSE

from facet import FacetCalculator
from facet.dynamics import MorsePotential


def _relax(steps: int):
    rng = np.random.default_rng(0)
    atoms = bulk("Cu", "fcc", a=3.66) * (2, 2, 2)  # expanded: it shrinks, gaining neighbours
    atoms.set_cell(
        atoms.cell[:] @ (np.eye(3) + 0.02 * rng.standard_normal((3, 3))), scale_atoms=True
    )
    atoms.rattle(0.1, seed=3)
    calc, n_edges = _spied_calculator(atoms)
    opt = FIRE(FrechetCellFilter(atoms), logfile=None)
    opt.run(fmax=1e-6, steps=steps)
    return calc, opt, n_edges


def _spied_calculator(atoms):
    """A Morse FacetCalculator on ``atoms`` that records the neighbour count of every call."""
    from facet.data.neighbors import neighbor_list

    calc = FacetCalculator(model=MorsePotential(**MORSE))
    atoms.calc = calc
    n_edges = []
    orig = calc.calculate

    def spy(*a, **k):
        orig(*a, **k)
        senders, _, _ = neighbor_list(atoms.positions, atoms.cell[:], True, calc.model.cutoff)
        n_edges.append(len(senders))

    calc.calculate = spy
    return calc, n_edges


def _md(steps: int):
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 2, 2)
    MaxwellBoltzmannDistribution(atoms, temperature_K=900, rng=np.random.default_rng(0))
    Stationary(atoms)
    calc, n_edges = _spied_calculator(atoms)
    VelocityVerlet(atoms, timestep=2 * units.fs).run(steps)
    return calc, n_edges


def test_relaxation_compiles_few_times():
    calc, opt, n_edges = _relax(40)
    assert opt.nsteps == 40
    assert len(set(n_edges)) >= 3  # the neighbour count really changed
    assert calc.compile_count <= 2


@pytest.mark.slow
def test_200_step_relaxation_compiles_few_times():
    calc, opt, n_edges = _relax(200)
    assert opt.nsteps == 200 and len(set(n_edges)) >= 3
    assert calc.compile_count <= 2


def test_md_compiles_once():
    calc, n_edges = _md(150)
    assert len(set(n_edges)) >= 3
    assert calc.compile_count == 1


@pytest.mark.slow
def test_1000_step_md_compiles_once():
    calc, n_edges = _md(1000)
    assert len(set(n_edges)) >= 3
    assert calc.compile_count == 1
