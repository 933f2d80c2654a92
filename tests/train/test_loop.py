"""The training loop on a toy pair potential (the model contract): learning, E0s, exact resume,
no recompilation, NaN guard, best/last checkpoints, fine-tuning."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from toy_training import TEACHER_E0, toy_config, toy_factory

from facet.train import checkpoint as ck
from facet.train.loop import TrainingDiverged, train
from facet.train.model_io import load_model


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, toy_data):
    """An uninterrupted 3-epoch run, shared by several tests."""
    from toymodel import toy_predict

    out = tmp_path_factory.mktemp("full")
    # The toy pair model has few weights besides its per-element scale and shift: let those
    # train too (optim.train_scale_shift, off by default), so that three epochs visibly learn.
    cfg = toy_config(out, run={"epochs": 3, "checkpoint_every": 4, "keep_checkpoints": 10},
                     optim={"train_scale_shift": True})
    summary = train(cfg, model_factory=toy_factory, predict_fn=toy_predict, data=toy_data,
                    report=lambda m: None)
    return cfg, summary


def test_learns_and_fits_e0(full_run):
    cfg, s = full_run
    losses = [h["loss"] for h in s["history"]]
    assert len(losses) == 3 and losses[-1] < 0.9 * losses[0]
    assert s["history"][-1]["forces_mae"] < s["history"][0]["forces_mae"]
    e0 = np.asarray(jax.device_get(s["rest"]["atomic_energies"].get_value()))
    # E0s fitted by least squares on the teacher's data: close to the teacher's own E0s
    # (the pair energies per atom are small and absorbed partly into the fit).
    for z, v in TEACHER_E0.items():
        assert abs(e0[z] - v) < 0.3, (z, e0[z], v)
    assert s["step"] == s["total_steps"]
    # asked to, the optimiser moved the per-element scale away from its fitted value
    z = sorted(TEACHER_E0)[0]
    assert np.asarray(s["state"].params["scale"].get_value())[z] != pytest.approx(
        float(np.asarray(s["state"].params["scale"].get_value())[0]))


def test_no_recompilation_after_warmup(full_run):
    _, s = full_run
    assert s["train_step"]._cache_size() == 1  # one program for the whole run


def test_outputs_best_and_last(full_run):
    cfg, s = full_run
    run = s["run_dir"]
    best = json.loads((run / "best.json").read_text())
    assert best["step"] == s["best_step"]
    assert ck.verify_checkpoint(ck.step_dir(run / "checkpoints", best["step"]))
    last = ck.latest_checkpoint(run / "checkpoints")
    assert int(last.name.split("_")[1]) == s["total_steps"]
    rows = (run / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,kind") and sum(",val," in r for r in rows) == 3
    assert list((run / "tb").glob("events.out.tfevents.*"))
    assert (run / "training_curve.png").stat().st_size > 10_000  # the loss/MAE plot
    # the exported model carries the EMA weights and the fitted E0s
    model, cfg2, path = load_model(run, factory=toy_factory)
    assert cfg2 == cfg
    np.testing.assert_allclose(np.asarray(model.w[...]),
                               np.asarray(s["state"].ema["w"].get_value()), rtol=0, atol=0)


def test_resume_gives_identical_numbers(full_run, tmp_path, toy_data):
    """Stop mid-epoch (as if killed), resume from the last complete checkpoint: same params."""
    from toymodel import toy_predict

    cfg_full, full = full_run
    cfg = toy_config(tmp_path / "r", run={"epochs": 3, "checkpoint_every": 4,
                                          "keep_checkpoints": 10},
                     optim={"train_scale_shift": True})  # as full_run
    kw = dict(model_factory=toy_factory, predict_fn=toy_predict, data=toy_data,
              report=lambda m: None)
    train(cfg, stop_at_step=10, **kw)  # checkpoints at 4 and 8 (and eval at epoch end)
    # a crash during the write of a later checkpoint leaves a torn temporary directory
    (tmp_path / "r" / "checkpoints" / ".tmp-step_000000012-1").mkdir()
    with pytest.raises(Exception, match="already holds checkpoints"):
        train(cfg, **kw)
    resumed = train(cfg, resume=True, **kw)
    assert resumed["step"] == full["step"]
    for a, b in zip(jax.tree.leaves(resumed["state"]), jax.tree.leaves(full["state"]),
                    strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)
    assert resumed["best_step"] == full["best_step"]
    rows = [r.split(",")[:3] for r in (tmp_path / "r" / "log.csv").read_text().splitlines()[1:]]
    assert len(rows) == len(set(map(tuple, rows)))  # no duplicated log rows after resume


def test_resume_with_changed_loss_restarts_the_best_checkpoint(tmp_path, toy_data):
    """Validation losses of different loss weights are not comparable: resuming with a
    changed ``loss`` section must not keep calling an older step "best" (the exported model
    would silently be the pre-change one). The new definition's first validation is the best."""
    from toymodel import toy_predict

    out = tmp_path / "w"
    kw = dict(model_factory=toy_factory, predict_fn=toy_predict, data=toy_data)
    cfg = toy_config(out, run={"epochs": 2, "checkpoint_every": 4, "keep_checkpoints": 10,
                               "eval_every": 4})
    first = train(cfg, stop_at_step=8, report=lambda m: None, **kw)
    assert first["best_step"] > 0
    # ten times the energy and stress weights: every later validation loss is larger
    cfg2 = toy_config(out, run={"epochs": 2, "checkpoint_every": 4, "keep_checkpoints": 10,
                                "eval_every": 4},
                      loss={"energy_weight": 10.0, "stress_weight": 10.0})
    said = []
    resumed = train(cfg2, resume=True, report=said.append, **kw)
    assert any("loss" in m and "best" in m for m in map(str, said)), said
    assert resumed["best_step"] > first["step"]
    best = json.loads((out / "best.json").read_text())
    assert best["step"] == resumed["best_step"]
    # resuming again with the same loss keeps the best
    again = train(cfg2, resume=True, report=lambda m: None, **kw)
    assert again["best_step"] == resumed["best_step"]


