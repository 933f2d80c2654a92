"""Fixtures for the calculator tests."""

from __future__ import annotations

import os

# ASE's finite-difference and filter code solves small systems with a threaded BLAS; one thread
# avoids a 20x slow-down on a busy machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def facet_s64():
    """Facet-S with random weights in float64 (one compiled program per padded shape)."""
    import jax

    from facet import create_model

    with jax.enable_x64(True):
        yield create_model("facet-s", seed=1, dtype="float64")
