"""Readers and preprocess at the edges (issue 17): duplicate ids are counted, not lost (item 4);
preprocess never deletes a file it did not write (item 5); a stress label on a non-periodic frame
is dropped and counted (item 7); a source without frames is an error (item 8)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from data_factories import build_mptrj

from facet.data.errors import ReadStats
from facet.data.frames import FrameError
from facet.data.preprocess import PreprocessConfig, preprocess
from facet.data.sources import read_frames
from facet.errors import InputError


def _two_frames_one_id(path):
    """An MPTrj file whose material mp-1000 has two frames under the same id."""
    data = build_mptrj(np.random.default_rng(3), 2, frames_per_material=2)
    (mid, frames), (mid2, frames2) = data.items()
    f0, f1 = frames.values()
    f1 = dict(f1, uncorrected_total_energy=f1["uncorrected_total_energy"] + 1.0)
    text = (
        "{" + json.dumps(mid) + ": {" + '"same": ' + json.dumps(f0) + ', "same": '
        + json.dumps(f1) + "}, " + json.dumps(mid2) + ": " + json.dumps(frames2) + "}"
    )
    path.write_text(text)
    return f0


def test_duplicate_frame_id_in_material_is_counted(tmp_path):
    src = tmp_path / "dup.json"
    f0 = _two_frames_one_id(src)
    stats = ReadStats()
    frames = list(read_frames(src, on_error="skip", stats=stats))
    assert stats.read == 4 and stats.kept == 3
    assert dict(stats.skipped) == {"duplicate_id": 1}
    kept = [f for f in frames if f.frame_id == "same"]
    assert len(kept) == 1 and kept[0].energy == pytest.approx(f0["uncorrected_total_energy"])
    with pytest.raises(FrameError, match=r"material mp-1000, frame same: duplicate id"):
        list(read_frames(src))
    m = preprocess(src, tmp_path / "out", PreprocessConfig(on_error="skip"), progress=False)
    assert m["counts"]["read"] == 4 and m["counts"]["kept"] == 3
    assert m["counts"]["skipped_by_reason"] == {"duplicate_id": 1}


def test_duplicate_ids_across_extxyz_frames_are_counted(tmp_path):
    frames = []
    for k in range(3):
        a = bulk("Cu", "fcc", a=3.6 + 0.01 * k) * (2, 1, 1)
        a.calc = SinglePointCalculator(a, energy=-3.0 - k, forces=np.zeros((2, 3)))
        a.info.update(mp_id="mp-1", frame_id="0" if k < 2 else "1")
        frames.append(a)
    write(tmp_path / "d.extxyz", frames)
    stats = ReadStats()
    got = list(read_frames(tmp_path / "d.extxyz", on_error="skip", stats=stats))
    assert [f.energy for f in got] == [-3.0, -5.0]
    assert (stats.read, stats.kept, dict(stats.skipped)) == (3, 2, {"duplicate_id": 1})


def test_preprocess_never_deletes_files_it_did_not_write(tmp_path):
    src = tmp_path / "s.json"
    src.write_text(json.dumps(build_mptrj(np.random.default_rng(0), 3, 2)))
    out = tmp_path / "results"
    out.mkdir()
    mine = out / "train-final-weights.h5"
    mine.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match=r"not empty \(train-final-weights.h5\).*--overwrite"):
        preprocess(src, out, PreprocessConfig(), progress=False)
    assert mine.read_bytes() == b"precious"
    m = preprocess(src, out, PreprocessConfig(), progress=False, overwrite=True)
    assert mine.read_bytes() == b"precious"
    shards = {s["file"] for sp in m["splits"].values() for s in sp["shards"]}
    # a second overwrite removes the shards it wrote, and still not the user's file
    (out / "notes.txt").write_text("mine too")
    preprocess(src, out, PreprocessConfig(seed=5), progress=False, overwrite=True)
    assert mine.read_bytes() == b"precious" and (out / "notes.txt").read_text() == "mine too"
    assert shards  # the first run wrote shards (names checked by the manifest test)


def _labelled(atoms, stress=True):
    res = {"energy": -1.0 * len(atoms), "forces": np.zeros((len(atoms), 3))}
    if stress:
        res["stress"] = np.array([0.01, 0.02, 0.03, 0.0, 0.0, 0.001])
    atoms.calc = SinglePointCalculator(atoms, **res)
    return atoms


def test_stress_on_non_periodic_frames_is_dropped_and_counted(tmp_path):
    mol = _labelled(Atoms("Cu2", positions=[[0, 0, 0], [2.4, 0, 0]], cell=[8, 8, 8], pbc=False))
    slab = _labelled(Atoms("Cu2", positions=[[0, 0, 0], [2.4, 0, 0]], cell=[8, 8, 8],
                           pbc=[True, True, False]))
    crystal = _labelled(bulk("Cu", "fcc", a=3.6))
    write(tmp_path / "m.extxyz", [mol, slab, crystal])
    stats = ReadStats()
    frames = list(read_frames(tmp_path / "m.extxyz", stats=stats))
    assert [f.stress is None for f in frames] == [True, True, False]
    assert frames[0].dropped == ("stress_not_periodic",)
    np.testing.assert_allclose(frames[2].stress[0, 0], 0.01)
    assert stats.kept == 3 and dict(stats.dropped) == {"stress_not_periodic": 2}
    # MPTrj JSON with lattice pbc false: the same
    data = build_mptrj(np.random.default_rng(1), 1, 2)
    (mid, fr), = data.items()
    first = next(iter(fr.values()))
    first["structure"]["lattice"]["pbc"] = [False, False, False]
    (tmp_path / "np.json").write_text(json.dumps(data))
    stats = ReadStats()
    frames = list(read_frames(tmp_path / "np.json", stats=stats))
    assert [f.stress is None for f in frames] == [True, False]
    assert dict(stats.dropped) == {"stress_not_periodic": 1}
    m = preprocess(tmp_path / "np.json", tmp_path / "pp", PreprocessConfig(), progress=False)
    assert m["counts"]["labels_dropped"] == {"stress_not_periodic": 1}


@pytest.mark.parametrize(
    "name, text",
    [("e.extxyz", ""), ("o.json", "{}"), ("l.json", "[1, 2, 3]"), ("s.json", '"text"'),
     ("z.json", "")],
)
def test_source_without_frames_is_an_error(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=rf"no frames read from .*{name}"):
        preprocess(tmp_path / name, tmp_path / "out", PreprocessConfig(), progress=False)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_calculator_refuses_empty_atoms():
    from dyn_helpers import MORSE

    from facet import FacetCalculator
    from facet.dynamics import MorsePotential

    atoms = Atoms()
    atoms.calc = FacetCalculator(model=MorsePotential(**MORSE))
    with pytest.raises(InputError, match="no atoms"):
        atoms.get_potential_energy()
