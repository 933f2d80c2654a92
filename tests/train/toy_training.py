"""The toy model's training helpers, shared by the training tests and the SIGKILL worker: the
teacher pair potential with known E0s, the model factory and a small training configuration.

Plain helpers live here rather than in ``conftest.py``: a test importing ``conftest`` by name gets
whichever ``conftest`` module pytest loaded last (tests/edges has one too), so
``pytest tests/train tests/edges`` failed at collection."""

from __future__ import annotations

from toymodel import PairModel

from facet.train.config import config_from_dict

TEACHER_E0 = {14: -5.4, 8: -4.9, 3: -1.9}


def make_teacher():
    import numpy as np

    t = PairModel(seed=123)
    e0 = np.zeros(119)
    for z, v in TEACHER_E0.items():
        e0[z] = v
    t.set_atomic_energies(e0)
    return t


def toy_factory(section):
    import jax.numpy as jnp

    return PairModel(seed=section.seed,
                     dtype=jnp.float32 if section.dtype == "float32" else jnp.float64)


def toy_config(out_dir, **sections):
    d = {
        "model": {"preset": "toy", "seed": 0},
        "data": {"max_nodes": 32, "max_edges": 1024, "max_graphs": 6, "seed": 3},
        "optim": {"lr": 0.02, "warmup_steps": 2, "ema_decay": 0.9},
        "loss": {"energy_weight": 1.0, "forces_weight": 1.0, "stress_weight": 1.0},
        "run": {"out_dir": str(out_dir), "epochs": 2, "log_every": 2, "progress": False},
    }
    for name, kv in sections.items():
        d[name] = {**d.get(name, {}), **kv}
    return config_from_dict(d)
