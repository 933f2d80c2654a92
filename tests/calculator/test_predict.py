"""``facet predict`` / :func:`facet.predict.predict_structures`: batched predictions equal the
calculator's one structure at a time (float64), in input order, one compilation for every
structure that fits the training batch shape and one per ladder bucket above it; extxyz output
read back by ASE through its calculator keys; inputs in several ASE formats; D3 added."""

from __future__ import annotations

import numpy as np
import pytest


def _structures():
    from ase import Atoms
    from ase.build import bulk, fcc111, molecule

    rng = np.random.default_rng(0)
    out = []
    for k in range(7):
        a = bulk("Cu", "fcc", a=3.6 + 0.02 * k) * (1, 1, 1 + k % 2)
        a.rattle(0.05, seed=k)
        out.append(a)
    si = bulk("Si", "diamond", a=5.43) * (2, 2, 2)  # larger than the small budget below
    si.rattle(0.03, seed=9)
    out.insert(3, si)
    slab = fcc111("Cu", size=(2, 2, 2), a=3.6, vacuum=4.0)  # no stress: not 3D periodic
    out.insert(5, slab)
    out.append(molecule("CH4"))
    nacl = bulk("NaCl", "rocksalt", a=5.6)
    nacl.set_cell(nacl.cell[:] @ (np.eye(3) + 0.02 * rng.standard_normal((3, 3))),
                  scale_atoms=True)
    out.append(nacl)
    out.append(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]))
    return out


def test_batched_equals_calculator_one_at_a_time(tiny64):
    from facet import FacetCalculator
    from facet.data.neighbors import graph_from_atoms
    from facet.predict import Predictor, predict_structures

    structures = _structures()
    sizes = [graph_from_atoms(a, tiny64.cutoff, labels_from_calc=False) for a in structures]
    budget = (12, 400, 4)
    big = [i for i, g in enumerate(sizes) if g.n_node + 1 > 12 or g.n_edge > 400]
    assert big == [3]  # the Si supercell needs a bucket of its own
    pred = Predictor(tiny64)
    res = predict_structures(tiny64, structures, budget=budget, per_atom=True,
                             predictor=pred)
    assert pred.compile_count == 2  # the training shape + one bucket
    calc = FacetCalculator(tiny64)
    # largest first: the calculator keeps a bucket for smaller structures (fewer compilations)
    for i in sorted(range(len(structures)), key=lambda i: -sizes[i].n_edge):
        a, r = structures[i], res[i]
        b = a.copy()
        b.calc = calc
        assert r["energy"] == pytest.approx(b.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(r["forces"], b.get_forces(), atol=1e-9)
        np.testing.assert_allclose(r["energies"], b.get_potential_energies(), atol=1e-9)
        assert r["energies"].sum() == pytest.approx(r["energy"], abs=1e-9)
        if a.pbc.all():
            np.testing.assert_allclose(r["stress"], b.get_stress(), atol=1e-10)
        else:
            assert "stress" not in r
    # a second call with the same shapes compiles nothing new
    predict_structures(tiny64, structures[::-1], budget=budget, predictor=pred)
    assert pred.compile_count == 2


def test_dispersion_is_added(tiny64):
    pytest.importorskip("dftd3")
    from dftd3.ase import DFTD3

    from facet.predict import Predictor, predict_structures

    structures = _structures()[:3]
    pred = Predictor(tiny64)
    plain = predict_structures(tiny64, structures, predictor=pred)
    withd3 = predict_structures(tiny64, structures, predictor=pred, dispersion="d3bj")
    for a, p, t in zip(structures, plain, withd3, strict=True):
        b = a.copy()
        b.calc = DFTD3(method="pbe", damping="d3bj")
        assert t["energy"] == pytest.approx(p["energy"] + b.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(t["forces"], p["forces"] + b.get_forces(), atol=1e-9)
        np.testing.assert_allclose(t["stress"], p["stress"] + b.get_stress(), atol=1e-10)


def test_refuses_bad_structures_naming_them(tiny64):
    from ase import Atoms

    from facet.errors import InputError
    from facet.predict import predict_structures

    ok = _structures()[0]
    bad = Atoms("Cu2", positions=[[0, 0, 0], [0.2, 0, 0]])
    with pytest.raises(InputError, match="frame-b: atoms 1 and 0|frame-b: atoms 0 and 1"):
        predict_structures(tiny64, [ok, bad], keys=["frame-a", "frame-b"])


def test_cli_formats_keys_and_refusals(tiny_ckpt, tmp_path, capsys):
    from ase.db import connect
    from ase.io import read, write

    from facet import FacetCalculator
    from facet.cli import main
    from facet.predict import training_budget

    assert training_budget(str(tiny_ckpt)) == (40, 1500, 4)
    s = _structures()
    write(tmp_path / "a.extxyz", s[:3], format="extxyz")
    write(tmp_path / "b.cif", s[5 - 1])
    write(tmp_path / "POSCAR", s[6], format="vasp")
    write(tmp_path / "c.traj", s[7:9])
    with connect(tmp_path / "d.db") as db:
        db.write(s[10])
    inputs = [str(tmp_path / n) for n in ("a.extxyz", "b.cif", "POSCAR", "c.traj", "d.db")]
    out = tmp_path / "pred.extxyz"
    argv = ["predict", *inputs, "-o", str(out), "--model", str(tiny_ckpt), "--per-atom",
            "--no-progress"]
    assert main(argv) == 0
    assert "8 structures" in capsys.readouterr().out
    back = read(out, ":")
    assert [a.info["facet_source"] for a in back] == [
        "a.extxyz:0", "a.extxyz:1", "a.extxyz:2", "b.cif:0", "POSCAR:0", "c.traj:0", "c.traj:1",
        "d.db:id=1"]
    calc = FacetCalculator(str(tiny_ckpt))
    for a in back:
        ref = a.copy()
        ref.calc = calc
        assert a.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=2e-4)
        np.testing.assert_allclose(a.get_forces(), ref.get_forces(), atol=2e-4)
        np.testing.assert_allclose(a.get_stress(), ref.get_stress(), atol=2e-5)
        assert a.calc.results["energies"].shape == (len(a),)

    # refusals: one line, exit code 2, nothing overwritten
    before = out.read_bytes()
    for extra, msg in [([], "exists; pass --overwrite"),
                       (["-o", inputs[0]], "is one of the inputs")]:
        rc = main([*argv, *extra]) if extra else main(argv)
        err = capsys.readouterr().err.strip()
        assert rc == 2 and msg in err and "\n" not in err
    assert out.read_bytes() == before
    assert main([*argv[:-4], "-o", str(tmp_path / "x.cif"), "--model", str(tiny_ckpt)]) == 2
    assert "writes extxyz" in capsys.readouterr().err
