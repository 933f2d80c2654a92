"""Multi-host data parallelism for real: two processes on this machine joined by
``jax.distributed`` (coordinator on localhost, one CPU device each, gloo collectives). A
data-parallel gradient and training step equal a single-device step on the union batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from facet.train.parallel import distributed_kwargs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two fresh JAX processes that compile and rendezvous: ~1 min on 2 cores
def test_two_processes_step_equals_union_batch():
    script = Path(__file__).with_name("mh_worker.py")
    port = _free_port()
    procs = []
    for pid in range(2):
        env = {
            **os.environ,
            "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
            "JAX_NUM_PROCESSES": "2",
            "JAX_PROCESS_ID": str(pid),
            "JAX_PLATFORMS": "cpu",
            "JAX_ENABLE_X64": "1",
        }
        env.pop("XLA_FLAGS", None)  # one device per process
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script)],
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    results = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        assert p.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r["process"] for r in results) == [0, 1]
    for r in results:
        assert r["processes"] == 2 and r["devices"] == 2 and r["local_devices"] == 1
        assert r["slots"] == [r["process"]]  # each host fills only its own slot ...
        assert r["local_structures"] == r["n_struct"][r["process"]] > 0  # ... with its data
        assert r["loss"][0] == pytest.approx(r["loss"][1], rel=1e-12)
        assert r["grad_max"] > 1e-3
        assert r["grad_diff"] < 1e-12 * r["grad_max"]
        assert r["errsum_diff"] < 1e-9
        assert r["state_diff"] < 1e-12 and r["ema_diff"] < 1e-12


@pytest.mark.parametrize(
    "env, expect",
    [
        ({}, {}),
        ({"JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}, {"num_processes": 4, "process_id": 3}),
    ],
)
def test_distributed_kwargs(env, expect):
    assert distributed_kwargs(env) == expect


@pytest.mark.parametrize(
    "env, key",
    [
        ({"JAX_NUM_PROCESSES": "2"}, "JAX_PROCESS_ID"),
        ({"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"}, "JAX_PROCESS_ID=2"),
        ({"JAX_NUM_PROCESSES": "two", "JAX_PROCESS_ID": "0"}, "JAX_NUM_PROCESSES='two'"),
    ],
)
def test_distributed_kwargs_errors(env, key):
    with pytest.raises(ValueError, match=key):
        distributed_kwargs(env)
