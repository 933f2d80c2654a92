"""MPTrj JSON compressed with gzip (the bundled distillation set) streams like the plain file."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from facet.data.errors import FrameError, ReadStats
from facet.data.mptrj import iter_mptrj
from facet.data.sources import detect_format

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "mptrj_sample.json"
DISTILL = ROOT / "data" / "distill" / "mptrj_distill.json.gz"


def test_gzip_equals_plain(tmp_path):
    gz = tmp_path / "sample.json.gz"
    with open(SAMPLE, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert detect_format(gz) == "mptrj"
    plain, packed = list(iter_mptrj(SAMPLE)), list(iter_mptrj(gz))
    assert len(plain) == len(packed) == 286
    for a, b in zip(plain, packed, strict=True):
        assert (a.material_id, a.frame_id) == (b.material_id, b.frame_id)
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.stress, b.stress)
        assert a.energy == b.energy


def test_truncated_gzip_names_the_file(tmp_path):
    data = DISTILL.read_bytes()
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FrameError, match="cut.json.gz"):
        for _ in iter_mptrj(cut):
            pass


def test_bundled_distill_counts_add_up():
    manifest = json.loads((DISTILL.parent / "manifest.json").read_text())
    stats = ReadStats()
    n = sum(1 for _ in iter_mptrj(DISTILL, on_error="skip", stats=stats))
    assert stats.read == stats.kept + sum(stats.skipped.values())
    assert n == stats.kept == manifest["counts"]["frames"]
