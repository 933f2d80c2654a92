"""Training at the edges (issue 17): every numeric config field is range-checked and nothing
non-finite is ever written to a checkpoint (item 2); resuming on data whose content changed is
refused unless asked for (item 3); a checkpoint records the elements it supports (item 1)."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from toy_training import make_teacher, toy_config, toy_factory
from toymodel import labelled_graphs, toy_predict

from facet.train import checkpoint as ck
from facet.train.config import ConfigError
from facet.train.loop import TrainingDiverged, train


@pytest.fixture(scope="module")
def toy_data():
    graphs = labelled_graphs(24, make_teacher(), seed=7)
    return graphs[:20], graphs[20:]


@pytest.mark.parametrize(
    "section, key, value",
    [("optim", "final_lr_factor", float("nan")), ("optim", "final_lr_factor", -0.5),
     ("optim", "b1", 5.0), ("optim", "b2", 1.0), ("optim", "clip_norm", float("nan")),
     ("optim", "eps", 0.0), ("optim", "weight_decay", -1e-3), ("optim", "lr", float("inf")),
     ("optim", "ema_decay", float("nan")), ("loss", "energy_weight", float("nan")),
     ("loss", "huber_delta", float("inf")), ("data", "cutoff", float("nan")),
     ("data", "val_fraction", float("nan")), ("data", "energy_label", "total_energy")],
)
def test_every_numeric_config_field_is_range_checked(tmp_path, section, key, value):
    with pytest.raises(ConfigError, match=rf"'{section}\.{key}'"):
        toy_config(tmp_path, **{section: {key: value}})


def test_model_overrides_are_checked_by_name_and_type(tmp_path):
    with pytest.raises(ConfigError, match=r"'model.overrides.num_layerz'"):
        toy_config(tmp_path, model={"overrides": {"num_layerz": 2}})
    with pytest.raises(ConfigError, match=r"'model.overrides.num_layers'.*two"):
        toy_config(tmp_path, model={"overrides": {"num_layers": "two"}})
    assert toy_config(tmp_path, model={"overrides": {"num_layers": 1}}).model.overrides == {
        "num_layers": 1}


def test_no_checkpoint_with_non_finite_arrays_is_written(tmp_path):
    with pytest.raises(ck.CheckpointError, match=r"NaN or inf \(first: ema/\['w'\]"):
        ck.save_checkpoint(tmp_path, 3, {"ema": {"w": np.array([1.0, np.nan])}},
                           config_yaml="{}")
    assert not ck.list_checkpoints(tmp_path) and not list(tmp_path.iterdir())


def test_training_that_ends_with_nan_weights_writes_none(tmp_path, toy_data, monkeypatch):
    """A schedule that returns NaN at the last step (what optim.final_lr_factor=.nan did):
    the loss and gradients stay finite, the weights do not; no checkpoint holds them."""
    import facet.train.loop as loop

    real = loop.make_optimizer

    def nan_at_end(optim, total):
        import optax

        sched = loop.make_schedule(optim, total)
        return optax.chain(optax.scale_by_adam(),
                           optax.scale_by_schedule(lambda s: jnp.where(s >= total - 1, jnp.nan,
                                                                       -sched(s))))

    monkeypatch.setattr(loop, "make_optimizer", nan_at_end)
    cfg = toy_config(tmp_path, run={"epochs": 1, "checkpoint_every": 1, "keep_checkpoints": 100})
    with pytest.raises(TrainingDiverged, match=r"non-finite weights .* no checkpoint written"):
        train(cfg, model_factory=toy_factory, predict_fn=toy_predict, data=toy_data,
              report=lambda m: None)
    monkeypatch.setattr(loop, "make_optimizer", real)
    saved = ck.list_checkpoints(tmp_path / "checkpoints")
    assert saved  # the steps before the last were written ...
    for path in saved:  # ... and every array in every one of them is finite
        for tree in ("params", "ema", "opt_state", "rest"):
            assert all(np.all(np.isfinite(a)) for a in ck.read_arrays(path, tree).values()
                       if np.issubdtype(a.dtype, np.inexact))


def _relabelled(graphs, shift_per_atom):
    return [dataclasses.replace(g, energy=g.energy + shift_per_atom * g.n_node)
            if dataclasses.is_dataclass(g) else
            g.__class__(**{**g.__dict__, "energy": g.energy + shift_per_atom * g.n_node})
            for g in graphs]


def test_resume_with_relabelled_data_is_refused(tmp_path, toy_data):
    cfg = toy_config(tmp_path / "run", run={"epochs": 2, "checkpoint_every": 2})
    kw = dict(model_factory=toy_factory, predict_fn=toy_predict, report=lambda m: None)
    train(cfg, data=toy_data, stop_at_step=4, **kw)
    changed = (_relabelled(toy_data[0], 100.0), toy_data[1])
    with pytest.raises(ConfigError, match=r"content differs .*--allow-data-change"):
        train(cfg, resume=True, data=changed, **kw)
    ok = train(cfg, resume=True, data=changed, allow_data_change=True, **kw)
    assert ok["step"] == ok["total_steps"]
    # the same data resume without a word
    cfg2 = toy_config(tmp_path / "run2", run={"epochs": 2, "checkpoint_every": 2})
    train(cfg2, data=toy_data, stop_at_step=4, **kw)
    assert train(cfg2, resume=True, data=toy_data, **kw)["step"] > 4


def test_resume_on_extended_data_needs_the_flag_and_goes_on(tmp_path, toy_data):
    """Data with structures added (a data set extended between working periods): refused
    without --allow-data-change, naming the flag; with it the run keeps its step, optimiser
    state and EMA, says that the data order is the new data's, and trains to the end."""
    cfg = toy_config(tmp_path / "run", run={"epochs": 3, "checkpoint_every": 2})
    kw = dict(model_factory=toy_factory, predict_fn=toy_predict)
    train(cfg, data=toy_data, stop_at_step=4, report=lambda m: None, **kw)
    extended = (list(toy_data[0]) + _relabelled(toy_data[0][:3], 0.0), toy_data[1])
    with pytest.raises(ConfigError, match=r"structure sizes changed.*--allow-data-change"):
        train(cfg, resume=True, data=extended, report=lambda m: None, **kw)
    said = []
    ok = train(cfg, resume=True, data=extended, allow_data_change=True, report=said.append,
               **kw)
    assert any("resumed from" in m and "at step 4" in m for m in said)
    assert any("other structures" in m and "data order" in m for m in said), said
    assert ok["step"] == ok["total_steps"] > 4


