"""extxyz and ASE-db readers: exact round trips, ASE interoperability (calculator keys, MACE REF_
keys with Voigt/9-component stress and virials), bad input with location, skip accounting."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from facet.data.extxyz import iter_ase_db, iter_extxyz, write_extxyz
from facet.data.frames import FrameError, ReadStats
from facet.data.mptrj import iter_mptrj


@pytest.fixture
def frames(mptrj_file):
    return list(iter_mptrj(mptrj_file[0]))


def _assert_frames_equal(a, b, *, exact=True):
    assert a.key == b.key
    close = np.testing.assert_array_equal if exact else np.testing.assert_allclose
    close(a.positions, b.positions)
    np.testing.assert_array_equal(a.numbers, b.numbers)
    close(a.cell, b.cell)
    np.testing.assert_array_equal(a.pbc, b.pbc)
    assert a.energy == b.energy
    close(a.forces, b.forces)
    close(a.stress, b.stress)
    assert (a.magmom is None) == (b.magmom is None)
    if a.magmom is not None:
        close(a.magmom, b.magmom)


@pytest.mark.parametrize("prefix", ["", "REF_"])
def test_round_trip_is_exact(frames, tmp_path, prefix):
    path = tmp_path / f"rt{prefix}.extxyz"
    assert write_extxyz(path, frames, prefix=prefix) == len(frames)
    again = list(iter_extxyz(path))
    assert len(again) == len(frames)
    for a, b in zip(frames, again, strict=True):
        _assert_frames_equal(a, b, exact=True)
        assert b.info["corrected_total_energy"] == a.info["corrected_total_energy"]


def test_ase_reads_our_files_with_the_same_meaning(frames, tmp_path):
    path = tmp_path / "ours.extxyz"
    write_extxyz(path, frames)
    atoms = read(path, index=":")
    for f, a in zip(frames, atoms, strict=True):
        assert a.get_potential_energy() == f.energy
        np.testing.assert_array_equal(a.get_forces(), f.forces)
        np.testing.assert_array_equal(a.get_stress(voigt=False), f.stress)  # ASE sign, eV/A^3
        assert a.info["mp_id"] == f.material_id


def _nacl(i):
    a = bulk("NaCl", "rocksalt", a=5.64) * (1, 1, 2)
    a.rattle(0.05, seed=i)
    return a


def test_reads_ase_written_calculator_labels(tmp_path):
    rng = np.random.default_rng(0)
    images, truth = [], []
    for i in range(3):
        a = _nacl(i)
        voigt = rng.normal(0, 1e-3, 6)
        f = rng.normal(size=(len(a), 3))
        a.calc = SinglePointCalculator(a, energy=-10.0 - i, forces=f, stress=voigt)
        a.info["mp_id"] = "mp-22862"
        a.info["task_id"] = f"mp-{i}"
        images.append(a)
        truth.append((f, voigt))
    write(tmp_path / "ase.extxyz", images)  # ASE rounds columns to 8 decimals
    got = list(iter_extxyz(tmp_path / "ase.extxyz"))
    for g, (f, v), a in zip(got, truth, images, strict=True):
        assert g.material_id == "mp-22862" and g.frame_id == a.info["task_id"]
        np.testing.assert_allclose(g.forces, f, atol=1e-8)
        xx, yy, zz, yz, xz, xy = v
        np.testing.assert_allclose(
            g.stress, [[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]], rtol=1e-12, atol=1e-15
        )


@pytest.mark.parametrize("form", ["voigt6", "full9", "virials9", "virials6"])
def test_mace_ref_keys(tmp_path, form):
    a = _nacl(1)
    rng = np.random.default_rng(1)
    s = rng.normal(0, 1e-3, (3, 3))
    s = 0.5 * (s + s.T)
    voigt = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    vol = a.get_volume()
    a.info["REF_energy"] = -12.5
    a.arrays["REF_forces"] = rng.normal(size=(len(a), 3))
    a.info["config_type"] = "bulk"
    if form == "voigt6":
        a.info["REF_stress"] = voigt
    elif form == "full9":
        a.info["REF_stress"] = s.reshape(-1)
    elif form == "virials9":
        a.info["REF_virials"] = (-s * vol).reshape(-1)
    else:
        a.info["REF_virials"] = -voigt * vol
    write(tmp_path / "mace.extxyz", [a])
    (g,) = iter_extxyz(tmp_path / "mace.extxyz")
    assert g.energy == -12.5 and g.info["config_type"] == "bulk"
    np.testing.assert_allclose(g.forces, a.arrays["REF_forces"], atol=1e-8)
    np.testing.assert_allclose(g.stress, s, rtol=1e-10, atol=1e-15)
    # Without an id, each frame is its own material named after the file and index.
    assert g.material_id == "mace:0"


def _write_raw(path, body: str) -> str:
    path.write_text(body)
    return str(path)


GOOD = (
    '2\nLattice="4.0 0.0 0.0 0.0 4.0 0.0 0.0 0.0 4.0" Properties=species:S:1:pos:R:3:forces:R:3 '
    'energy=-3.0 mp_id={mid} pbc="T T T"\n'
    "Na 0.0 0.0 0.0 0.1 0.0 0.0\nCl {x} 2.0 2.0 {fx} 0.0 0.0\n"
)


def test_bad_frames_raise_or_skip_and_count(tmp_path):
    body = (
        GOOD.format(mid="mp-1", x="2.0", fx="-0.1")
        + GOOD.format(mid="mp-2", x="0.1", fx="-0.1").replace("2.0 2.0 -0.1", "0.0 0.0 -0.1")
        + GOOD.format(mid="mp-3", x="2.0", fx="nan")
        + GOOD.format(mid="mp-4", x="2.0", fx="-0.1").replace(" energy=-3.0", "")
        + GOOD.format(mid="mp-5", x="2.0", fx="-0.1").replace("Na ", "Xx ")
        + GOOD.format(mid="mp-6", x="2.0", fx="-0.1").replace("0.1 0.0 0.0", "0.1 0.0")
        + GOOD.format(mid="mp-7", x="2.0", fx="-0.1")
    )
    path = _write_raw(tmp_path / "bad.extxyz", body)
    with pytest.raises(FrameError, match=r"bad\.extxyz.*mp-2.*frame 1.*atoms_too_close"):
        list(iter_extxyz(path))
    stats = ReadStats()
    got = list(iter_extxyz(path, on_error="skip", stats=stats))
    stats.check()
    assert [g.material_id for g in got] == ["mp-1", "mp-7"]
    assert stats.read == 7
    assert dict(stats.skipped) == {
        "atoms_too_close": 1,
        "non_finite": 1,
        "missing_key": 1,
        "unknown_element": 1,
        "malformed": 1,  # a short atom line
    }
    assert any("mp-5" in m and "Xx" in m for m in stats.examples)


def test_truncated_extxyz_names_file_and_frame(tmp_path):
    body = GOOD.format(mid="mp-1", x="2.0", fx="-0.1") * 2
    path = _write_raw(tmp_path / "cut.extxyz", body[: len(body) - 30])
    with pytest.raises(FrameError, match=r"cut\.extxyz.*mp-1, frame 1.*truncated"):
        list(iter_extxyz(path))
    stats = ReadStats()
    assert len(list(iter_extxyz(path, on_error="skip", stats=stats))) == 1
    stats.check()
    assert stats.skipped["malformed"] == 1
    # A count line that is not a number cannot be skipped over.
    bad = _write_raw(tmp_path / "nocount.extxyz", body.replace("2\n", "two\n", 1))
    with pytest.raises(FrameError, match=r"nocount\.extxyz.*atom count of frame 0"):
        list(iter_extxyz(bad, on_error="skip"))


def test_ase_database(tmp_path, frames):
    import ase.db
    from ase import Atoms

    path = tmp_path / "frames.db"
    with ase.db.connect(path) as db:
        for f in frames[:4]:
            a = Atoms(f.numbers, positions=f.positions, cell=f.cell, pbc=f.pbc)
            s = f.stress
            voigt = [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]]
            a.calc = SinglePointCalculator(
                a, energy=f.energy, forces=f.forces, stress=voigt, magmoms=f.magmom
            )
            db.write(a, mp_id=f.material_id, frame_id=f.frame_id)
        # One row with MACE-style keys in key-value pairs and data.
        f = frames[4]
        a = Atoms(f.numbers, positions=f.positions, cell=f.cell, pbc=f.pbc)
        db.write(a, mp_id=f.material_id, frame_id=f.frame_id, REF_energy=f.energy,
                 data={"REF_forces": f.forces, "REF_stress": f.stress.reshape(-1),
                       "REF_magmoms": f.magmom})  # fmt: skip
    got = list(iter_ase_db(path))
    assert len(got) == 5
    for a, b in zip(frames[:5], got, strict=True):
        _assert_frames_equal(a, b, exact=False)
