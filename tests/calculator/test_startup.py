"""Start-up cost: loading a trained model compiles nothing (no random initialisation that is then
overwritten), and compiled programs go to a persistent cache that a second process loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from facet.calculator import load_model
from facet.compile_cache import ENV_VAR, default_cache_dir, enable_compile_cache

_COMPILE = "/jax/core/compile/backend_compile_duration"


def _count_compiles(fn):
    events = []

    def listener(event, duration, **kw):
        if event == _COMPILE:
            events.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        out = fn()
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return out, len(events)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loading_the_default_model_compiles_nothing(dtype):
    model, n = _count_compiles(lambda: load_model("default", dtype))
    # At most the grid-projection matrices of facet.nn.grid (one small program, cached per
    # process); drawing the random weights that the checkpoint overwrites compiled 34.
    assert n <= 1
    assert np.dtype(model.dtype) == np.dtype(dtype)
    # Every weight holds the checkpoint's value, none is an abstract placeholder.
    from flax import nnx

    leaves = jax.tree_util.tree_leaves(nnx.state(model))
    assert leaves and all(isinstance(x, np.ndarray | jax.Array) for x in leaves)


def test_off_switches_leave_jax_alone(monkeypatch):
    def update(*a, **k):
        raise AssertionError("JAX's configuration was changed")

    monkeypatch.setattr(jax.config, "update", update)
    assert enable_compile_cache(False) is None
    before = jax.config.jax_compilation_cache_dir
    if not before:
        for off in ("0", "off", "False", "no"):
            monkeypatch.setenv(ENV_VAR, off)
            assert enable_compile_cache() is None
    assert jax.config.jax_compilation_cache_dir == before


def test_default_folder_is_the_user_cache(monkeypatch, tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("XDG_CACHE_HOME is a Linux convention")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "facet" / "jax"


_WORKER = textwrap.dedent(
    """
    import json, os, sys
    import jax
    hits = []
    jax.monitoring.register_event_listener(
        lambda e, **k: hits.append(e) if e == "/jax/compilation_cache/cache_hits" else None)
    from ase.build import bulk
    from facet import FacetCalculator
    from facet.dynamics import MorsePotential
    kw = json.loads(sys.argv[1])
    morse = MorsePotential(epsilon=0.4, r0=2.6, rho0=4.0, rcut1=1.3, rcut2=1.7)
    calc = FacetCalculator(model=morse, **kw)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=0)
    atoms.calc = calc
    f = atoms.get_forces()
    print(json.dumps({"hits": len(hits), "dir": jax.config.jax_compilation_cache_dir,
                      "fx": float(f[0, 0])}))
    """
)


def _run(env_extra: dict, kw: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    # Programs this small compile in well under JAX's 1 s threshold for storing them.
    env.update({"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PLATFORMS": "cpu"})
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, "-c", _WORKER, json.dumps(kw or {})],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _files(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_second_process_loads_compiled_programs(tmp_path):
    cache = tmp_path / "cache"
    first = _run({ENV_VAR: str(cache)})
    assert first["dir"] == str(cache) and first["hits"] == 0
    assert _files(cache), "nothing was written to the cache"
    second = _run({ENV_VAR: str(cache)})
    assert second["hits"] >= 1
    assert second["fx"] == first["fx"]


def test_switched_off_or_user_cache_respected(tmp_path):
    off = _run({ENV_VAR: "0"})
    assert off["dir"] is None and off["hits"] == 0
    mine = tmp_path / "mine"
    kw_off = _run({ENV_VAR: str(tmp_path / "facet")}, {"compile_cache": False})
    assert kw_off["dir"] is None and not _files(tmp_path / "facet")
    user = _run({ENV_VAR: str(tmp_path / "facet"), "JAX_COMPILATION_CACHE_DIR": str(mine)})
    assert user["dir"] == str(mine) and _files(mine) and not _files(tmp_path / "facet")
