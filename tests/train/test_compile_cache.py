"""`facet train` turns on the persistent compilation cache (facet.compile_cache) before it
compiles anything, unless ``run.compile_cache: false``."""

from __future__ import annotations

import pytest
from toy_training import toy_config

from facet.train import loop
from facet.train.config import ConfigError, load_config


class _Stop(Exception):
    pass


@pytest.mark.parametrize("setting", [True, False])
def test_train_passes_the_setting_before_compiling(monkeypatch, tmp_path, run_kwargs, setting):
    seen = []

    def record(value):
        seen.append(value)
        raise _Stop

    monkeypatch.setattr(loop, "enable_compile_cache", record)
    monkeypatch.setattr(loop.jax, "jit", lambda *a, **k: pytest.fail("compiled before"))
    cfg = toy_config(tmp_path / "run", run={"compile_cache": setting})
    with pytest.raises(_Stop):
        loop.train(cfg, **run_kwargs)
    assert seen == [setting]


def test_config_key_is_type_checked(tmp_path):
    assert load_config(None, ["run.compile_cache=false"]).run.compile_cache is False
    assert load_config(None, []).run.compile_cache is True
    with pytest.raises(ConfigError, match="run.compile_cache"):
        load_config(None, ["run.compile_cache=maybe"])
