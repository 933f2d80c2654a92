"""`facet export`: a lammps-jax bundle of the shipped model, deserialised and run as the LAMMPS
pair style would run it on one rank (owned atoms + a ghost shell of num_layers x cutoff + skin,
full neighbour rows for ghosts too), against FacetCalculator on periodic cells."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

pytest.importorskip("lammps_jax")

from facet.lammps import (  # noqa: E402
    compile_bundle,
    export_lammps,
    fold_ghost_forces,
    lammps_inputs,
)

# Type order deliberately not sorted by atomic number: type 1 is Ge, type 2 Si.
ELEMENTS = ["Ge", "Si"]
MAX_ATOMS, EDGES_PER_ATOM = 3000, 40


def _cells():
    si = bulk("Si", "diamond", a=5.43, cubic=True)  # orthorhombic, 8 atoms, one element
    si.rattle(0.05, seed=1)
    # triclinic: a sheared primitive cell of SiGe (2 atoms, both types)
    sige = bulk("Si", "diamond", a=5.53)
    sige.numbers[1] = 32
    strain = np.array([[1.02, 0.03, -0.02], [0.0, 0.98, 0.04], [0.01, 0.0, 1.01]])
    sige.set_cell(sige.cell.array @ strain, scale_atoms=True)
    sige.rattle(0.08, seed=2)
    sige.positions += [0.3, -0.2, 0.1]  # atoms outside the cell: the pair style wraps them
    return {"Si8-orthorhombic": si, "SiGe-triclinic": sige}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The bundle written by the command line, as a user would (`facet export ...`)."""
    from facet.cli import main

    path = tmp_path_factory.mktemp("lammps") / "default.lammps-jax.json"
    argv = ["export", "default", "-o", str(path), "--elements", *ELEMENTS]
    argv += ["--max-atoms", str(MAX_ATOMS), "--edges-per-atom", str(EDGES_PER_ATOM)]
    assert main(argv) == 0
    bundle = json.loads(path.read_text())
    return path, bundle, compile_bundle(bundle)


@pytest.fixture(scope="module")
def reference():
    from facet import FacetCalculator

    calc = FacetCalculator("default")
    out = {}
    for name, atoms in _cells().items():
        atoms.calc = calc
        out[name] = (
            atoms.get_potential_energy(),
            atoms.get_forces(),
            atoms.get_stress(voigt=False),
        )
    return out


def test_bundle_contract(exported):
    path, on_disk, _ = exported
    c = on_disk["contract"]
    assert on_disk["format"] == "lammps-jax-json-distributed"
    assert c["n_hops"] == 3  # the shipped model has three message-passing layers
    assert c["newton"] == "on" and c["unit_style"] == "metal" and c["precision"] == "float32"
    assert c["max_atoms"] == MAX_ATOMS and c["max_edges"] == MAX_ATOMS * EDGES_PER_ATOM
    assert c["n_species"] == 2 and c["cutoff"] == 5.0
    assert on_disk["facet"]["type_elements"] == ELEMENTS
    assert on_disk["facet"]["type_numbers"] == [32, 14]
    assert on_disk["export_info"]["platform"] == "cpu"
    # the C++ loader finds keys by their first occurrence in the text: the contract's must come
    # before anything of ours that could share a name
    text = path.read_text()
    for key in ("max_atoms", "max_edges", "cutoff", "n_hops", "n_species", "format"):
        assert text.count(f'"{key}"') == 1, key


@pytest.mark.parametrize("name", list(_cells()))
@pytest.mark.parametrize("skin", [1.0, pytest.param(0.0, marks=pytest.mark.slow)])
def test_round_trip_matches_calculator(exported, reference, name, skin):
    """Energy to 1e-5 eV, forces (ghost rows folded onto their owners, as LAMMPS' reverse
    communication does) to 1e-4 eV/A, and the virial LAMMPS takes from f.r over all rows to
    the calculator's stress. With skin > 0 the list holds pairs beyond the cutoff, which the
    program must ignore."""
    _, bundle, call = exported
    atoms = _cells()[name]
    e_ref, f_ref, s_ref = reference[name]
    inp = lammps_inputs(atoms, bundle, skin=skin)
    assert inp.nghost > 10 * inp.nlocal  # a three-cutoff shell, many images
    energy, forces = call(inp)
    assert abs(float(energy) - e_ref) < 1e-5
    f = fold_ghost_forces(forces, inp)
    np.testing.assert_allclose(f, f_ref, atol=1e-4, rtol=0)
    nall = inp.nlocal + inp.nghost
    virial = np.einsum("ia,ib->ab", inp.positions[:nall], forces[:nall].astype(np.float64))
    np.testing.assert_allclose(-virial / atoms.get_volume(), s_ref, atol=1e-6, rtol=0)
    assert np.all(forces[nall:] == 0)  # padding rows get no force


