"""The training loop with the real Facet model and ``facet.physics.predict`` on the bundled
sample (slow: compiling the model's second-order gradients dominates)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SAMPLE = Path(__file__).parents[2] / "data" / "sample" / "mptrj_sample.json"


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
