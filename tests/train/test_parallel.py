"""Data parallelism: with two host devices a sharded step equals one device on the union batch;
multi-host detection from the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from facet.train.parallel import detect_multihost


def test_two_device_step_equals_union_batch():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_ENABLE_X64": "1",
        "JAX_PLATFORMS": "cpu",
    }
    script = Path(__file__).with_name("dp_check.py")
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["devices"] == 2 and r["batch_devices"] == 2 and r["param_sharding_replicated"]
    assert r["loss"][0] == pytest.approx(r["loss"][1], rel=1e-12)
    assert r["grad_max"] > 1e-6  # a non-trivial gradient ...
    assert r["grad_diff"] < 1e-12 * max(1.0, r["grad_max"])  # ... identical in float64
    assert r["errsum_diff"] < 1e-9
    assert r["state_diff"] < 1e-12 and r["ema_diff"] < 1e-12


@pytest.mark.parametrize(
    "env, expect",
    [
        ({}, False),
        ({"SLURM_NTASKS": "1"}, False),
        ({"SLURM_NTASKS": "4"}, True),
        ({"OMPI_COMM_WORLD_SIZE": "2"}, True),
        ({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"}, True),
    ],
)
def test_detect_multihost(env, expect):
    assert detect_multihost(env) is expect