def test_type_map_matters(exported, reference):
    """The comparison can fail: feeding the program a type map other than its own (Si atoms
    given type 1, which the bundle maps to Ge) changes the energy by far more than 1e-5 eV."""
    _, bundle, call = exported
    name = "Si8-orthorhombic"
    swapped = dict(bundle, facet=dict(bundle["facet"], type_numbers=[14, 32]))
    energy, _ = call(lammps_inputs(_cells()[name], swapped, skin=1.0))
    assert abs(float(energy) - reference[name][0]) > 1.0


@pytest.mark.slow
def test_one_cutoff_ghost_shell_is_not_enough(exported, reference):
    """Ghosts out to one cutoff only (what a one-layer model would need) leave the ghosts'
    features incomplete: energy or forces move by far more than the tolerances."""
    _, bundle, call = exported
    name = "SiGe-triclinic"
    e_ref, f_ref, _ = reference[name]
    thin = dict(bundle, contract=dict(bundle["contract"], n_hops=1))
    inp = lammps_inputs(_cells()[name], thin, skin=0.0)
    energy, forces = call(inp)
    df = np.abs(fold_ghost_forces(forces, inp) - f_ref).max()
    assert abs(float(energy) - e_ref) > 1e-3 or df > 1e-2


def test_capacity_errors(exported):
    _, bundle, _ = exported
    big = bulk("Si", "diamond", a=5.43, cubic=True).repeat(2)
    with pytest.raises(ValueError, match="exceed the bundle's max_atoms = 3000"):
        lammps_inputs(big, bundle, skin=1.0)
    with pytest.raises(ValueError, match=r"atomic numbers \[6\] have no LAMMPS type"):
        lammps_inputs(bulk("C", "diamond", a=3.57), bundle)
    with pytest.raises(ValueError, match="periodic in all three"):
        lammps_inputs(Atoms("Si2", positions=[[0, 0, 0], [2.3, 0, 0]], cell=[9, 9, 9]), bundle)


def test_cli_errors_are_one_line_and_keep_files(tmp_path, capsys):
    from facet.cli import main

    out = tmp_path / "m.lammps-jax.json"
    base = ["export", "default", "-o", str(out), "--max-atoms", "100", "--edges-per-atom", "10"]
    assert main([*base, "--elements", "Si", "Xx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "facet export: error: elements: LAMMPS type 2 is 'Xx', not a chemical element"
    out.write_text("mine")
    assert main([*base, "--elements", "Si"]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "mine"
    with pytest.raises(SystemExit):
        main([*base, "--elements", "Si", "--platform", "tpu"])
    with pytest.raises(SystemExit):
        main([*base[:4], "--max-atoms", "0", "--edges-per-atom", "10", "--elements", "Si"])
    capsys.readouterr()
    api = dict(elements=["Si"], max_atoms=10, edges_per_atom=10)
    with pytest.raises(ValueError, match="platform must be one of cpu, cuda"):
        export_lammps("default", tmp_path / "a.json", platform="tpu", **api)
    with pytest.raises(ValueError, match="does not fit the int32"):
        huge = dict(api, max_atoms=2**20, edges_per_atom=2**12)
        export_lammps("default", tmp_path / "a.json", **huge)
    assert not (tmp_path / "a.json").exists()


@pytest.mark.slow
def test_bundle_runs_on_lammps_jax_cpu_pjrt_plugin(exported, reference):
    """The bundle compiled and run by the XLA CPU PJRT plugin that pair_style jax/kk loads in a
    Kokkos OpenMP build (lammps-jax[cpu]), in a fresh process (a plugin must be registered
    before JAX starts its backends)."""
    import subprocess
    import sys

    pytest.importorskip("lammps_jax_pjrt_cpu")
    path, _, _ = exported
    name = "SiGe-triclinic"
    script = f"""
import json, sys
import numpy as np
import lammps_jax_pjrt_cpu as p
from jax._src import xla_bridge
xla_bridge.register_plugin("lammps_jax_cpu", library_path=str(p.PLUGIN_PATH))
sys.path.insert(0, {str(__file__.rsplit("/", 1)[0])!r})
from test_lammps_export import _cells
from facet.lammps import compile_bundle, fold_ghost_forces, lammps_inputs
bundle = json.load(open({str(path)!r}))
inp = lammps_inputs(_cells()[{name!r}], bundle, skin=1.0, within_cutoff=True)
energy, forces = compile_bundle(bundle, backend="lammps_jax_cpu")(inp)
print(json.dumps([float(energy), fold_ghost_forces(forces, inp).tolist()]))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-3000:]
    energy, forces = json.loads(out.stdout.strip().splitlines()[-1])
    e_ref, f_ref, _ = reference[name]
    assert abs(energy - e_ref) < 1e-5
    np.testing.assert_allclose(forces, f_ref, atol=1e-4, rtol=0)
