"""Data parallelism over all devices of all hosts with ``jax.sharding``.

One mesh axis ``"data"`` spans every device of the job (``jax.devices()``, all hosts). A global
batch is a stack of one padded batch per device, sharded along its leading axis; the parameters,
optimiser state and E0s are replicated. Each host builds only the slots of its own devices
(:func:`host_slots`) and assembles the global array with
``jax.make_array_from_process_local_data``; the plan of which structures go to which slot is the
same on every host (:mod:`facet.train.batching`), so data sharding is deterministic.

Several hosts: :func:`maybe_initialize_distributed` calls ``jax.distributed.initialize()``, which
reads the coordinator, process count and id from SLURM, Open MPI or the ``JAX_COORDINATOR_*``
environment variables. It must run before anything touches a JAX device.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "AXIS",
    "detect_multihost",
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


def maybe_initialize_distributed(mode: bool | str = "auto") -> bool:
    """Initialise JAX's distributed runtime when ``mode`` is True, or ``"auto"`` and
    :func:`detect_multihost` is. Returns whether it was initialised."""
    if mode is False or (mode == "auto" and not detect_multihost()):
        return False
    jax.distributed.initialize()
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
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x),
                        local_batch)


def replicate(tree, mesh: Mesh):
    """Replicate a pytree (identical on every host) over the mesh."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def to_host(tree):
    """NumPy copy of a pytree of replicated (or local) arrays, valid on every host."""
    def get(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(x.addressable_data(0))
        return np.asarray(x)

    return jax.tree.map(get, tree)
