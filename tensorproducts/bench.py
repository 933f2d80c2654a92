r"""Microbenchmark harness for the tensor-product variants (``facet bench tp`` calls :func:`run`).

Method (after Xie et al., ICML 2025, sec. 5, with the habits of docs/DESIGN.md):

* **Settings** (multiplicity 1, inputs paired element-wise over a batch axis):
  ``siso``: ``x, y`` = one irrep of degree L (parity :math:`(-1)^L`), output the CG-allowed
  degree-L irrep ``Le``; ``simo``: same inputs, output ``s2_irreps(2L)``; ``mimo``:
  ``s2_irreps(L)`` inputs, ``s2_irreps(2L)`` output; ``edge`` (realistic): ``x`` with C channels of
  ``s2_irreps(L)``, ``y`` the ``s2_irreps(L)`` spherical harmonics of one edge vector shared by the
  channels, output ``s2_irreps(L)`` (the convolution of NequIP-style potentials).
* **Timing.** ``jax.jit(f).lower(...).compile()`` is timed separately (compile time); then
  ``warmup`` calls are discarded and ``repeats`` calls are timed with ``block_until_ready``.
  Variants are **interleaved** call by call (the order rotates every round) so machine noise
  hits all of them alike. Median and inter-quartile range are reported, per call and per sample.
* **Counts.** FLOPs from XLA's ``cost_analysis()`` of the compiled executable, peak memory from
  its ``memory_analysis()`` (XLA's static buffer assignment, bytes).
* **Equivariance** of every variant beside every timing, on the benchmarked batch in the
  benchmarked dtype: :math:`\max|f(Dx, Dy) - D f(x, y)| / \max|f(x, y)|` for a random
  rotation composed with inversion.
* ``forward`` and ``forward+backward`` (gradient of :math:`\frac12\sum z^2` w.r.t. both inputs).

Every row carries the configuration; the result carries versions and hardware. Variants that
fail or exceed ``max_call_s`` are recorded as ``skipped`` with the reason (larger L of that
variant/setting/mode are then skipped too), never silently dropped.
"""

from __future__ import annotations

import functools
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

from .registry import REGISTRY

__all__ = ["BenchConfig", "SETTINGS", "candidates", "run", "system_info", "THEORY"]


# ---------------------------------------------------------------------------- settings


def _siso(lmax: int):
    ir = e3nn.Irreps(f"{lmax}{'e' if lmax % 2 == 0 else 'o'}")
    return ir, ir, e3nn.Irreps(f"{lmax}e")


def _simo(lmax: int):
    ir = _siso(lmax)[0]
    return ir, ir, e3nn.s2_irreps(2 * lmax)


def _mimo(lmax: int):
    return e3nn.s2_irreps(lmax), e3nn.s2_irreps(lmax), e3nn.s2_irreps(2 * lmax)


def _edge(lmax: int):
    return e3nn.s2_irreps(lmax), e3nn.s2_irreps(lmax), e3nn.s2_irreps(lmax)


# setting -> irreps builder; "edge" uses channels and SH input for y
SETTINGS: dict[str, Callable] = {"siso": _siso, "simo": _simo, "mimo": _mimo, "edge": _edge}

# Theoretical cost exponents per sample (cost ~ L^k) for the paper's settings; see
# docs/tensorproducts.md for the counting. None: not defined for that setting.
THEORY: dict[str, dict[str, float]] = {
    "cg-dense": {"siso": 3, "simo": 4, "mimo": 6},
    "e3nn": {"siso": 3, "simo": 4, "mimo": 6},
    "cg-sparse": {"siso": 2, "simo": 3, "mimo": 5},
    "gaunt-grid": {"siso": 3, "simo": 3, "mimo": 3},
    "vector-gaunt-grid": {"siso": 3, "simo": 3, "mimo": 3},
    "gaunt-fourier": {"siso": 3, "simo": 3, "mimo": 3},
    "gaunt-fourier[direct]": {"siso": 4, "simo": 4, "mimo": 4},
    "matrix": {"siso": 6, "simo": 6, "mimo": 6},
    "so2": {"mimo": 3},
}


ALL_L = tuple(range(1, 11))


