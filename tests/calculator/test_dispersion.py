"""DFT-D3(BJ) through ``FacetCalculator(dispersion=...)``: the D3 part agrees with the ``dftd3``
package's own ASE calculator, and the total is exactly model + D3 (energy, forces, stress,
per-atom energies). Unknown calculator keywords raise, naming them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dftd3")


def _cells():
    from ase import Atoms
    from ase.build import bulk

    si = bulk("Si", "diamond", a=5.43)
    si.set_cell(si.cell[:] @ np.diag([1.01, 0.99, 1.02]), scale_atoms=True)
    si.rattle(0.03, seed=3)
    nacl = bulk("NaCl", "rocksalt", a=5.6) * (1, 1, 2)
    nacl.rattle(0.04, seed=4)
    mol = Atoms("CH4", positions=[[0, 0, 0], [0.63, 0.63, 0.63], [-0.63, -0.63, 0.63],
                                  [-0.63, 0.63, -0.63], [0.63, -0.63, -0.63]])
    return {"Si": si, "NaCl": nacl, "CH4": mol}


@pytest.mark.parametrize("name", ["Si", "NaCl", "CH4"])
def test_sum_is_model_plus_dftd3(tiny64, name):
    from dftd3.ase import DFTD3

    from facet import FacetCalculator

    atoms = _cells()[name]
    plain = FacetCalculator(tiny64)
    withd3 = FacetCalculator(tiny64, dispersion="d3bj")
    ref = DFTD3(method="pbe", damping="d3bj")

    def props(calc):
        a = atoms.copy()
        a.calc = calc
        out = {"energy": a.get_potential_energy(), "forces": a.get_forces()}
        if a.pbc.all():
            out["stress"] = a.get_stress()
        if not isinstance(calc, DFTD3):
            out["energies"] = a.get_potential_energies()
        return out

    p, t, d = props(plain), props(withd3), props(ref)
    assert abs(d["energy"]) > 1e-2  # D3 is not negligible here: the test can fail
    assert t["energy"] == pytest.approx(p["energy"] + d["energy"], abs=1e-9)
    np.testing.assert_allclose(t["forces"], p["forces"] + d["forces"], atol=1e-9)
    assert np.abs(d["forces"]).max() > 1e-4
    if atoms.pbc.all():
        np.testing.assert_allclose(t["stress"], p["stress"] + d["stress"], atol=1e-10)
        assert np.abs(d["stress"]).max() > 1e-4
    # per-atom energies: model's plus D3's pairwise split; they still sum to the energy
    assert t["energies"].sum() == pytest.approx(t["energy"], abs=1e-8)
    assert np.abs(t["energies"] - p["energies"]).sum() > 1e-3


def test_d3_alone_matches_dftd3_ase_calculator():
    """facet.dispersion.D3 (simple-dftd3's Python API, our unit conversion) vs dftd3.ase.DFTD3,
    and its stress vs a float64 finite difference of its own energy under strain."""
    from dftd3.ase import DFTD3

    from facet.dispersion import D3

    d3 = D3("d3bj", "pbe")
    for atoms in _cells().values():
        ours = d3.compute(atoms, energies=True)
        a = atoms.copy()
        a.calc = DFTD3(method="pbe", damping="d3bj")
        assert ours["energy"] == pytest.approx(a.get_potential_energy(), rel=1e-12)
        np.testing.assert_allclose(ours["forces"], a.get_forces(), atol=1e-12)
        if atoms.pbc.all():
            np.testing.assert_allclose(ours["stress"], a.get_stress(), atol=1e-12)
        assert ours["energies"].sum() == pytest.approx(ours["energy"], rel=1e-10)

    # The library's real-space cutoffs make the energy jump by ~1e-9 eV where a pair crosses
    # them, so the strain step is large (1e-3) and the tolerance 3e-5 eV/A^3 (signal 1.4e-2).
    si = _cells()["Si"]
    h = 1e-3
    s = d3.compute(si)["stress"]
    for k, (i, j) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        e = []
        for sign in (1, -1):
            eps = np.zeros((3, 3))
            eps[i, j] = eps[j, i] = sign * h / (1 if i == j else 2)  # symmetric strain
            a = si.copy()
            a.set_cell(si.cell[:] @ (np.eye(3) + eps), scale_atoms=True)
            e.append(D3("d3bj").compute(a)["energy"])
        fd = (e[0] - e[1]) / (2 * h) / si.get_volume()
        assert s[k] == pytest.approx(fd, abs=3e-5)


def test_dispersion_follows_moving_atoms(tiny64):
    """The cached dftd3 object is updated, not stale, when positions and cell change."""
    from dftd3.ase import DFTD3

    from facet import FacetCalculator

    atoms = _cells()["Si"]
    calc = FacetCalculator(tiny64, dispersion="d3bj")
    plain = FacetCalculator(tiny64)
    atoms.calc = calc
    atoms.get_potential_energy()
    atoms.positions[0] += [0.05, -0.02, 0.03]
    atoms.set_cell(atoms.cell[:] * 1.01, scale_atoms=True)
    e = atoms.get_potential_energy()
    ref = atoms.copy()
    ref.calc = DFTD3(method="pbe", damping="d3bj")
    ep = atoms.copy()
    ep.calc = plain
    assert e == pytest.approx(ep.get_potential_energy() + ref.get_potential_energy(), abs=1e-9)


def test_unknown_keyword_raises_naming_it(tiny64):
    from facet import FacetCalculator

    with pytest.raises(TypeError, match="'dispersionn'"):
        FacetCalculator(tiny64, dispersionn="d3bj")
    with pytest.raises(TypeError, match="'foo'"):
        FacetCalculator(model=tiny64, foo=1)
    FacetCalculator(tiny64, label="x", directory=".")  # ASE's own keywords still pass


def test_unknown_dispersion_name_raises(tiny64):
    from facet import FacetCalculator

    with pytest.raises(ValueError, match="unknown dispersion 'd4'"):
        FacetCalculator(tiny64, dispersion="d4")
    with pytest.raises(ValueError, match="'nofunctional'"):
        FacetCalculator(tiny64, dispersion="d3bj", dispersion_xc="nofunctional")


def test_relax_and_md_cli_add_dispersion(tiny_ckpt, tmp_path, capsys):
    """``facet relax --dispersion d3bj --steps 0`` reports model + D3 energy; the engines that
    run the model alone refuse --dispersion in one line."""
    from ase.build import bulk
    from ase.io import read, write
    from dftd3.ase import DFTD3

    from facet import FacetCalculator
    from facet.cli import main

    si = bulk("Si", "diamond", a=5.43)
    si.rattle(0.02, seed=1)
    write(tmp_path / "si.extxyz", si, format="extxyz")
    out = tmp_path / "relaxed.extxyz"
    argv = ["relax", str(tmp_path / "si.extxyz"), "--model", str(tiny_ckpt), "--steps", "0",
            "--fmax", "100", "-o", str(out), "--no-progress"]
    assert main([*argv, "--dispersion", "d3bj"]) == 0
    capsys.readouterr()
    got = read(out).get_potential_energy()
    a = si.copy()
    a.calc = FacetCalculator(str(tiny_ckpt))
    b = si.copy()
    b.calc = DFTD3(method="pbe", damping="d3bj")
    assert got == pytest.approx(a.get_potential_energy() + b.get_potential_energy(), abs=1e-4)
    assert main([*argv, "--dispersion", "d3bj", "--batched"]) == 2
    assert "--dispersion is not available with --batched" in capsys.readouterr().err
    md = ["md", str(tmp_path / "si.extxyz"), "--model", str(tiny_ckpt), "--steps", "1",
          "--engine", "jax", "--dispersion", "d3bj", "-o", str(tmp_path / "md.extxyz")]
    assert main(md) == 2
    assert "--dispersion needs --engine ase" in capsys.readouterr().err
