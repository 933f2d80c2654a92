"""Config: YAML + dotted overrides, types and keys checked before any compute."""

from __future__ import annotations

import pytest

from facet.train.config import (
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_config,
    save_config,
)


def _write(tmp_path, text):
    p = tmp_path / "run.yaml"
    p.write_text(text)
    return p


def test_yaml_and_overrides_typed(tmp_path):
    p = _write(tmp_path, "optim:\n  lr: 1e-3\n  schedule: linear\ndata:\n  train: a.json\n")
    cfg = load_config(p, ["optim.lr=2e-4", "run.epochs=7", "data.val=[b.json,c.json]",
                          "model.overrides={num_layers: 2}", "data.cutoff=null"])
    assert cfg.optim.lr == pytest.approx(2e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.optim.schedule == "linear"
    assert cfg.run.epochs == 7
    assert cfg.data.train == ["a.json"]  # a single path becomes a list
    assert cfg.data.val == ["b.json", "c.json"]
    assert cfg.model.overrides == {"num_layers": 2}
    assert cfg.data.cutoff is None


def test_roundtrip_save_load(tmp_path):
    cfg = load_config(None, ["optim.lr=3e-3", "loss.stress_kind=mae", "run.out_dir=x/y"])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "text, overrides, key",
    [
        ("optim:\n  lrr: 1.0\n", [], "optim.lrr"),
        ("", ["optim.lr=fast"], "optim.lr"),
        ("", ["run.epochs=2.5"], "run.epochs"),
        ("", ["run.progress=3"], "run.progress"),
        ("bogus: {}\n", [], "bogus"),
        ("", ["loss.forces_kind=l3"], "loss.forces_kind"),
        ("", ["optim.schedule=exp"], "optim.schedule"),
        ("", ["optim.ema_decay=1.5"], "optim.ema_decay"),
        ("", ["data.max_graphs=1"], "data.max_graphs"),
        ("", ["model.dtype=float16"], "model.dtype"),
        ("optim: 3\n", [], "optim"),
    ],
)
def test_bad_config_names_key(tmp_path, text, overrides, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(_write(tmp_path, text), overrides)


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides({}, ["optim.lr"])


def test_missing_data_fails_before_any_compute(tmp_path):
    from facet.train.loop import train

    def factory(_):  # building the model would be the first compute
        raise AssertionError("model built before the config was checked")

    cfg = load_config(None, [f"run.out_dir={tmp_path / 'r'}", f"data.train=[{tmp_path}/no.json]"])
    with pytest.raises(ConfigError, match=r"data\.train\[0\]"):
        train(cfg, model_factory=factory)
    cfg = load_config(None, [f"run.out_dir={tmp_path / 'r'}"])
    with pytest.raises(ConfigError, match="data.train"):
        train(cfg, model_factory=factory)
    assert isinstance(cfg, TrainConfig)


def test_quickstart_config_is_valid():
    from importlib.resources import files

    p = files("facet.train") / "configs" / "quickstart.yaml"
    cfg = load_config(str(p))
    assert cfg.data.train and cfg.run.epochs >= 1


def test_parse_override_reads_a_yaml_scalar():
    from facet.train.config import parse_override

    assert parse_override(" optim.lr = 0.5") == ("optim.lr", 0.5)
    assert parse_override("data.train=[a.json,b.json]") == ("data.train", ["a.json", "b.json"])
    assert parse_override("model.pseudo=False") == ("model.pseudo", False)
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_override("optim.lr")
