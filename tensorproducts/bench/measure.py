r"""Measurement of one benchmark case: inputs, compilation, XLA counts, equivariance, timing.

:func:`measure_group` times several candidates on one case (setting, L, channels, mode),
interleaved call by call; the method is described in :mod:`tensorproducts.bench.harness`.
"""

from __future__ import annotations

import time

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

from .cases import SETTINGS, BenchConfig, batch_size, candidates, reached_outputs

__all__ = ["measure_group"]


def _inputs(setting, lmax, lead, sh_lead, dtype, key):
    ir1, ir2, out = SETTINGS[setting](lmax)
    k1, k2, k3 = jax.random.split(key, 3)
    x = e3nn.normal(ir1, k1, lead, dtype=dtype)
    vec = jax.random.normal(k2, sh_lead + (3,), dtype)
    sh = e3nn.spherical_harmonics(ir2, vec, normalize=True) if 1 in ir2.ls else None
    y_rand = e3nn.normal(ir2, k3, sh_lead, dtype=dtype)
    return ir1, ir2, out, x, sh, y_rand


def _functions(apply, ir1, ir2, out):
    def fwd(xa, ya):
        return apply(e3nn.IrrepsArray(ir1, xa), e3nn.IrrepsArray(ir2, ya), out)

    def fwd_bwd(xa, ya):
        def loss(a, b):
            return 0.5 * jnp.sum(fwd(a, b).array ** 2)

        return jax.value_and_grad(loss, argnums=(0, 1))(xa, ya)

    return {"fwd": lambda a, b: fwd(a, b).array, "fwd_bwd": fwd_bwd}, fwd


def _cost(compiled) -> tuple[float | None, int | None]:
    flops = peak = None
    try:
        ca = compiled.cost_analysis()
        ca = ca[0] if isinstance(ca, list | tuple) else ca
        flops = float(ca.get("flops")) if ca and "flops" in ca else None
    except Exception:  # noqa: BLE001 - cost analysis is best effort on some backends
        pass
    try:
        ma = compiled.memory_analysis()
        peak = int(getattr(ma, "peak_memory_in_bytes", 0)) or int(
            ma.temp_size_in_bytes + ma.argument_size_in_bytes + ma.output_size_in_bytes
        )
    except Exception:  # noqa: BLE001
        pass
    return flops, peak


_EQUIV_CACHE: dict[tuple, float] = {}


def _equivariance(fwd, x, y, key, compiled=None) -> float:
    """Relative error under a random rotation composed with inversion (benchmark dtype).

    ``compiled`` (the benchmarked forward executable, returning the raw array) is reused when
    given, so no second compilation is needed."""
    rot = -e3nn.rand_matrix(key, (), dtype=x.dtype)
    out_irreps = jax.eval_shape(fwd, x.array, y.array).irreps
    f = compiled if compiled is not None else jax.jit(lambda a, b: fwd(a, b).array)
    z = e3nn.IrrepsArray(out_irreps, f(x.array, y.array))
    zr = f(x.transform_by_matrix(rot).array, y.transform_by_matrix(rot).array)
    scale = float(jnp.max(jnp.abs(z.array)))
    if scale == 0.0:
        return float("nan")
    return float(jnp.max(jnp.abs(zr - z.transform_by_matrix(rot).array))) / scale


def _summary(times: list[float]) -> dict:
    q = np.percentile(times, [25, 50, 75])
    return {"median_ms": 1e3 * float(q[1]), "iqr_ms": 1e3 * float(q[2] - q[0]),
            "min_ms": 1e3 * min(times), "n_timed": len(times)}  # fmt: skip


def measure_group(case: dict, names: list[str], cfg: BenchConfig, log=print) -> list[dict]:
    """Measure ``names`` on one case (setting, L, channels, mode), interleaved."""
    dtype = jnp.dtype(cfg.dtype)
    cands = candidates()
    setting, lmax, chans, mode = case["setting"], case["L"], case["channels"], case["mode"]
    if setting == "edge":
        lead, sh_lead, batch = (cfg.edges, chans), (cfg.edges, 1), cfg.edges
    else:
        batch = batch_size(cfg.batch, setting, lmax)
        lead = sh_lead = (batch,)
    key = jax.random.PRNGKey(cfg.seed + 1000 * lmax)
    ir1, ir2, out, x, sh, y_rand = _inputs(setting, lmax, lead, sh_lead, dtype, key)
    rows, ready = [], {}
    for name in names:
        apply, needs_sh = cands[name]
        out_v = reached_outputs(name, ir1, ir2, out)
        row = dict(case, variant=name, batch=batch, dtype=cfg.dtype, irreps_in1=str(ir1),
                   irreps_in2=str(ir2), irreps_out=str(out_v or out))  # fmt: skip
        y = sh if (needs_sh or setting == "edge") else y_rand
        if y is None:
            rows.append(dict(row, skipped="needs spherical-harmonics input with a degree-1 block"))
            continue
        if out_v is None:
            rows.append(dict(row, skipped="no path of this variant reaches these outputs"))
            continue
        try:
            fns, fwd = _functions(apply, ir1, ir2, out_v)
            t0 = time.perf_counter()
            compiled = jax.jit(fns[mode]).lower(x.array, y.array).compile()
            row["compile_s"] = time.perf_counter() - t0
            row["flops"], row["peak_bytes"] = _cost(compiled)
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(x.array, y.array))
            first = time.perf_counter() - t0
            if first > cfg.max_call_s:
                rows.append(dict(row, skipped=f"too slow: {first:.2f} s per call"))
                continue
            ekey = (name, setting, lmax, chans, batch)
            if ekey not in _EQUIV_CACHE:
                _EQUIV_CACHE[ekey] = _equivariance(
                    fwd, x, y, jax.random.PRNGKey(7), compiled if mode == "fwd" else None
                )
            row["equivariance_error"] = _EQUIV_CACHE[ekey]
        except Exception as err:  # noqa: BLE001 - recorded in the row, not hidden
            rows.append(dict(row, skipped=f"failed: {type(err).__name__}: {str(err)[:200]}"))
            continue
        ready[name] = (compiled, y, row)
    times: dict[str, list[float]] = {n: [] for n in ready}
    order = list(ready)
    for r in range(cfg.warmup + cfg.repeats):
        for name in order[r % len(order) :] + order[: r % len(order)] if order else []:
            compiled, y, _ = ready[name]
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(x.array, y.array))
            if r >= cfg.warmup:
                times[name].append(time.perf_counter() - t0)
    for name, (_, _, row) in ready.items():
        s = _summary(times[name])
        s["us_per_sample"] = 1e3 * s["median_ms"] / batch
        rows.append(dict(row, **s))
    for row in rows:
        msg = (
            row.get("skipped") or f"{row['median_ms']:9.3f} ms  err {row['equivariance_error']:.1e}"
        )
        log(f"  {setting:5s} L={lmax:2d} C={chans:3d} {mode:7s} {row['variant']:22s} {msg}")
    return rows
