"""The training loop with the real Facet model and ``facet.physics.predict`` on the bundled
sample: a tiny float64 facet-s in the default suite (train, gradient against finite differences,
E0s untouched, exact resume, evaluate), a larger float32 run under ``slow``. Compiling the
model's second-order gradients dominates the time: the default test compiles the training step
twice (the run and its resumption) and the loss once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SAMPLE = Path(__file__).parents[2] / "data" / "sample" / "mptrj_sample.json"


ETA = 0.05  # SGD step: the first update is exactly -ETA * gradient


def _tiny_facet_s(out_dir, **run):
    from facet.train.config import config_from_dict

    return config_from_dict({
        "model": {"preset": "facet-s", "dtype": "float64", "seed": 1,
                  "overrides": {"channels": 4, "num_layers": 1, "lmax": 1, "cutoff": 3.0,
                                "mixer_hidden": 4, "readout_hidden": 4, "num_radial": 4}},
        "data": {"train": [str(SAMPLE)], "max_nodes": 14, "max_edges": 600, "max_graphs": 2,
                 "seed": 5},
        # Plain SGD without momentum or clipping, so that the step applied by the training loop
        # is the gradient itself, which finite differences check below.
        "optim": {"optimizer": "sgd", "b1": 0.0, "lr": ETA, "schedule": "constant",
                  "warmup_steps": 0, "clip_norm": 0.0, "ema_decay": 0.5},
        "run": {"out_dir": str(out_dir), "epochs": 1, "max_steps": 3, "log_every": 1,
                "checkpoint_every": 1, "keep_checkpoints": 10, "progress": False, **run},
    })


def _flat(state):
    import jax

    return {jax.tree_util.keystr(k): np.asarray(v) for k, v in
            jax.tree_util.tree_flatten_with_path(state)[0]}


def test_tiny_facet_s_trains_resumes_evaluates_float64(tmp_path):
    import shutil

    import jax

    from facet.train import checkpoint as ck
    from facet.train.batching import Budget, EpochBatcher
    from facet.train.data import read_graphs
    from facet.train.e0 import fit_atomic_energies, fit_scale_shift
    from facet.train.evaluate import evaluate
    from facet.train.loop import train
    from facet.train.loss import finalize_metrics
    from facet.train.model_io import create_model_from_section
    from facet.train.step import make_loss_fn, split_model

    graphs = read_graphs([str(SAMPLE)], 3.0, "uncorrected_total_energy")
    small = [g for g in graphs if g.n_node <= 6 and g.stress is not None]
    order = np.random.default_rng(0).permutation(len(small))
    train_g = [small[i] for i in order[:6]]
    seen = set(np.concatenate([g.numbers for g in train_g]).tolist())
    # Held-out structures of elements the model was trained on (it refuses others).
    val_g = [small[i] for i in order[6:] if set(small[i].numbers.tolist()) <= seen][:2]
    assert len(val_g) == 2
    cfg = _tiny_facet_s(tmp_path / "a")
    with jax.enable_x64(True):
        full = train(cfg, data=(train_g, []), report=lambda m: None)
        assert full["step"] == 3 and full["train_step"]._cache_size() == 1
        root = tmp_path / "a" / "checkpoints"

        # The initial model, as the loop builds it: E0s by least squares, scale and shift from
        # the force RMS and the mean residual energy.
        model = create_model_from_section(cfg.model)
        e0 = fit_atomic_energies(train_g)
        model.set_atomic_energies(e0)
        model.set_scale_shift(*fit_scale_shift(train_g, e0))
        graphdef, p0, rest0 = split_model(model)
        assert "atomic_energies" not in _flat(p0) and len(_flat(rest0)) == 1
        # E0s are not optimised: the trained state's are the fitted ones, bit for bit.
        np.testing.assert_array_equal(
            np.asarray(full["rest"]["atomic_energies"].get_value()), e0)
        # Nor are the per-element scale and shift (optim.train_scale_shift is off by default):
        # three steps later they are the fitted ones, bit for bit, in weights and EMA alike.
        for tree in ("params", "ema"):
            trained = ck.read_arrays(ck.step_dir(root, 3), tree)
            for name in ("['scale'].value", "['shift'].value"):
                np.testing.assert_array_equal(trained[name], _flat(p0)[name], err_msg=tree)

        # The first step of the loop moved the parameters by -ETA * grad L(p0) on its first
        # batch; check that gradient against central differences of the loss in float64.
        p1 = ck.read_arrays(ck.step_dir(root, 1), "params")
        flat0 = _flat(p0)
        assert set(p1) == set(flat0)
        grad = {k: (flat0[k] - p1[k]) / ETA for k in flat0}
        batcher = EpochBatcher(train_g, Budget(14, 600, 2), seed=5, dtype=np.float64)
        batch = jax.tree.map(jax.numpy.asarray, batcher.local_batch(0, 0))
        loss_fn, _ = make_loss_fn(graphdef, cfg.loss)
        loss_j = jax.jit(loss_fn)
        leaves, treedef = jax.tree_util.tree_flatten_with_path(p0)
        checked = 0
        for name in ("embedding", "readout_w1"):
            (i, key), = [(i, k) for i, (k, _) in enumerate(leaves)
                         if name in jax.tree_util.keystr(k)]
            g = grad[jax.tree_util.keystr(key)]
            idx = np.unravel_index(np.argmax(np.abs(g)), g.shape)
            assert abs(g[idx]) > 1e-6, name  # a parameter the loss depends on

            def loss_at(delta, i=i, idx=idx):
                vals = [np.array(v) for _, v in leaves]
                vals[i][idx] += delta
                p = jax.tree_util.tree_unflatten(treedef, [jax.numpy.asarray(v) for v in vals])
                return float(loss_j(p, rest0, batch)[0])

            h = 1e-5
            fd = (loss_at(h) - loss_at(-h)) / (2 * h)
            assert g[idx] == pytest.approx(fd, rel=1e-5, abs=1e-9), (name, g[idx], fd)
            checked += 1
        assert checked == 2

        # Resume: the run killed after step 1 continues to the same numbers (float64: exact).
        shutil.copytree(tmp_path / "a", tmp_path / "b")
        for step in (2, 3):
            shutil.rmtree(ck.step_dir(tmp_path / "b" / "checkpoints", step))
        resumed = train(_tiny_facet_s(tmp_path / "b"), data=(train_g, []), resume=True,
                        report=lambda m: None)
        assert resumed["step"] == 3
        for tree in ("params", "ema", "opt_state", "rest"):
            a = ck.read_arrays(ck.step_dir(root, 3), tree)
            b = ck.read_arrays(ck.step_dir(tmp_path / "b" / "checkpoints", 3), tree)
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=0, err_msg=(tree, k))

        # Evaluate the run (its EMA weights, read back from disk) on held-out structures: the
        # same errors as the loss function's error sums on the in-memory EMA.
        res = evaluate(tmp_path / "a", ["<val>"], tmp_path / "eval", graphs=val_g,
                       group_of=lambda material: "all", report=lambda m: None)
        vbatch = EpochBatcher(val_g, Budget(14, 600, 2), shuffle=False, dtype=np.float64)
        sums = {}
        for k in range(vbatch.steps_in_epoch(0)):
            _, errs = loss_j(full["state"].ema, full["rest"],
                             jax.tree.map(jax.numpy.asarray, vbatch.local_batch(0, k)))
            for name, v in errs.items():
                sums[name] = sums.get(name, 0.0) + np.asarray(v)
        want = finalize_metrics(sums)
        for k in ("energy_mae", "forces_mae", "stress_mae"):
            assert res["metrics"][k] == pytest.approx(want[k], rel=1e-9), k
        assert res["n_structures"] == 2 and (tmp_path / "eval" / "metrics.json").exists()
        # One group holding every structure: its errors are the overall ones.
        group = res["per_group"]["all"]
        assert group["structures"] == 2
        for k in ("energy_mae", "forces_mae", "stress_mae"):
            assert group[k] == pytest.approx(want[k], rel=1e-9), k


@pytest.mark.slow
def test_real_model_trains_resumes_and_evaluates(tmp_path):
    from facet.train import checkpoint as ck
    from facet.train.config import config_from_dict
    from facet.train.data import read_graphs
    from facet.train.evaluate import evaluate
    from facet.train.loop import train

    graphs = read_graphs([str(SAMPLE)], 3.5, "uncorrected_total_energy")
    pick = np.random.default_rng(0).permutation(len(graphs))[:48]  # frames of many materials
    graphs = [graphs[i] for i in pick]
    d = {
        "model": {"preset": "facet-s", "overrides": {"channels": 8, "num_layers": 1,
                                                     "cutoff": 3.5, "mixer_hidden": 8}},
        "data": {"train": [str(SAMPLE)], "max_nodes": 65, "max_edges": 2400, "max_graphs": 5},
        "optim": {"lr": 0.01, "warmup_steps": 2},
        "run": {"out_dir": str(tmp_path / "a"), "epochs": 3, "log_every": 4,
                "checkpoint_every": 5, "progress": False},
    }
    data = (graphs[:40], graphs[40:])
    cfg = config_from_dict(d)
    full = train(cfg, data=data, report=lambda m: None)
    assert full["train_step"]._cache_size() == 1
    hist = full["history"]
    assert np.isfinite(hist[-1]["loss"])
    rows = [r.split(",") for r in (tmp_path / "a" / "log.csv").read_text().splitlines()[1:]]
    train_loss = [float(r[4]) for r in rows if r[2] == "train"]
    assert train_loss[-1] < train_loss[0]

    d["run"]["out_dir"] = str(tmp_path / "b")
    cfg_b = config_from_dict(d)
    train(cfg_b, data=data, report=lambda m: None, stop_at_step=7)
    resumed = train(cfg_b, data=data, report=lambda m: None, resume=True)
    a = ck.read_arrays(ck.latest_checkpoint(tmp_path / "a" / "checkpoints"), "params")
    b = ck.read_arrays(ck.latest_checkpoint(tmp_path / "b" / "checkpoints"), "params")
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert resumed["step"] == full["step"]

    res = evaluate(tmp_path / "a", ["<val>"], tmp_path / "eval", graphs=data[1],
                   report=lambda m: None)
    assert res["metrics"]["energy_mae"] == pytest.approx(hist[-1]["energy_mae"], rel=1e-3)
