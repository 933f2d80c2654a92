"""Benchmark runner: Facet (this repository, system python). Besides the shared ``md`` and
``relax`` commands it answers ``md_jax`` (the compiled jax-md loop) and ``batched_relax`` (many
structures in one compiled FIRE loop, or one at a time through ASE for comparison)."""

from __future__ import annotations

import time

from _protocol import serve


def make(variant: str, options: dict):
    from facet import FacetCalculator

    model = options.get("model") or variant
    if model in ("facet-s", "facet-m"):
        from facet import create_model

        model = create_model(model, seed=options.get("seed", 0), dtype=options.get("dtype"))
    return FacetCalculator(model=model, dtype=options.get("dtype") or "float32")


def versions() -> dict:
    import flax
    import jax

    import facet

    return {
        "facet": facet.__version__,
        "jax": jax.__version__,
        "flax": flax.__version__,
        "jax_devices": str(jax.devices()),
    }


def count(calc) -> int:
    from facet.nn.presets import count_parameters

    return count_parameters(calc.model)


_MD_CACHE: dict = {}


def cmd_md_jax(calc, msg: dict) -> dict:
    import numpy as np
    from ase.io import read
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    from facet.dynamics.jaxmd import JaxMD, JaxMDConfig

    atoms = read(msg["file"], index=msg["index"])
    MaxwellBoltzmannDistribution(
        atoms,
        temperature_K=msg.get("temperature_K", 300.0),
        rng=np.random.default_rng(msg.get("seed", 0)),
    )
    Stationary(atoms)
    key = msg.get("dt_fs", 1.0)
    if key not in _MD_CACHE:
        cfg = JaxMDConfig(ensemble="nve", timestep_fs=key, log_interval=max(1, msg["steps"]))
        _MD_CACHE[key] = JaxMD(calc.model, cfg)
    md = _MD_CACHE[key]
    t0, c0 = time.perf_counter(), time.process_time()
    res = md.run(atoms, msg["steps"])
    return {
        "time_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "steps": msg["steps"],
        "rebuilds": res.n_rebuilds,
        "compiles": md.compile_count(),
    }


_FIRE_CACHE: dict = {}


def cmd_batched_relax(calc, msg: dict) -> dict:
    from ase.io import read

    structures = read(msg["file"], index=":")
    steps, fmax = msg["steps"], msg.get("fmax", 0.05)
    if msg.get("mode", "batched") == "batched":
        from facet.dynamics import BatchedFIRE

        if "fire" not in _FIRE_CACHE:
            _FIRE_CACHE["fire"] = BatchedFIRE(calc.model)
        fire = _FIRE_CACHE["fire"]
        t0, c0 = time.perf_counter(), time.process_time()
        res = fire.relax(structures, fmax=fmax, max_steps=steps)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        n_steps = int(res.steps.sum())
        return {
            "time_s": elapsed,
            "cpu_s": cpu,
            "structures": len(structures),
            "steps": n_steps,
            "converged": int(res.converged.sum()),
            "rebuilds": res.n_rebuilds,
            "compiles": fire.compile_count(),
        }
    from facet.dynamics.relax import relax

    t0, c0 = time.perf_counter(), time.process_time()
    n_steps = conv = 0
    for a in structures:
        r = relax(a, calc, fmax=fmax, steps=steps)
        n_steps += r.steps
        conv += int(r.converged)
    return {
        "time_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "structures": len(structures),
        "steps": n_steps,
        "converged": conv,
    }


if __name__ == "__main__":
    serve(
        make,
        versions,
        extra={"md_jax": cmd_md_jax, "batched_relax": cmd_batched_relax},
        count_parameters=count,
    )
