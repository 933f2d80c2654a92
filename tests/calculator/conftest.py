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


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory):
    """A float32 checkpoint of a tiny facet-s (random weights) with a training batch shape."""
    import yaml

    from facet import create_model
    from facet.train.checkpoint import save_checkpoint
    from facet.train.step import split_model

    over = {"channels": 8, "num_layers": 1, "mixer_hidden": 8, "cutoff": 4.0}
    model = create_model("facet-s", seed=2, **over)
    _, params, rest = split_model(model)
    cfg = {"model": {"preset": "facet-s", "overrides": over},
           "data": {"max_nodes": 40, "max_edges": 1500, "max_graphs": 4}}
    root = tmp_path_factory.mktemp("tiny") / "run"
    return save_checkpoint(root / "checkpoints", 1, {"ema": params, "rest": rest},
                           config_yaml=yaml.safe_dump(cfg))


@pytest.fixture(scope="session")
def tiny64():
    """Facet-S at the smallest width and depth (8 channels, one block), random weights, float64:
    every code path of one interaction block at a fraction of facet_s64's compile time."""
    import jax

    from facet import create_model

    with jax.enable_x64(True):
        yield create_model(
            "facet-s", seed=4, dtype="float64", num_layers=1, channels=8, mixer_hidden=8,
            residual_init=1.0,
        )
