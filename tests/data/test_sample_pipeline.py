"""The bundled sample (data/sample) through the whole pipeline: the MPTrj JSON and the extxyz copy
give the same frames in the same units and signs, and preprocessing keeps every frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facet.data.dataset import PreprocessedDataset
from facet.data.extxyz import iter_extxyz
from facet.data.frames import ReadStats
from facet.data.mptrj import iter_mptrj
from facet.data.preprocess import PreprocessConfig, preprocess

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
JSON, XYZ = SAMPLE / "mptrj_sample.json", SAMPLE / "sample.extxyz"
pytestmark = pytest.mark.skipif(not JSON.exists(), reason="data/sample not present")


@pytest.fixture(scope="module")
def json_frames():
    stats = ReadStats()
    frames = list(iter_mptrj(JSON, stats=stats))
    return frames, stats


def test_json_and_extxyz_agree(json_frames):
    frames, stats = json_frames
    assert stats.read == stats.kept == len(frames) > 0 and stats.n_skipped == 0
    xstats = ReadStats()
    xyz = list(iter_extxyz(XYZ, stats=xstats))
    assert xstats.kept == len(xyz) == len(frames)
    for a, b in zip(frames, xyz, strict=True):
        assert a.key == b.key
        # ASE writes extxyz columns with 8 decimals; the JSON keeps full precision.
        np.testing.assert_allclose(b.positions, a.positions, rtol=0, atol=1e-8)
        np.testing.assert_allclose(b.forces, a.forces, rtol=0, atol=1e-8)
        np.testing.assert_array_equal(b.numbers, a.numbers)
        assert b.energy == pytest.approx(a.energy, abs=1e-9)
        # The JSON's stress is kBar, VASP sign; the extxyz's is eV/A^3, ASE sign: same tensor.
        np.testing.assert_allclose(b.stress, a.stress, rtol=1e-6, atol=1e-9)


def test_sample_preprocesses_without_loss(json_frames, tmp_path):
    frames, _ = json_frames
    m = preprocess(JSON, tmp_path / "s", PreprocessConfig(cutoff=5.0, val_fraction=0.1),
                   progress=False)  # fmt: skip
    assert m["counts"]["read"] == m["counts"]["kept"] == len(frames)
    keys = {
        g.key for s in ("train", "val") for g in PreprocessedDataset(tmp_path / "s", s).graphs()
    }
    assert keys == {f.key for f in frames}
    assert 10 < m["splits"]["train"]["stats"]["avg_neighbors"] < 200