@dataclass(frozen=True)
class BenchConfig:
    """What to measure.

    ``batch`` maps L to the batch size; a key ``"setting:L"`` (e.g. ``"siso:10"``) overrides it
    for one setting. The single-irrep settings cost only O(L^3)-O(L^4) per sample, so they keep
    the paper's 10,000 samples at every L (per-call overhead would otherwise hide the cost-vs-L
    slope); mimo shrinks the batch with L to keep one call below a second.
    """

    lmaxes: dict = field(default_factory=lambda: {"siso": ALL_L, "simo": ALL_L, "mimo": ALL_L})
    bwd_lmaxes: tuple[int, ...] = (2, 6, 10)
    settings: tuple[str, ...] = ("mimo", "edge", "siso", "simo")  # run order: most important first
    modes: tuple[str, ...] = ("fwd", "fwd_bwd")
    bwd_settings: tuple[str, ...] = ("mimo", "edge")  # forward+backward only where it matters
    bwd_channel_counts: tuple[int, ...] = (64,)
    # per-variant limits: largest L measured (e3nn builds its CG tables for minutes at L=10)
    max_l: dict = field(default_factory=lambda: {"e3nn": 5})
    only_settings: dict = field(default_factory=lambda: {"gaunt-fourier[direct]": ("mimo",)})
    batch: dict = field(default_factory=lambda: {
        1: 10000, 2: 10000, 3: 10000, 4: 4000, 5: 4000, 6: 2000, 7: 1000, 8: 1000, 9: 500, 10: 500,
        **{f"{s}:{l}": 10000 for s in ("siso", "simo") for l in ALL_L}})  # fmt: skip
    channel_counts: tuple[int, ...] = (16, 64, 128)
    channel_lmaxes: tuple[int, ...] = (3,)
    edges: int = 2000
    variants: tuple[str, ...] | None = None  # None: every registered variant + baselines
    warmup: int = 2
    repeats: int = 10
    max_call_s: float = 3.0
    deadline_s: float = 1e9
    dtype: str = "float32"
    seed: int = 0


def batch_size(batch: dict, setting: str, lmax: int) -> int:
    """Batch of ``setting`` at ``lmax``: key ``"setting:L"``, else ``L`` (int or str), else 500."""
    for key in (f"{setting}:{lmax}", lmax, str(lmax)):
        if key in batch:
            return int(batch[key])
    return 500


# ---------------------------------------------------------------------------- candidates


def _e3nn_tp(x, y, irreps_out, weights=None):
    """e3nn-jax's own product on the same paths (one output block per path, not summed)."""
    return e3nn.tensor_product(x, y, filter_ir_out=irreps_out)


def candidates() -> dict[str, tuple[Callable, bool]]:
    """``{name: (apply, requires_sh_input)}``: every registered variant, FFT and direct
    convolution of gaunt-fourier, and ``e3nn`` (``e3nn.tensor_product``) as the outside peer."""
    out = {name: (spec.apply, spec.requires_sh_input) for name, spec in sorted(REGISTRY.items())}
    if "gaunt-fourier" in REGISTRY:
        out["gaunt-fourier[direct]"] = (
            functools.partial(REGISTRY["gaunt-fourier"].apply, convolution="direct"),
            False,
        )
    out["e3nn"] = (_e3nn_tp, False)
    return out


# ---------------------------------------------------------------------------- system info