def test_old_checkpoint_without_fingerprint_warns_and_resumes(tmp_path, toy_data):
    cfg = toy_config(tmp_path / "run", run={"epochs": 2, "checkpoint_every": 2})
    kw = dict(model_factory=toy_factory, predict_fn=toy_predict)
    train(cfg, data=toy_data, stop_at_step=4, report=lambda m: None, **kw)
    # make the newest checkpoint as an older facet wrote it: no data_content in its state
    import hashlib

    last = ck.latest_checkpoint(tmp_path / "run" / "checkpoints")
    meta = json.loads((last / "meta.json").read_text())
    del meta["state"]["data_content"]
    (last / "meta.json").write_text(json.dumps(meta, indent=1))
    (last / "COMPLETE").write_text(hashlib.sha256((last / "meta.json").read_bytes()).hexdigest())
    ck.verify_checkpoint(last)
    said = []
    out = train(cfg, resume=True, data=toy_data, report=said.append, **kw)
    assert out["step"] == out["total_steps"]
    assert any("records no fingerprint" in m for m in said)


def test_checkpoint_records_supported_elements(tmp_path, toy_data):
    cfg = toy_config(tmp_path / "run", run={"epochs": 1})
    train(cfg, data=toy_data, model_factory=toy_factory, predict_fn=toy_predict,
          report=lambda m: None)
    last = ck.latest_checkpoint(tmp_path / "run" / "checkpoints")
    meta = json.loads((last / "meta.json").read_text())
    present = sorted({int(z) for g in toy_data[0] for z in np.asarray(g.numbers)})
    from ase.data import chemical_symbols

    assert meta["supported_elements"] == [chemical_symbols[z] for z in present]
    assert present == [3, 8, 14]
    from facet.elements import supported_elements_of_checkpoint

    assert supported_elements_of_checkpoint(last) == (3, 8, 14)
    assert jax.tree.leaves(meta)  # meta.json stays plain JSON


def _with_element(graphs, old_z, new_z, offset):
    """The graphs with every atom ``old_z`` made ``new_z`` and ``offset`` eV added per atom so
    changed (the new element's reference energy is the old one's plus ``offset``)."""
    out = []
    for g in graphs:
        z = np.asarray(g.numbers)
        n = int((z == old_z).sum())
        out.append(g.__class__(**{**g.__dict__, "numbers": np.where(z == old_z, new_z, z),
                                  "energy": g.energy + offset * n}))
    return out


def _e0_of(run_dir):
    last = ck.latest_checkpoint(run_dir / "checkpoints")
    return np.load(last / "arrays.npz")["rest/['atomic_energies'].value"]


def test_resume_says_the_e0s_come_from_the_checkpoint(tmp_path, toy_data):
    """A resumed run takes E0s, scale and shift from its checkpoint: it neither fits them again
    nor says that it did."""
    cfg = toy_config(tmp_path / "run", run={"epochs": 2, "checkpoint_every": 2})
    kw = dict(model_factory=toy_factory, predict_fn=toy_predict)
    said = []
    train(cfg, data=toy_data, stop_at_step=4, report=said.append, **kw)
    assert any(m.startswith("E0s fitted") for m in said)
    said.clear()
    train(cfg, resume=True, data=toy_data, report=said.append, **kw)
    assert not any("E0s fitted" in m for m in said), said
    assert any("E0s, scale and shift from the checkpoint" in m for m in said), said


def test_resume_on_data_with_a_new_element_fits_its_e0(tmp_path, toy_data):
    """Extended data that bring an element the checkpoint never saw: its E0 would stay 0 (46 eV
    off per atom for a real element). The resume fits the new element's E0 to the energies with
    the carried E0s held fixed, says so naming the element, and the checkpoint declares it."""
    cfg = toy_config(tmp_path / "run", run={"epochs": 3, "checkpoint_every": 2})
    kw = dict(model_factory=toy_factory, predict_fn=toy_predict)
    train(cfg, data=toy_data, stop_at_step=4, report=lambda m: None, **kw)
    e0_li = float(_e0_of(tmp_path / "run")[3])
    train_g = list(toy_data[0])
    extended = (train_g + _with_element(train_g[:6], 3, 11, -40.0), toy_data[1])
    said = []
    train(cfg, resume=True, data=extended, allow_data_change=True, report=said.append, **kw)
    assert any("new element" in m and "Na" in m for m in said), said
    e0 = _e0_of(tmp_path / "run")
    assert abs(e0[11] - (e0_li - 40.0)) < 2.0, (e0[11], e0_li)
    assert e0[3] == pytest.approx(e0_li)  # carried E0s stay
    meta = json.loads((ck.latest_checkpoint(tmp_path / "run" / "checkpoints")
                       / "meta.json").read_text())
    assert "Na" in meta["supported_elements"]
