"""Fixtures of the edge-case tests (issue 17): helpers of the dynamics, data and training tests,
and a Morse model registered as ``test-morse`` (fast, no weights to load)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

HERE = Path(__file__).parent
for sub in ("dynamics", "data", "train"):
    sys.path.insert(0, str(HERE.parent / sub))

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def morse_model():
    from dyn_helpers import MORSE

    from facet.calculator import MODELS, register_model
    from facet.dynamics import MorsePotential

    register_model("test-morse", lambda dtype: MorsePotential(**MORSE, dtype=dtype))
    yield "test-morse"
    MODELS.pop("test-morse", None)
