"""Fixtures for the calculator tests."""

from __future__ import annotations

import os

# ASE's finite-difference and filter code solves small systems with a threaded BLAS; one thread
# avoids a 20x slow-down on a busy machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def facet_s64():
    """The Facet-S architecture (lmax 2, grid mixing, ZBL) at reduced width and depth, random
    weights, float64: every code path of the network at a fraction of the compile time.
    ``residual_init=1`` makes every interaction block contribute from the start."""
    import jax

    from facet import create_model

    with jax.enable_x64(True):
        yield create_model(
            "facet-s", seed=1, dtype="float64", num_layers=2, channels=16, mixer_hidden=16,
            residual_init=1.0,
        )
