"""ASE relaxation path (facet.dynamics.relax): readers for every supported format, relaxation of a
strained and rattled cell to a real minimum, output round trip, and clear errors on bad files."""

from __future__ import annotations

import numpy as np
import pytest
from ase.io import read, write
from dyn_helpers import ase_morse, slab, strained_rattled_cu

from facet.dynamics.relax import read_structures, relax, relax_many, to_atoms, write_relaxed


@pytest.mark.parametrize("fmt,name", [("cif", "x.cif"), ("vasp", "POSCAR"), ("extxyz", "x.xyz")])
def test_readers_round_trip(tmp_path, fmt, name):
    atoms = strained_rattled_cu(0)
    path = tmp_path / name
    write(path, atoms, format=fmt)
    ((key, got),) = read_structures(path)
    assert key == f"{name}:0"
    # CIF stores lengths and angles (the cell may come back rotated) and fractional coordinates.
    np.testing.assert_allclose(got.cell.cellpar(), atoms.cell.cellpar(), atol=1e-4)
    frac = got.get_scaled_positions() - atoms.get_scaled_positions()
    assert np.abs(frac - np.round(frac)).max() < 1e-4
    assert list(got.numbers) == list(atoms.numbers)


def test_ase_db_and_pymatgen(tmp_path):
    from ase.db import connect
    from pymatgen.io.ase import AseAtomsAdaptor

    a, b = strained_rattled_cu(0), slab(1)
    with connect(tmp_path / "s.db") as db:
        db.write(a)
        db.write(b)
    items = read_structures(tmp_path / "s.db")
    assert [k for k, _ in items] == ["s.db:id=1", "s.db:id=2"]
    np.testing.assert_allclose(items[1][1].positions, b.positions)
    assert list(items[1][1].pbc) == [True, True, False]
    structure = AseAtomsAdaptor.get_structure(a)
    back = to_atoms(structure)
    np.testing.assert_allclose(back.positions, a.positions, atol=1e-10)
    with pytest.raises(TypeError, match="structure s7"):
        to_atoms([1, 2, 3], key="s7")


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.cif"):
        read_structures(tmp_path / "nope.cif")
    bad = tmp_path / "broken.cif"
    bad.write_text("data_x\n_cell_length_a 3\nloop_\n_atom_site_label\n")
    with pytest.raises(ValueError, match="broken.cif"):
        read_structures(bad)
    nan = strained_rattled_cu(0)
    nan.positions[2, 1] = np.nan
    write(tmp_path / "nan.xyz", nan, format="extxyz")
    with pytest.raises(ValueError, match=r"nan.xyz:0: positions are not finite"):
        read_structures(tmp_path / "nan.xyz")


def test_relax_strained_rattled_cell_converges(tmp_path):
    atoms = strained_rattled_cu(4)
    res = relax(atoms, ase_morse(), fmax=0.01, steps=400, trajectory=tmp_path / "r.traj")
    assert res.converged and 5 < res.steps < 400
    assert res.energy < res.initial_energy - 0.05
    got = res.atoms
    assert np.abs(got.get_forces()).max() < 0.01
    # Cell rows of the Frechet filter are V sigma / N: stress converges to ~0.
    assert np.abs(got.get_stress()).max() * got.get_volume() / len(got) < 0.01
    assert not np.allclose(got.cell[:], atoms.cell[:], atol=1e-3)
    traj = read(tmp_path / "r.traj", index=":")
    assert len(traj) == res.steps + 1
    # Input untouched.
    np.testing.assert_array_equal(atoms.positions, strained_rattled_cu(4).positions)


def test_relax_many_and_write(tmp_path):
    items = [("a", strained_rattled_cu(1)), ("b", slab(2))]
    results = relax_many(
        items, ase_morse(), fmax=0.02, steps=300, progress=False, trajectory_dir=tmp_path / "traj"
    )
    assert [r.key for r in results] == ["a", "b"]
    assert all(r.converged for r in results)
    # The slab keeps its cell (not fully periodic) and relaxes positions only.
    np.testing.assert_allclose(results[1].atoms.cell[:], items[1][1].cell[:])
    write_relaxed(results, tmp_path / "out.extxyz")
    frames = read(tmp_path / "out.extxyz", index=":")
    assert [f.info["key"] for f in frames] == ["a", "b"]
    for f, r in zip(frames, results, strict=True):
        np.testing.assert_allclose(f.get_potential_energy(), r.energy)
        np.testing.assert_allclose(f.positions, r.atoms.positions, atol=1e-6)
        assert f.info["converged"] is True or f.info["converged"] == True  # noqa: E712
    assert sorted(p.name for p in (tmp_path / "traj").iterdir()) == ["00000.traj", "00001.traj"]
