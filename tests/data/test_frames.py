"""Units and signs on a real VASP OUTCAR, and frame validation (each reason, with location)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from facet.data.frames import (
    FrameError,
    ReadStats,
    make_frame,
    stress_from_vasp_kbar,
    stress_to_vasp_kbar,
)

# A real VASP OUTCAR shipped with the tests (ASE's test file, see files/README.md): the test
# must run everywhere, never skip.
OUTCAR = Path(__file__).parent / "files" / "OUTCAR_example_1.gz"


def _outcar_kbar(path: Path) -> np.ndarray:
    """The last 'in kB' line of an OUTCAR as a symmetric 3x3 matrix (VASP order XX YY ZZ XY YZ
    ZX, VASP sign), parsed independently of ASE."""
    text = gzip.open(path, "rt").read()
    line = [ln for ln in text.splitlines() if ln.strip().startswith("in kB")][-1]
    xx, yy, zz, xy, yz, zx = map(float, line.split()[2:8])
    return np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]])


def test_stress_conversion_on_real_vasp_outcar():
    from ase.io import read

    kbar = _outcar_kbar(OUTCAR)
    assert kbar[0, 0] == pytest.approx(-4.29429)  # the raw VASP number: compressive is positive
    ours = stress_from_vasp_kbar(kbar)
    atoms = read(OUTCAR, format="vasp-out")  # ASE's own OUTCAR parser
    theirs = atoms.get_stress(voigt=False)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-12)
    # REFERENCE.md: xx = -4.294 kB becomes +0.00268 eV/A^3 (tensile)
    assert ours[0, 0] == pytest.approx(0.00268029, abs=1e-8)
    np.testing.assert_allclose(stress_to_vasp_kbar(ours), kbar, rtol=1e-14)
    # The frame built from it validates (18 Ni atoms, real geometry).
    e, forces = atoms.get_potential_energy(), atoms.get_forces()
    f = make_frame(atoms.positions, atoms.numbers, atoms.cell[:], atoms.pbc, energy=e,
                   forces=forces, stress=ours, material_id="ni-outcar", frame_id="0")  # fmt: skip
    assert f.n_atoms == 18


def _good(**over):
    kw = dict(
        positions=[[0.0, 0.0, 0.0], [1.4, 1.4, 1.4]],
        numbers=[11, 17],
        cell=np.eye(3) * 2.8,
        pbc=True,
        energy=-6.0,
        forces=np.zeros((2, 3)),
        stress=np.zeros((3, 3)),
        magmom=None,
        material_id="mp-22862",
        frame_id="t-1-0",
        source="some/file.extxyz",
    )
    kw.update(over)
    return kw


@pytest.mark.parametrize(
    "over, reason, fragment",
    [
        ({"forces": np.zeros((2, 2))}, "bad_shape", "forces has shape (2, 2)"),
        ({"stress": np.zeros(6)}, "bad_shape", "stress has shape (6,)"),
        ({"magmom": [0.0]}, "bad_shape", "magmom"),
        ({"positions": [[0.0, 0.0], [1.0, 1.0]]}, "bad_shape", "positions"),
        ({"positions": np.zeros((0, 3)), "numbers": []}, "empty_structure", "empty"),
        ({"numbers": [11, 0]}, "unknown_element", "[0]"),
        ({"numbers": [11, 119]}, "unknown_element", "119"),
        ({"numbers": [11, 17.5]}, "bad_shape", "not integers"),
        ({"energy": float("nan")}, "non_finite", "energy"),
        ({"forces": [[0.0, np.inf, 0.0], [0.0, 0.0, 0.0]]}, "non_finite", "forces"),
        ({"positions": [[0.0, 0.0, np.nan], [1.4, 1.4, 1.4]]}, "non_finite", "positions"),
        ({"cell": [[2.8, 0, 0], [5.6, 0, 0], [0, 0, 2.8]]}, "singular_cell", "singular"),
        ({"positions": [[0.0, 0.0, 0.0], [0.3, 0.0, 0.0]]}, "atoms_too_close", "0.3000 A"),
        # Through the periodic boundary: 2.7 and 0.0 in a 2.8 A cell are 0.1 A apart.
        ({"positions": [[0.0, 0.0, 0.0], [2.7, 0.0, 0.0]]}, "atoms_too_close", "0.1000 A"),
        # An atom and its own image in a 0.4 A cell.
        (
            {"cell": np.diag([0.4, 3.0, 3.0]), "positions": [[0, 0, 0], [0.2, 1.5, 1.5]]},
            "atoms_too_close",
            "own periodic image",
        ),  # fmt: skip
        ({"energy": "abc"}, "malformed", "not a number"),
    ],
)
def test_bad_frames_raise_with_location(over, reason, fragment):
    with pytest.raises(FrameError) as ei:
        make_frame(**_good(**over))
    msg = str(ei.value)
    assert ei.value.reason == reason
    assert fragment in msg
    assert "some/file.extxyz" in msg and "mp-22862" in msg and "t-1-0" in msg


def test_good_frame_and_options():
    f = make_frame(**_good())
    assert (
        f.numbers.dtype == np.int64 and f.pbc.tolist() == [True] * 3 and f.key == "mp-22862/t-1-0"
    )
    # A singular cell is fine when that direction is not periodic (a slab).
    slab = make_frame(**_good(cell=[[2.8, 0, 0], [0, 2.8, 0], [0, 0, 0]], pbc=[True, True, False]))
    assert slab.pbc.tolist() == [True, True, False]
    # The distance threshold is configurable, and 0 disables it.
    close = _good(positions=[[0.0, 0.0, 0.0], [0.3, 0.0, 0.0]])
    assert make_frame(**close, min_distance=0.2).n_atoms == 2
    assert make_frame(**close, min_distance=0.0).n_atoms == 2


def test_read_stats_accounting():
    s = ReadStats()
    s.read = 3
    s.kept = 1
    s.skip(FrameError("x", reason="non_finite", source="f", material_id="m", frame_id="1"))
    with pytest.raises(AssertionError, match="read 3 != kept 1"):
        s.check()
    s.skip(FrameError("y", reason="non_finite"))
    s.check()
    assert s.as_dict()["skipped_by_reason"] == {"non_finite": 2}
    with pytest.raises(ValueError, match="unknown FrameError reason"):
        FrameError("z", reason="because")
    # Errors travel back from worker processes intact.
    import pickle

    e = pickle.loads(pickle.dumps(FrameError("w", reason="malformed", source="f", frame_id="3")))
    assert (e.reason, e.source, e.frame_id, str(e)) == (
        "malformed",
        "f",
        "3",
        "f: material ?, frame 3: w [malformed]",
    )
