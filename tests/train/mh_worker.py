"""One process of a two-process JAX job on this machine (started by ``test_multihost.py``).

The environment names the coordinator and this process (``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES=2``, ``JAX_PROCESS_ID``); :func:`facet.train.parallel.
maybe_initialize_distributed` starts JAX's distributed runtime exactly as ``facet train`` does.
Each process owns one CPU device and fills only its own batch slot; the data-parallel gradient
and training step (AdamW + EMA) are compared with a single-device step on the union of both
slots, computed locally in this process (:func:`toymodel.data_parallel_vs_union`). Prints one
JSON line.
"""

from __future__ import annotations

import json


def main() -> None:
    import jax

    from facet.train.parallel import maybe_initialize_distributed

    assert maybe_initialize_distributed("auto")
    from toymodel import data_parallel_vs_union

    res = data_parallel_vs_union()
    print(
        json.dumps(
            {
                "process": jax.process_index(),
                "processes": jax.process_count(),
                "devices": jax.device_count(),
                "local_devices": jax.local_device_count(),
                **res,
            }
        ),
        flush=True,
    )
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
