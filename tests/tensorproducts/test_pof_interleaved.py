"""The interleaved A/B script's pure helpers (scripts/pof_interleaved.py): call order and
summary statistics."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "pof_interleaved.py"
_spec = importlib.util.spec_from_file_location("pof_interleaved", _PATH)
pi = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pi)


def test_abba_alternates_who_goes_first():
    order = pi.abba(6)
    assert order == [(0, 1), (1, 0)] * 3
    firsts = [o[0] for o in order]
    assert firsts.count(0) == firsts.count(1) == 3  # each side leads half of the rounds
    assert all(sorted(o) == [0, 1] for o in order)  # both sides run in every round


def test_summarise_median_and_iqr():
    s = pi.summarise([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s == {"median_ms": 3.0, "iqr_ms": 2.0, "n": 5}  # the outlier moves neither
    assert np.isclose(pi.summarise([5.0])["iqr_ms"], 0.0)
