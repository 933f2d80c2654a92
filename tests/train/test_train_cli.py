"""The ``facet train`` / ``facet evaluate`` command lines: bad input fails fast, naming the key."""

from __future__ import annotations

from facet.cli import main


def test_train_bad_config_exit_code_names_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("optim:\n  lr: 1e-3\n  warmup: 5\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert "'optim.warmup'" in capsys.readouterr().err
    cfg.write_text(f"data:\n  train: [{tmp_path}/missing.json]\n")
    assert main(["train", "--config", str(cfg), "run.epochs=2"]) == 2
    assert "'data.train[0]'" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg), "run.epochs=two"]) == 2
    assert "'run.epochs'" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "config.yaml does not exist" in capsys.readouterr().err
    assert main(["train"]) == 2


def test_evaluate_missing_model(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path), "--data", "x.json"]) == 2
    assert "no complete checkpoint" in capsys.readouterr().err
