"""The equal-budget accuracy harness (facet.bench.accuracy) without training anything:
the material split of a distillation directory (gzip MPTrj + splits.json) and the scoring
function that both trainers' test predictions go through."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facet.bench import accuracy as ba
from facet.bench import train_peers as btp

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "mptrj_sample.json"


@pytest.fixture(scope="module")
def frames():
    return btp.read_frames(str(SAMPLE))


def test_distill_directory_split_by_material(frames, tmp_path):
    mats = sorted({f.material_id for f in frames})
    splits = {"train": mats[:16], "val": mats[16:19], "test": mats[19:]}
    with open(SAMPLE, "rb") as src, gzip.open(tmp_path / "mptrj_distill.json.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (tmp_path / "splits.json").write_text(json.dumps(splits))
    got = ba.load_splits(str(tmp_path))
    assert sum(len(v) for v in got.values()) == len(frames)  # nothing dropped
    for name, ids in splits.items():
        assert {f.material_id for f in got[name]} == set(ids)
    by_id = {f.frame_id: f for f in frames}
    for f in got["test"]:
        np.testing.assert_array_equal(f.forces, by_id[f.frame_id].forces)
        assert f.energy == by_id[f.frame_id].energy


def test_split_lists_errors_name_the_material(frames):
    mats = sorted({f.material_id for f in frames})
    with pytest.raises(ValueError, match=f"{mats[0]} is in both train and test"):
        ba.split_by_lists(frames, {"train": mats, "val": [], "test": mats[:1]}, source="s")
    with pytest.raises(ValueError, match=f"material {mats[-1]} .*is in no split"):
        ba.split_by_lists(frames, {"train": mats[:-1], "val": [], "test": []}, source="s")
    with pytest.raises(ValueError, match="absent from the data"):
        ba.split_by_lists(frames, {"train": mats + ["ghost"], "val": [], "test": []}, source="s")
    with pytest.raises(ValueError, match=r"no \['test'\]"):
        ba.split_by_lists(frames, {"train": mats, "val": []}, source="s")


def test_frame_split_is_seeded_and_complete():
    a = ba.load_splits(str(SAMPLE), split_by="frame", seed=3)
    b = ba.load_splits(str(SAMPLE), split_by="frame", seed=3)
    ids = {k: [f.frame_id for f in v] for k, v in a.items()}
    assert ids == {k: [f.frame_id for f in v] for k, v in b.items()}
    allids = [i for v in ids.values() for i in v]
    assert len(allids) == len(set(allids)) == 286


def test_score_known_errors(frames):
    """Energy +10 meV/atom, forces +/-2 meV/A, stress +0.1 meV/A^3 give exactly those MAEs."""
    sub = frames[:25]
    pred = []
    for k, f in enumerate(sub):
        sign = 1.0 if k % 2 else -1.0
        pred.append({"energy": f.energy + sign * 0.010 * f.n_atoms,
                     "forces": f.forces + sign * 0.002,
                     "stress": (f.stress + 1e-4).tolist()})
    m = ba.score(sub, pred)
    assert m["energy_mae"] == pytest.approx(10.0, rel=1e-9)
    assert m["energy_rmse"] == pytest.approx(10.0, rel=1e-9)
    assert m["forces_mae"] == pytest.approx(2.0, rel=1e-9)
    assert m["stress_mae"] == pytest.approx(0.1, rel=1e-6)
    assert m["forces_count"] == 3 * sum(f.n_atoms for f in sub)
    assert m["stress_count"] == 9 * len(sub)
    with pytest.raises(ValueError, match="24 predictions for 25"):
        ba.score(sub, pred[:-1])
