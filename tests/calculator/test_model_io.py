"""Model loading for inference (facet.model_io): the calculator's side of the checkpoint format,
apart from the training package."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from facet.model_io import (
    ModelSpec,
    load_model,
    read_trained,
    spec_from_config,
    split_model,
)


def test_inference_imports_no_training_module():
    """At run time too: loading the calculator, the dynamics and the model reader leaves
    ``facet.train`` unimported."""
    code = ("import sys, facet.calculator, facet.dynamics, facet.model_io, facet.predict\n"
            "print(sorted(m for m in sys.modules if m.startswith('facet.train')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_spec_reads_the_model_section_and_ignores_training_keys():
    cfg = {"model": {"preset": "facet-m", "overrides": {"channels": 8}, "dtype": "float64",
                     "seed": 3, "init_from": "default", "atomic_energies": "fit"},
           "optim": {"lr": 1.0}}
    assert spec_from_config(cfg) == ModelSpec("facet-m", {"channels": 8}, "float64", 3)
    assert spec_from_config({}) == ModelSpec()


@pytest.mark.parametrize(("key", "value", "msg"), [
    ("dtype", "float16", r"run/config.yaml: 'model.dtype': must be one of float32, float64"),
    ("seed", "1", r"run/config.yaml: 'model.seed' must be a int"),
    ("overrides", [1], r"'model.overrides' must be a dict"),
])  # fmt: skip
def test_a_bad_model_section_names_the_file_and_key(key, value, msg):
    with pytest.raises(ValueError, match=msg):
        spec_from_config({"model": {key: value}}, "run/config.yaml")


def test_training_config_extends_the_model_spec():
    """One owner of the model's dtype and seed defaults: the training section inherits them."""
    from facet.train.config import ModelSection

    assert issubclass(ModelSection, ModelSpec)
    assert (ModelSection().dtype, ModelSection().seed) == (ModelSpec().dtype, ModelSpec().seed)


def test_a_checkpoint_loads_the_same_through_both_doors(tiny_ckpt):
    """``read_trained`` (inference) and ``facet.train.model_io.load_model`` (training, adding the
    parsed TrainConfig) give the same weights; the calculator's ``load_model`` too."""
    from flax import nnx

    from facet.train.model_io import load_model as load_run

    m1, raw, ckpt = read_trained(tiny_ckpt, report=lambda m: None)
    m2, cfg, ckpt2 = load_run(tiny_ckpt, report=lambda m: None)
    m3 = load_model(str(tiny_ckpt))
    assert ckpt == ckpt2 and raw == yaml.safe_load((ckpt / "config.yaml").read_text())
    assert cfg.model.overrides == raw["model"]["overrides"]
    leaves = [nnx.state(m) for m in (m1, m2, m3)]
    for a, b in zip(*(jax_leaves(s) for s in leaves[:2]), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(*(jax_leaves(s) for s in (leaves[0], leaves[2])), strict=True):
        np.testing.assert_array_equal(a, b)


def jax_leaves(state):
    import jax

    return [np.asarray(x) for x in jax.tree_util.tree_leaves(state)]


def test_split_model_parts_rebuild_the_model(tiny64):
    from flax import nnx

    graphdef, params, rest = split_model(tiny64)
    n_params = len(jax_leaves(nnx.state(tiny64, nnx.Param)))
    assert len(jax_leaves(params)) == n_params > 0
    assert len(jax_leaves(rest)) == len(jax_leaves(nnx.state(tiny64))) - n_params
    again = nnx.merge(graphdef, params, rest)
    for a, b in zip(jax_leaves(nnx.state(again)), jax_leaves(nnx.state(tiny64)), strict=True):
        np.testing.assert_array_equal(a, b)



def test_a_registered_model_built_in_float64_keeps_float64_weights():
    """``register_model``'s loader runs with 64-bit JAX types enabled for float64: a Morse
    potential asked for in float64 keeps epsilon = 0.4174 to 1e-15 (it was built under the
    32-bit default and silently truncated to float32, 3e-8 off)."""
    import jax

    from facet.dynamics import MorsePotential
    from facet.model_io import MODELS, register_model

    register_model("test-morse-f64", lambda dtype: MorsePotential(epsilon=0.4174, dtype=dtype))
    try:
        model = load_model("test-morse-f64", "float64")
    finally:
        MODELS.pop("test-morse-f64", None)
    with jax.enable_x64(True):
        eps = np.asarray(model.epsilon[...])
    assert eps.dtype == np.float64
    assert abs(float(eps) - 0.4174) < 1e-15