def test_nan_guard_stops_and_keeps_last_good(tmp_path, toy_data):
    from toymodel import toy_predict

    train_g, val_g = toy_data
    bad = train_g[-1]
    poisoned = [*train_g[:-1], bad.__class__(**{**bad.__dict__,
                                                "forces": np.full_like(bad.forces, np.nan)})]
    cfg = toy_config(tmp_path, data={"shuffle": False}, run={"checkpoint_every": 1,
                                                             "keep_checkpoints": 100})
    with pytest.raises(TrainingDiverged, match="non-finite.*last good checkpoint is .*step_"):
        train(cfg, model_factory=toy_factory, predict_fn=toy_predict,
              data=(poisoned, val_g), report=lambda m: None)
    last = ck.latest_checkpoint(tmp_path / "checkpoints")
    arrays = ck.read_arrays(last, "params")
    assert all(np.all(np.isfinite(a)) for a in arrays.values())
    n_steps = int(last.name.split("_")[1])
    assert 0 < n_steps < 10  # stopped at the first batch holding the poisoned structure


def test_fine_tune_refits_e0(full_run, tmp_path, toy_data):
    """Fine-tuning keeps the checkpoint's E0s up to a fit of the pretrained model's residuals:
    with the same reference they barely move; a reference shifted by 1.5 eV/atom moves every
    E0 by exactly 1.5 more; an element absent from the new data keeps its E0."""
    from toymodel import toy_predict

    _, full = full_run
    train_g, val_g = toy_data
    shifted = [g.__class__(**{**g.__dict__, "energy": g.energy + 1.5 * g.n_node})
               for g in train_g]
    no_li = [g for g in train_g if 3 not in set(np.asarray(g.numbers).tolist())]
    runs, said = {}, []
    for name, data in (("same", train_g), ("shifted", shifted), ("no_li", no_li)):
        cfg = toy_config(tmp_path / name, model={"init_from": str(full["run_dir"])},
                         run={"epochs": 1}, optim={"lr": 1e-9, "warmup_steps": 0})
        s = train(cfg, model_factory=toy_factory, predict_fn=toy_predict, data=(data, val_g),
                  report=said.append)
        runs[name] = np.asarray(s["rest"]["atomic_energies"].get_value(), np.float64)
    # the prediction pass is announced with its size before it runs (17 min on 55k structures)
    first = [i for i, m in enumerate(said) if "E0 corrections" in m][0]
    assert any(f"{len(train_g)} labelled training structures" in m for m in said[:first])
    e0_old = np.asarray(full["rest"]["atomic_energies"].get_value(), np.float64)
    for z in TEACHER_E0:
        assert abs(runs["same"][z] - e0_old[z]) < 0.1
        assert runs["shifted"][z] - runs["same"][z] == pytest.approx(1.5, abs=1e-3)
    assert len(no_li) >= 5 and runs["no_li"][3] == e0_old[3]
    assert runs["no_li"][14] != e0_old[14]
    # weights start from the trained EMA (lr ~ 0 keeps them there)
    np.testing.assert_allclose(np.asarray(s["state"].params["w"].get_value()),
                               np.asarray(full["state"].ema["w"].get_value()), atol=1e-6)


def test_evaluate_matches_validation_and_per_element(full_run, toy_data, tmp_path):
    """``facet evaluate`` on the validation split reproduces the run's last validation metrics
    (same EMA weights, same definitions); per-element force errors average to the total."""
    from toymodel import toy_predict

    from facet.train.evaluate import evaluate

    _, s = full_run
    res = evaluate(s["run_dir"] / "checkpoints" / f"step_{s['total_steps']:09d}", ["<val>"],
                   tmp_path, factory=toy_factory, predict_fn=toy_predict, graphs=toy_data[1],
                   report=lambda m: None)
    last = s["history"][-1]
    for k in ("energy_mae", "energy_rmse", "forces_mae", "forces_rmse", "stress_mae"):
        assert res["metrics"][k] == pytest.approx(last[k], rel=1e-4), k
    per = res["per_element"]
    assert set(per) <= {"Si", "O", "Li"} and per
    total = sum(r["forces_mae"] * r["forces_count"] for r in per.values())
    count = sum(r["forces_count"] for r in per.values())
    assert total / count == pytest.approx(res["metrics"]["forces_mae"], rel=1e-4)
    for name in ("energy", "forces", "stress"):
        png = tmp_path / f"parity_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "metrics.json").read_text())["n_structures"] == len(toy_data[1])
