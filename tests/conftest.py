"""Shared fixtures. Nothing here changes global JAX state: float64 is opt-in per test."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

# Compiled programs go to a per-session folder, never to the user's cache (facet.compile_cache);
# subprocesses of the tests inherit it. A folder set by the caller is kept.
if "FACET_COMPILE_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="facet-test-jax-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["FACET_COMPILE_CACHE"] = _cache


def _enable_x64():
    # ``jax.experimental.enable_x64`` moved to ``jax.enable_x64`` (a context manager) in 0.10.
    import jax

    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # pragma: no cover - older JAX

    return enable_x64()


@pytest.fixture
def x64():
    """Run the test body with 64-bit JAX types enabled (restored afterwards)."""
    import jax.numpy as jnp

    with _enable_x64():
        assert jnp.zeros(1).dtype == jnp.float64
        yield
