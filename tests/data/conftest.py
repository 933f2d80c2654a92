"""Fixtures of the data tests (builders live in data_factories.py)."""

from __future__ import annotations

import numpy as np
import pytest
from data_factories import build_mptrj, write_json


@pytest.fixture
def mptrj_file(tmp_path):
    """(path, dict) of a 6-material, 18-frame MPTrj-layout file."""
    data = build_mptrj(np.random.default_rng(42), 6)
    return write_json(tmp_path / "mptrj_small.json", data), data
