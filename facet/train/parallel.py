"""Data parallelism over all devices of all hosts with ``jax.sharding``.

One mesh axis ``"data"`` spans every device of the job (``jax.devices()``, all hosts). A global
batch is a stack of one padded batch per device, sharded along its leading axis; the parameters,
optimiser state and E0s are replicated. Each host builds only the slots of its own devices
(:func:`host_slots`) and assembles the global array with
``jax.make_array_from_process_local_data``; the plan of which structures go to which slot is the
same on every host (:mod:`facet.train.batching`), so data sharding is deterministic.

Several hosts: :func:`maybe_initialize_distributed` calls ``jax.distributed.initialize()``, which
reads the coordinator, process count and id from SLURM or Open MPI. Elsewhere (a hand-started
job, or several processes on one machine) set ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of
process 0), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``; JAX itself reads only the first, so
Facet passes the other two. It must run before anything touches a JAX device. Tested with two
CPU processes on one machine (``tests/train/test_multihost.py``; CPU collectives via gloo).
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "AXIS",
    "detect_multihost",
    "distributed_kwargs",
    "maybe_initialize_distributed",
    "make_mesh",
    "host_slots",
    "put_batch",
    "replicate",
    "to_host",
]

AXIS = "data"


def detect_multihost(environ=os.environ) -> bool:
    """True when the environment describes a job of several processes."""
    if environ.get("JAX_COORDINATOR_ADDRESS"):
        return True
    for key in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        try:
            if int(environ.get(key, "1")) > 1:
                return True
        except ValueError:
            continue
    return False


def _env_int(environ, key: str) -> int | None:
    raw = environ.get(key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {key}={raw!r} is not an integer") from None


def distributed_kwargs(environ=os.environ) -> dict:
    """Arguments for ``jax.distributed.initialize`` from ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID`` (empty under SLURM / Open MPI, which JAX detects itself)."""
    n, pid = _env_int(environ, "JAX_NUM_PROCESSES"), _env_int(environ, "JAX_PROCESS_ID")
    if (n is None) != (pid is None):
        raise ValueError("set both JAX_NUM_PROCESSES and JAX_PROCESS_ID, or neither")
    if n is None:
        return {}
    if not 0 <= pid < n:
        raise ValueError(f"JAX_PROCESS_ID={pid} is outside 0..JAX_NUM_PROCESSES-1={n - 1}")
    return {"num_processes": n, "process_id": pid}


def maybe_initialize_distributed(mode: bool | str = "auto", environ=os.environ) -> bool:
    """Initialise JAX's distributed runtime when ``mode`` is True, or ``"auto"`` and
    :func:`detect_multihost` is. Returns whether it was initialised."""
    if mode is False or (mode == "auto" and not detect_multihost(environ)):
        return False
    jax.distributed.initialize(**distributed_kwargs(environ))
    return True


def make_mesh(devices=None) -> Mesh:
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (AXIS,))


def host_slots(mesh: Mesh) -> list[int]:
    """Global device slots (positions along the mesh axis) that this process fills."""
    me = jax.process_index()
    return [i for i, d in enumerate(mesh.devices.flat) if d.process_index == me]


def put_batch(local_batch, mesh: Mesh):
    """This host's stacked batch ``(local_devices, ...)`` -> a global array sharded on AXIS."""
    sharding = NamedSharding(mesh, PartitionSpec(AXIS))
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch)


def replicate(tree, mesh: Mesh):
    """Replicate a pytree (identical on every host) over the mesh."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree
    )


def to_host(tree):
    """NumPy copy of a pytree of replicated (or local) arrays, valid on every host."""

    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(x.addressable_data(0))
        return np.asarray(x)

    return jax.tree.map(get, tree)
