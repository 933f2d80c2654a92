"""Fixtures for the dynamics tests."""

from __future__ import annotations

import os

# ASE's FrechetCellFilter solves 3 x 3 systems with scipy; a multi-threaded BLAS on a busy
# machine makes each solve take milliseconds (20x slower relaxations). One thread is enough.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402
from dyn_helpers import MORSE  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _single_thread_blas():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the environment variable above still helps when set early enough
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def morse64():
    import jax

    from facet.dynamics import MorsePotential

    with jax.enable_x64(True):
        yield MorsePotential(**MORSE, dtype="float64")