def system_info() -> dict:
    """Versions and hardware, stamped on every result."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import flax
    import jaxlib

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "e3nn_jax": e3nn.__version__,
        "flax": flax.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "device": str(jax.devices()[0]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


# ---------------------------------------------------------------------------- measurement


def _inputs(setting, lmax, lead, sh_lead, dtype, key):
    ir1, ir2, out = SETTINGS[setting](lmax)
    k1, k2, k3 = jax.random.split(key, 3)
    x = e3nn.normal(ir1, k1, lead, dtype=dtype)
    vec = jax.random.normal(k2, sh_lead + (3,), dtype)
    sh = e3nn.spherical_harmonics(ir2, vec, normalize=True) if 1 in ir2.ls else None
    y_rand = e3nn.normal(ir2, k3, sh_lead, dtype=dtype)
    return ir1, ir2, out, x, sh, y_rand


def reached_outputs(name, ir1, ir2, out):
    """The setting's outputs if ``name`` has a path into them; else the same degrees with the
    other parity (``vector-gaunt-grid``'s odd paths land on ``0o + 1e + 2o ...``, where the
    paper's settings put ``0e + 1o + 2e ...``); None when neither is reached (nothing to time)."""
    spec = REGISTRY.get(name.split("[")[0])
    if spec is None or spec.paths(ir1, ir2, out):
        return out
    flipped = e3nn.Irreps([(mul, (ir.l, -ir.p)) for mul, ir in out])
    return flipped if spec.paths(ir1, ir2, flipped) else None


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


def _cases(cfg: BenchConfig):
    """Setting by setting (``cfg.settings`` order), each forward then forward+backward, so a
    time budget that runs out cuts the least important cases, not a whole mode."""
    for setting in cfg.settings:
        for mode in cfg.modes:
            if mode == "fwd_bwd" and setting not in cfg.bwd_settings:
                continue
            if setting == "edge":
                chans_list = cfg.channel_counts if mode == "fwd" else cfg.bwd_channel_counts
                for lmax in cfg.channel_lmaxes:
                    for chans in chans_list:
                        yield {"setting": setting, "L": lmax, "channels": chans, "mode": mode}
            else:
                ls = cfg.lmaxes.get(setting, ()) if mode == "fwd" else cfg.bwd_lmaxes
                for lmax in ls:
                    yield {"setting": setting, "L": lmax, "channels": 1, "mode": mode}


def run(cfg: BenchConfig = BenchConfig(), log=print, on_rows=None) -> dict:
    """Run every case of ``cfg``; returns ``{"meta": ..., "config": ..., "rows": [...]}``.

    ``on_rows(rows)`` is called after every case with all rows so far (to save partial results);
    once ``cfg.deadline_s`` has passed the remaining cases are recorded as skipped."""
    names = list(cfg.variants) if cfg.variants else list(candidates())
    start = time.perf_counter()
    run_id = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + f"-{os.getpid()}"
    load0 = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows: list[dict] = []
    dead: dict[tuple, str] = {}  # (variant, setting, channels, mode) -> reason (skip larger L)
    for case in _cases(cfg):
        group_key = (case["setting"], case["channels"], case["mode"])
        todo = []
        for n in names:
            if case["setting"] not in cfg.only_settings.get(n, (case["setting"],)):
                continue
            reason = dead.get((n,) + group_key)
            if reason is None and case["L"] > cfg.max_l.get(n, case["L"]):
                reason = f"not measured above L={cfg.max_l[n]} (configured limit, see report)"
            if reason is None and time.perf_counter() - start > cfg.deadline_s:
                reason = "time budget of the run exhausted"
            if reason:
                rows.append(dict(case, variant=n, skipped=reason, run=run_id))
            else:
                todo.append(n)
        if not todo:
            continue
        got = measure_group(case, todo, cfg, log=log)
        for row in got:
            if "skipped" in row and row["skipped"].startswith("too slow"):
                dead[(row["variant"],) + group_key] = f"{row['skipped']} at L={case['L']}"
        rows.extend(dict(r, run=run_id) for r in got)
        if on_rows is not None:
            on_rows(rows)
    cfg_dict = asdict(cfg)
    cfg_dict["batch"] = {str(k): v for k, v in cfg.batch.items()}
    cfg_dict["lmaxes"] = {k: list(v) for k, v in cfg.lmaxes.items()}
    meta = dict(system_info(), wall_s=time.perf_counter() - start)
    meta["load_average_at_start"] = load0
    meta["run_id"] = run_id
    return {"meta": meta,
            "config": cfg_dict, "rows": rows}  # fmt: skip


def loglog_slope(ls, values) -> float | None:
    """Least-squares slope of log(value) against log(L) (None with fewer than 3 points)."""
    pts = [(l, v) for l, v in zip(ls, values, strict=True) if v and v > 0]
    if len(pts) < 3:
        return None
    a = np.log([p[0] for p in pts])
    b = np.log([p[1] for p in pts])
    return float(np.polyfit(a, b, 1)[0])


def slopes(rows: list[dict], lmin: int = 5) -> list[dict]:
    """Measured cost-vs-L exponents per (variant, setting, mode): time per sample and FLOPs per
    sample, fitted over ``L >= lmin`` (the large-L part, where per-call overhead no longer
    dominates), beside :data:`THEORY`."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("channels", 1) == 1 and "median_ms" in r and r["L"] >= lmin:
            groups.setdefault((r["variant"], r["setting"], r["mode"]), []).append(r)
    out = []
    for (v, s, m), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["L"])
        ls = [r["L"] for r in rs]
        out.append({
            "variant": v, "setting": s, "mode": m, "L_range": f"{ls[0]}-{ls[-1]}",
            "time_slope": loglog_slope(ls, [r["us_per_sample"] for r in rs]),
            "flops_slope": loglog_slope(ls, [(r["flops"] or 0) / r["batch"] for r in rs]),
            "theory": THEORY.get(v, {}).get(s),
        })  # fmt: skip
    return out


def median_of(rows, **match) -> float | None:
    """Median time (ms) of the single row matching ``match`` (None when absent or skipped)."""
    hits = [r for r in rows if all(r.get(k) == v for k, v in match.items()) and "median_ms" in r]
    return statistics.median(r["median_ms"] for r in hits) if hits else None
