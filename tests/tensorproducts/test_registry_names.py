"""The names users write in configs and on the command line are pinned: renaming or dropping a
registered tensor product, preset, radial basis, grid activation, ensemble, optimiser, schedule
or loss breaks saved configs and checkpoints, so it must be a deliberate change of this list."""

from __future__ import annotations

import tensorproducts


def test_tensor_product_names():
    assert sorted(tensorproducts.REGISTRY) == [
        "cg-dense", "cg-sparse", "gaunt-fourier", "gaunt-grid", "matrix", "so2",
        "vector-gaunt-grid",
    ]  # fmt: skip
    for name, spec in tensorproducts.REGISTRY.items():
        assert tensorproducts.get(name) is spec


def test_model_and_training_names():
    from facet.dynamics.ensembles import ENSEMBLES, names
    from facet.model_io import MODELS
    from facet.nn.grid_mixing import GRID_ACTIVATIONS
    from facet.nn.presets import PRESETS
    from facet.nn.radial import RADIAL_BASES
    from facet.train.loss import LOSS_KINDS
    from facet.train.optim import OPTIMIZERS, SCHEDULES

    assert sorted(PRESETS) == ["facet-m", "facet-s"]
    assert sorted(RADIAL_BASES) == ["bessel", "bspline"]
    assert sorted(GRID_ACTIVATIONS) == ["quadratic", "silu"]
    assert sorted(ENSEMBLES) == ["npt", "nve", "nvt"]
    assert names("ase") == ["npt", "nve", "nvt"]
    assert names("jax_md") == ["nve", "nvt"]
    assert sorted(OPTIMIZERS) == ["adam", "adamw", "sgd"]
    assert sorted(SCHEDULES) == ["constant", "cosine", "linear", "wsd"]
    assert sorted(LOSS_KINDS) == ["huber", "mae", "mse"]
    assert "default" in MODELS  # the shipped model (tests may register more)
