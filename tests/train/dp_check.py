"""Run in a subprocess with two host devices (XLA_FLAGS must be set before JAX starts):
compare a data-parallel step with a single-device step on the union of the per-device batches
(:func:`toymodel.data_parallel_vs_union`). Prints one JSON line with the maximal differences."""

from __future__ import annotations

import json


def main() -> None:
    import jax
    from toymodel import data_parallel_vs_union

    assert jax.device_count() == 2, jax.devices()
    print(json.dumps({"devices": jax.device_count(), **data_parallel_vs_union()}))


if __name__ == "__main__":
    main()
