"""Benchmark runner: Nequix-MP-1 (JAX). The weights file is an option (``model_path``), never a
path written into the repository."""

from __future__ import annotations

from _protocol import serve


def make(variant: str, options: dict):
    from nequix.calculator import NequixCalculator

    path = options.get("model_path")
    if not path:
        raise FileNotFoundError("Nequix needs --nequix-model PATH (nequix-mp-1.nqx)")
    # use_kernel=False: the OpenEquivariance kernels are GPU-only and not installed here.
    return NequixCalculator(model_path=path, backend="jax", use_kernel=False)


def versions() -> dict:
    import importlib.metadata as md

    import jax

    return {
        "nequix": md.version("nequix"),
        "jax": jax.__version__,
        "jax_devices": str(jax.devices()),
    }


if __name__ == "__main__":
    serve(make, versions)
