"""Fine-tuning by name: ``model.init_from=default`` (and any registered name or folder) takes the
architecture from the checkpoint; a contradicting ``model.preset``/``model.overrides`` is one
clear error; ``facet evaluate --model default`` works; the worked example of docs/training.md
(fine-tune the shipped model on data/sample, evaluate before and after) runs in small."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from facet.train.config import ConfigError, ModelSection, check_data_paths, load_config
from facet.train.model_io import finetune_section, load_model

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "data" / "sample" / "sample.extxyz"
FINETUNE_YAML = ROOT / "facet" / "train" / "configs" / "finetune.yaml"
SMALL = {"channels": 8, "num_layers": 1, "mixer_hidden": 8, "cutoff": 4.0}


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory):
    """A checkpoint of a non-default architecture (facet-s with SMALL overrides)."""
    from facet import create_model
    from facet.train.checkpoint import save_checkpoint
    from facet.train.step import split_model

    model = create_model("facet-s", seed=3, **SMALL)
    _, params, rest = split_model(model)
    cfg = {"model": {"preset": "facet-s", "overrides": dict(SMALL), "dtype": "float32",
                     "seed": 3, "init_from": None}}
    root = tmp_path_factory.mktemp("ckpt") / "run"
    path = save_checkpoint(root / "checkpoints", 1, {"ema": params, "rest": rest},
                           config_yaml=yaml.safe_dump(cfg))
    return path


def test_architecture_comes_from_the_checkpoint(small_ckpt):
    arch, src = finetune_section(ModelSection(init_from=str(small_ckpt)), report=lambda m: None)
    assert src == small_ckpt
    assert arch.preset == "facet-s" and arch.overrides == SMALL
    # restating the checkpoint's own values is accepted
    same = ModelSection(init_from=str(small_ckpt), overrides={"channels": 8})
    assert finetune_section(same, report=lambda m: None)[0].overrides == SMALL


def test_shipped_model_by_name():
    shipped = yaml.safe_load((ROOT / "facet" / "models" / "default" / "config.yaml").read_text())
    arch, src = finetune_section(ModelSection(init_from="default"), report=lambda m: None)
    assert src == ROOT / "facet" / "models" / "default"
    assert arch.preset == shipped["model"]["preset"]
    assert arch.overrides == shipped["model"]["overrides"]
    cfg = load_config(FINETUNE_YAML)
    assert cfg.model.init_from == "default"
    check_data_paths(cfg, base=ROOT)  # "default" is accepted where a folder was required


@pytest.mark.parametrize("section, names", [
    (ModelSection(overrides={"channels": 16}), "model.overrides.channels=16 (the checkpoint "
                                               "has 8)"),
    (ModelSection(preset="facet-m"), "model.preset=facet-m (the checkpoint is facet-s)"),
])
def test_irreconcilable_architecture_is_one_line(small_ckpt, section, names):
    import dataclasses

    section = dataclasses.replace(section, init_from=str(small_ckpt))
    with pytest.raises(ConfigError) as err:
        finetune_section(section, report=lambda m: None)
    msg = str(err.value)
    assert "\n" not in msg and names in msg and "model.init_from" in msg


def test_unknown_name_is_named():
    cfg = load_config(FINETUNE_YAML, ["model.init_from=defualt"])
    with pytest.raises(ConfigError, match="'defualt'"):
        check_data_paths(cfg, base=ROOT)


def test_load_model_by_registered_name():
    model, cfg, ckpt = load_model("default", report=lambda m: None)
    assert ckpt == ROOT / "facet" / "models" / "default"
    assert model.cutoff == pytest.approx(5.0)


def _facet(*args, cwd):
    return subprocess.run([sys.executable, "-m", "facet", *args], cwd=cwd, capture_output=True,
                          text=True, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                          "HOME": str(cwd)})


@pytest.mark.slow
def test_worked_example_in_small(tmp_path):
    """docs/training.md's fine-tuning example on 40 sample frames for 3 steps: before/after
    evaluation through the CLI, the fine-tuned run better than the shipped model on its own
    training frames, the shipped model's architecture recorded in the run's config."""
    from ase.io import read, write

    frames = read(SAMPLE, ":")
    pick = np.random.default_rng(0).permutation(len(frames))[:40]
    small = tmp_path / "small.extxyz"
    write(small, [frames[i] for i in pick], format="extxyz")
    before = _facet("evaluate", "--model", "default", "--data", str(small), "--out", "before",
                    cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    assert not (ROOT / "facet" / "models" / "default" / "eval").exists()
    run = _facet("train", "--config", str(FINETUNE_YAML), f"data.train=[{small}]",
                 "run.max_steps=3", "run.progress=false", "optim.warmup_steps=1",
                 "run.out_dir=runs/finetune", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "fine-tuning from" in run.stdout
    after = _facet("evaluate", "--model", "runs/finetune", "--data", str(small), cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    m0 = json.loads((tmp_path / "before" / "metrics.json").read_text())["metrics"]
    m1 = json.loads((tmp_path / "runs/finetune/eval/metrics.json").read_text())["metrics"]
    assert m1["energy_mae"] < 0.5 * m0["energy_mae"]  # the E0 corrections alone do this
    saved = yaml.safe_load((tmp_path / "runs/finetune/config.yaml").read_text())["model"]
    shipped = yaml.safe_load((ROOT / "facet/models/default/config.yaml").read_text())["model"]
    assert saved["preset"] == shipped["preset"] and saved["overrides"] == shipped["overrides"]
