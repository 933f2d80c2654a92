"""Promises of docs/training.md that a user relies on: a non-finite step leaves the state
untouched, fine-tuning keeps scale and shift and refuses a mismatched architecture, and the run
warns about validation elements absent from the training data (toy pair model: fast)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from toy_training import toy_config, toy_factory
from toymodel import PairModel, toy_predict

from facet.train.batching import Budget, EpochBatcher
from facet.train.config import ConfigError, LossSection, ModelSection, OptimSection
from facet.train.loop import train
from facet.train.optim import make_optimizer
from facet.train.step import init_state, make_step_fns, split_model

LI = 3


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_non_finite_step_leaves_the_state_unchanged(toy_data):
    """A batch with a NaN label gives a NaN loss: the jitted step returns the state it was given
    (parameters, optimiser moments, EMA, step, RNG), and flags ok = False."""
    train_g, _ = toy_data
    model = PairModel(seed=0)
    graphdef, params, rest = split_model(model)
    tx = make_optimizer(OptimSection(lr=0.05, warmup_steps=0), 10)
    step, _ = make_step_fns(graphdef, tx, LossSection(), ema_decay=0.9, predict_fn=toy_predict)
    step = jax.jit(step)
    budget = Budget(32, 1024, 6)
    good = EpochBatcher(train_g[:6], budget, shuffle=False).local_batch(0, 0)
    energy = np.array(good.energy)
    energy[0, 0] = np.inf  # one poisoned label: the loss becomes inf
    bad = good._replace(energy=energy)
    as_j = lambda b: jax.tree.map(jnp.asarray, b)

    s1, m1 = step(init_state(params, tx), rest, as_j(good))  # a real state with moments
    assert bool(m1["ok"])
    before = _leaves(s1)
    s2, m2 = step(s1, rest, as_j(bad))
    assert not bool(m2["ok"]) and not np.isfinite(float(m2["loss"]))
    for a, b in zip(before, _leaves(s2), strict=True):
        np.testing.assert_array_equal(a, b)
    # ... and training goes on from it: the next good step moves the weights again.
    s3, m3 = step(s2, rest, as_j(good))
    assert bool(m3["ok"]) and int(s3.step) == int(s1.step) + 1
    assert not np.array_equal(np.asarray(s3.params["w"].get_value()),
                              np.asarray(s1.params["w"].get_value()))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, toy_data):
    """A short toy run whose EMA scale and shift differ from any statistics fit."""
    out = tmp_path_factory.mktemp("pre")
    cfg = toy_config(out, run={"epochs": 2}, optim={"lr": 0.05, "ema_decay": 0.0})
    s = train(cfg, model_factory=toy_factory, predict_fn=toy_predict, data=toy_data,
              report=lambda m: None)
    return s


def test_fine_tuning_keeps_scale_and_shift(pretrained, toy_data, tmp_path):
    from facet.train.e0 import fit_atomic_energies, fit_scale_shift

    train_g, val_g = toy_data
    # New data on another energy reference: a fresh run would refit shift (and scale).
    new = [g.__class__(**{**g.__dict__, "energy": g.energy + 0.7 * g.n_node,
                          "forces": 2.0 * g.forces}) for g in train_g]
    cfg = toy_config(tmp_path, model={"init_from": str(pretrained["run_dir"])},
                     run={"epochs": 1, "max_steps": 1}, optim={"lr": 1e-12, "warmup_steps": 0})
    s = train(cfg, model_factory=toy_factory, predict_fn=toy_predict, data=(new, val_g),
              report=lambda m: None)
    from facet.train import checkpoint as ck
    from facet.train.model_io import resolve_checkpoint

    ema = ck.read_arrays(resolve_checkpoint(pretrained["run_dir"]), "ema")
    for name in ("scale", "shift"):
        kept = ema[f"['{name}'].value"]
        got = np.asarray(s["state"].params[name].get_value())
        np.testing.assert_allclose(got, kept, rtol=0, atol=1e-9, err_msg=name)
    # The kept values are not what a statistics fit on the new data would have given.
    scale, shift = fit_scale_shift(new, fit_atomic_energies(new))
    used = sorted({int(z) for g in new for z in g.numbers})
    kept_scale = ema["['scale'].value"][used]
    assert np.abs(kept_scale - scale).min() > 1e-3


def test_fine_tuning_refuses_a_mismatched_architecture(pretrained, toy_data, tmp_path):
    from facet.train.checkpoint import CheckpointError
    from facet.train.model_io import finetune_section

    # Through the loop: weights of another shape are refused in one line naming the checkpoint
    # and the mismatched array (a CheckpointError, which the CLI reports as a user error).
    cfg = toy_config(tmp_path, model={"init_from": str(pretrained["run_dir"])},
                     run={"epochs": 1})
    with pytest.raises((ConfigError, CheckpointError),
                       match=r"step_\d+.*\['w'\].*\(119, 6\).*\(119, 4\)"):
        train(cfg, model_factory=lambda sec: PairModel(seed=0, n_basis=4),
              predict_fn=toy_predict, data=toy_data, report=lambda m: None)
    assert not (tmp_path / "checkpoints").exists()
    # The shipped facet checkpoint fixes the architecture: a contradicting override is named.
    with pytest.raises(ConfigError, match=r"model.overrides.channels=8 \(the checkpoint has"):
        finetune_section(ModelSection(init_from="default", overrides={"channels": 8}),
                         report=lambda m: None)
    with pytest.raises(ConfigError, match=r"model.preset=facet-m \(the checkpoint is facet-s"):
        finetune_section(ModelSection(preset="facet-m", init_from="default"),
                         report=lambda m: None)
    same, _ = finetune_section(ModelSection(init_from="default"), report=lambda m: None)
    assert same.preset == "facet-s"


def test_warns_about_validation_elements_absent_from_training(toy_data, tmp_path):
    train_g, val_g = toy_data
    no_li = [g for g in train_g if LI not in set(np.asarray(g.numbers).tolist())]
    assert any(LI in set(np.asarray(g.numbers).tolist()) for g in val_g)
    said = []
    cfg = toy_config(tmp_path / "w", run={"epochs": 1, "max_steps": 1})
    train(cfg, model_factory=toy_factory, predict_fn=toy_predict, data=(no_li, val_g),
          report=said.append)
    warn = [m for m in said if m.startswith("warning: validation")]
    assert len(warn) == 1 and "Z = [3]" in warn[0], said
    # No warning when every validation element was trained on.
    said.clear()
    train(toy_config(tmp_path / "ok", run={"epochs": 1, "max_steps": 1}),
          model_factory=toy_factory, predict_fn=toy_predict, data=(train_g, val_g),
          report=said.append)
    assert not [m for m in said if "warning" in m], said
