"""The dynamics package's seams: the old import paths warn and give the same objects, one table of
ensembles serves both engines, and ``edge_vectors`` of a batch is the model's own."""

from __future__ import annotations

import importlib
import sys
import warnings

import jax
import numpy as np
import pytest
from ase.build import bulk

import facet.dynamics as dyn
from facet.dynamics.ensembles import ENSEMBLES, builder
from facet.dynamics.neighbors import build_graphs, edge_vectors, padded_batch

OLD_PATHS = {
    "facet.batched": ("facet.dynamics", "BatchedFIRE"),
    "facet.batched.fire": ("facet.dynamics.fire", "relax_batched"),
    "facet.batched.md": ("facet.dynamics.jaxmd", "JaxMD"),
    "facet.batched.neighbors": ("facet.dynamics.neighbors", "list_is_valid"),
    "facet.batched.pair": ("facet.dynamics.pair", "MorsePotential"),
    "facet.batched.potential": ("facet.dynamics.potential", "PredictFn"),
    "facet.relax": ("facet.dynamics.relax", "relax"),
    "facet.md": ("facet.dynamics.md", "run_md"),
}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_paths_warn_and_re_export(old):
    new, name = OLD_PATHS[old]
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mod = importlib.import_module(old)
    msgs = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any(old in m and new in m for m in msgs), msgs
    assert getattr(mod, name) is getattr(importlib.import_module(new), name)


def test_old_ensemble_tables_are_views_of_the_one_table():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import facet.batched.md as old_jax_md
        import facet.md as old_md
    assert old_md.ENSEMBLES == {k: e.ase for k, e in ENSEMBLES.items()}
    assert old_jax_md.ENSEMBLES == {k: e.jax_md for k, e in ENSEMBLES.items() if e.jax_md}


def test_an_ensemble_an_engine_lacks_is_refused_naming_what_it_has():
    with pytest.raises(ValueError, match=r"'npt' for the jax_md engine; available: nve, nvt"):
        builder("npt", "jax_md")
    with pytest.raises(ValueError, match=r"unknown ensemble 'nph'.*npt, nve, nvt"):
        builder("nph", "ase")
    with pytest.raises(ValueError, match="npt"):
        dyn.JaxMD(dyn.MorsePotential(), dyn.JaxMDConfig(ensemble="npt"))


def test_batch_edge_vectors_are_minimum_image_vectors_of_ase():
    """A triclinic cell smaller than the radius (several images of one pair): every edge vector
    equals the positions difference plus the integer image shift, as ASE's neighbour list says."""
    from ase.neighborlist import neighbor_list

    atoms = bulk("Cu", "fcc", a=3.6) * (1, 1, 2)
    atoms.rattle(0.05, seed=1)
    g = build_graphs([atoms.positions], [atoms.numbers], [np.asarray(atoms.cell)],
                     [atoms.pbc], 4.0)  # fmt: skip
    with jax.enable_x64(True):
        vec = np.asarray(edge_vectors(padded_batch(g, 4096, dtype="float64")))[: g[0].n_edge]
    want = np.sort(np.round(neighbor_list("D", atoms, 4.0), 10), axis=0)
    np.testing.assert_allclose(np.sort(np.round(vec, 10), axis=0), want, atol=1e-9)
