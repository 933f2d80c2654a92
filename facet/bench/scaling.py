"""Cost of Facet's energy + forces + stress against system size, channels and L; FLOP rate.

Systems: rattled fcc copper supercells (a = 3.61 A, 0.0850 atoms/A^3, the experimental density
of Cu) of ``n`` atoms, ``n = 4 nx ny nz`` with the most nearly cubic repeats
(:func:`fcc_repeats`), so the density, and with it the neighbours per atom inside the cutoff, is
the same at every size. Positions are rattled by 0.05 A (seeded) so no symmetry is exploited.

Measured per configuration (one preset with optional ``channels``/``lmax`` overrides at one size):

* compile time of ``jit(predict)`` (``lower`` + ``compile``), kept apart from the steady state;
* steady-state seconds per call of the compiled energy + forces + stress (one forward and one
  reverse pass), the median, min and max over repeats that are interleaved over all
  configurations (``for repeat: for config``), each call ended with ``block_until_ready``;
* memory: XLA's own analysis of the compiled executable (arguments + outputs + temporaries,
  ``compiled.memory_analysis()``), the process's peak RSS so far (``ru_maxrss``) and, on GPUs,
  the device allocator's peak so far (``memory_stats()["peak_bytes_in_use"]``). Sizes run in
  ascending order, so "peak so far" is the peak of the largest system run so far;
* FLOPs from XLA's cost analysis of the compiled function (``compiled.cost_analysis()["flops"]``)
  divided by the median time: the achieved FLOP rate, for the forward pass alone (energy only)
  and for forward + backward (energy, forces, stress).

The practical limit of the machine is the rate of a large square float32/float64 matrix product
``C = A B`` (``2 n^3`` FLOPs) measured in the same run (:func:`matmul_rate`); each model row
states its rate as a fraction of that. XLA's FLOP count is that of the optimised HLO (it counts
multiply-adds as 2 FLOPs and ignores gathers/scatters, which move memory), so the fraction is a
statement about arithmetic intensity, not a bound.
"""

from __future__ import annotations

import dataclasses
import resource
import time
from dataclasses import dataclass

import numpy as np

#: fcc Cu lattice constant (A); 4 atoms per conventional cubic cell.
CU_LATTICE = 3.61


@dataclass(frozen=True)
class ScalingConfig:
    """One ``scaling`` run. ``sweep_atoms``: size of the channels/L sweeps."""

    preset: str = "facet-s"
    sizes: tuple[int, ...] = (8, 32, 108, 256, 500, 864, 2048, 4096)
    channels: tuple[int, ...] = (16, 32, 64, 128)
    lmaxes: tuple[int, ...] = (1, 2, 3)
    sweep_atoms: int = 256
    repeats: int = 5
    matmul_n: int | None = None  # None: 2048 on a CPU, 8192 on an accelerator
    dtype: str = "float32"
    seed: int = 0
    forward_only: bool = True  # also time the energy-only forward pass at each size
    deadline_s: float | None = None  # stop starting new configurations after this
    overrides: tuple[tuple[str, object], ...] = ()  # other ModelConfig fields, e.g. num_layers


def quick_config(backend: str, preset: str = "facet-s") -> ScalingConfig:
    """A few sizes only: small ones on a CPU, up to 4,096 atoms on an accelerator."""
    if backend == "cpu":
        return ScalingConfig(
            preset=preset,
            sizes=(8, 32, 108),
            channels=(16,),
            lmaxes=(1,),
            sweep_atoms=32,
            repeats=3,
            matmul_n=1024,
        )
    return ScalingConfig(
        preset=preset,
        sizes=(64, 512, 4096),
        channels=(32, 128),
        lmaxes=(1, 3),
        sweep_atoms=512,
        repeats=5,
        matmul_n=8192,
    )


def fcc_repeats(n_atoms: int) -> tuple[int, int, int]:
    """Most nearly cubic ``(nx, ny, nz)`` with ``4 nx ny nz = n_atoms`` (``nx <= ny <= nz``)."""
    if n_atoms < 4 or n_atoms % 4:
        raise ValueError(f"fcc supercells hold 4 nx ny nz atoms; {n_atoms} is not a multiple of 4")
    m = n_atoms // 4
    best = None
    for nx in range(1, round(m ** (1 / 3)) + 2):
        if m % nx:
            continue
        for ny in range(nx, int(np.sqrt(m // nx)) + 1):
            if (m // nx) % ny:
                continue
            nz = m // nx // ny
            key = (nz / nx, nz - nx)
            if best is None or key < best[0]:
                best = (key, (nx, ny, nz))
    return best[1]


def fcc_cell(n_atoms: int, *, seed: int = 0, rattle: float = 0.05):
    """Rattled fcc Cu supercell of ``n_atoms`` atoms at the fixed density (module docstring)."""
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", a=CU_LATTICE, cubic=True) * fcc_repeats(n_atoms)
    atoms.rattle(rattle, seed=seed)
    return atoms


def _cost(compiled) -> dict:
    ca = compiled.cost_analysis()
    if isinstance(ca, list | tuple):  # older JAX: one dict per computation
        ca = ca[0] if ca else {}
    return dict(ca or {})


def memory_analysis(compiled) -> dict:
    """XLA's compile-time memory analysis of a compiled program in bytes: arguments, outputs,
    temporaries, aliases (donated buffers reused), generated code, and ``xla_total_bytes``
    (arguments + outputs + temporaries - aliases); empty where the backend has none."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - some backends have no analysis; recorded as absent
        return {}
    if m is None:
        return {}
    keys = (
        "argument_size_in_bytes",
        "output_size_in_bytes",
        "temp_size_in_bytes",
        "alias_size_in_bytes",
        "generated_code_size_in_bytes",
    )
    out = {k.replace("_size_in_bytes", "_bytes"): int(getattr(m, k, 0) or 0) for k in keys}
    out["xla_total_bytes"] = (
        out["argument_bytes"] + out["output_bytes"] + out["temp_bytes"] - out["alias_bytes"]
    )
    return out


def process_peaks() -> dict:
    """Peak resident memory of this process so far and, on GPUs, the allocator's peak so far."""
    import jax

    out = {"rss_peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - CPU devices have none
        stats = {}
    if "peak_bytes_in_use" in stats:
        out["device_peak_bytes"] = int(stats["peak_bytes_in_use"])
    return out


@dataclass
class Compiled:
    """One compiled function with its inputs, cost analysis and memory analysis."""

    label: str
    fn: object
    args: tuple
    compile_s: float
    flops: float | None
    memory: dict
    times: list = dataclasses.field(default_factory=list)

    def call(self) -> float:
        import jax

        t0 = time.perf_counter()
        jax.block_until_ready(self.fn(*self.args))
        return time.perf_counter() - t0


def compile_fn(label: str, f, *args) -> Compiled:
    """``jit(f)`` lowered and compiled for ``args`` (timed), then called once (not timed)."""
    import jax

    t0 = time.perf_counter()
    compiled = jax.jit(f).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    flops = _cost(compiled).get("flops")
    c = Compiled(
        label, compiled, args, compile_s, float(flops) if flops else None, memory_analysis(compiled)
    )
    c.call()  # first execution (allocations, autotuning) stays out of the timings
    return c


def model_functions(model, batch, *, forward_only: bool) -> list[tuple[str, object, tuple]]:
    """``(kind, f, args)`` for ``f(state, batch)``: energy+forces+stress, optionally energy only."""
    from flax import nnx

    from facet.physics import predict

    graphdef, state = nnx.split(model)

    def efs(state, batch):
        p = predict(nnx.merge(graphdef, state), batch, forces=True, stress=True)
        return p.energy, p.forces, p.stress

    def energy(state, batch):
        return predict(nnx.merge(graphdef, state), batch, forces=False, stress=False).energy

    out = [("fwd_bwd", efs, (state, batch))]
    if forward_only:
        out.append(("fwd", energy, (state, batch)))
    return out


def configurations(cfg: ScalingConfig) -> list[dict]:
    """Unique ``(atoms, channels, lmax)`` points of the three sweeps, each naming its sweeps.

    The channels and L sweeps run first (at ``sweep_atoms``), then sizes in ascending order, so
    that "peak so far" memory figures of the size sweep belong to the largest system so far.
    """
    from facet.nn.presets import get_preset

    base = dataclasses.replace(get_preset(cfg.preset), **dict(cfg.overrides))
    points: dict[tuple[int, int, int], list[str]] = {}
    for c in sorted({*cfg.channels, base.channels}):
        points.setdefault((cfg.sweep_atoms, c, base.lmax), []).append("channels")
    for lmax in sorted({*cfg.lmaxes, base.lmax}):
        points.setdefault((cfg.sweep_atoms, base.channels, lmax), []).append("lmax")
    for n in sorted(cfg.sizes):
        points.setdefault((n, base.channels, base.lmax), []).append("size")
    order = sorted(points, key=lambda k: ("size" in points[k], k[0], k[1], k[2]))
    return [
        {"atoms": a, "channels": c, "lmax": lm, "sweeps": points[(a, c, lm)]} for a, c, lm in order
    ]


def _compile_point(cfg: ScalingConfig, point: dict, models: dict) -> tuple[dict, list[Compiled]]:
    """Build (or reuse from ``models``) the model of ``point``, its one-structure batch and its
    compiled functions; the row's size, compile, FLOP and memory fields."""
    import facet
    from facet.data import collate
    from facet.data.neighbors import graph_from_atoms
    from facet.nn.presets import count_parameters

    key = (point["channels"], point["lmax"])
    if key not in models:
        over = {**dict(cfg.overrides), "channels": key[0], "lmax": key[1]}
        models[key] = facet.create_model(cfg.preset, seed=cfg.seed, dtype=cfg.dtype, **over)
    model = models[key]
    atoms = fcc_cell(point["atoms"], seed=cfg.seed)
    g = graph_from_atoms(atoms, model.cutoff)
    batch = collate([g], dtype=np.dtype(cfg.dtype))
    fns = model_functions(model, batch, forward_only=cfg.forward_only and "size" in point["sweeps"])
    comp = [compile_fn(kind, f, *args) for kind, f, args in fns]
    fields = dict(
        status="ok",
        params=count_parameters(model),
        edges=int(g.n_edge),
        neighbours_per_atom=g.n_edge / point["atoms"],
        padded_nodes=int(batch.positions.shape[0]),
        padded_edges=int(batch.senders.shape[0]),
        cutoff=float(model.cutoff),
    )
    for c in comp:
        fields[f"compile_{c.label}_s"] = c.compile_s
        fields[f"flops_{c.label}"] = c.flops
        fields[f"memory_{c.label}"] = c.memory
    return fields, comp


def _matmul_row(cfg: ScalingConfig, mm: Compiled) -> dict:
    """The dense matmul's timing: the FLOP rate the model rows are measured against."""
    mm_med = float(np.median(mm.times))
    return {
        "kind": "matmul",
        "status": "ok",
        "n": cfg.matmul_n,
        "flops": 2.0 * cfg.matmul_n**3,
        "xla_flops": mm.flops,
        "compile_s": mm.compile_s,
        "time_s": mm_med,
        "time_min_s": min(mm.times),
        "time_max_s": max(mm.times),
        "flop_rate": 2.0 * cfg.matmul_n**3 / mm_med,
    }


def _add_timings(row: dict, comp: list[Compiled], limit: float) -> None:
    """Median, min and max time of each function of ``row``, its FLOP rate and its fraction of
    the matmul's (``limit``), and the per-atom cost of the forward + backward pass."""
    for c in comp:
        med = float(np.median(c.times))
        row[f"time_{c.label}_s"] = med
        row[f"time_{c.label}_min_s"] = min(c.times)
        row[f"time_{c.label}_max_s"] = max(c.times)
        if c.flops:
            row[f"flop_rate_{c.label}"] = c.flops / med
            row[f"frac_matmul_{c.label}"] = c.flops / med / limit
    row["us_per_atom"] = 1e6 * row["time_fwd_bwd_s"] / row["atoms"]
    row["atoms_per_s"] = row["atoms"] / row["time_fwd_bwd_s"]


def run(cfg: ScalingConfig, *, command: str = "", quick: bool = False, on_rows=None) -> dict:
    """Measure every configuration of ``cfg`` (module docstring); returns ``{meta, rows}``.

    A configuration that fails (e.g. out of memory) or is not started because the deadline
    passed is a row with ``status`` ``"failed: ..."`` / ``"skipped: ..."``.
    """
    import jax

    from .meta import load_average, row_meta, run_meta

    t_start = time.perf_counter()
    meta = run_meta(dtype=cfg.dtype, seed=cfg.seed, quick=quick, command=command)
    meta["config"] = dataclasses.asdict(cfg)
    meta["matmul_precision"] = str(getattr(jax.config, "jax_default_matmul_precision", None))
    rows: list[dict] = []
    if cfg.matmul_n is None:
        cfg = dataclasses.replace(cfg, matmul_n=2048 if jax.default_backend() == "cpu" else 8192)
        meta["config"]["matmul_n"] = cfg.matmul_n
    mm = compile_fn(
        f"matmul {cfg.matmul_n}",
        lambda a, b: a @ b,
        *_matmul_args(cfg.matmul_n, cfg.dtype, cfg.seed),
    )
    models: dict[tuple[int, int], object] = {}
    jobs: list[tuple[dict, list[Compiled]]] = []
    for point in configurations(cfg):
        row = {"kind": "model", "preset": cfg.preset, **point,
               **row_meta(dtype=cfg.dtype, seed=cfg.seed)}
        rows.append(row)
        if cfg.deadline_s and time.perf_counter() - t_start > cfg.deadline_s:
            row["status"] = f"skipped: time budget of {cfg.deadline_s:.0f} s spent"
            continue
        try:
            fields, comp = _compile_point(cfg, point, models)
        except Exception as e:  # noqa: BLE001 - recorded in the row, never dropped
            row["status"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:300]}"
            continue
        row.update(fields)
        row.update(process_peaks())
        jobs.append((row, comp))
        if on_rows:
            on_rows({"meta": meta, "rows": rows})
    # steady state: repeats interleaved over every configuration and the matmul
    for _ in range(cfg.repeats):
        mm.times.append(mm.call())
        for _, comp in jobs:
            for c in comp:
                c.times.append(c.call())
    mm_row = _matmul_row(cfg, mm)
    rows.insert(0, {**mm_row, **row_meta(dtype=cfg.dtype, seed=cfg.seed)})
    for row, comp in jobs:
        _add_timings(row, comp, mm_row["flop_rate"])
    meta["loadavg_end"] = load_average()
    meta["elapsed_s"] = time.perf_counter() - t_start
    return {"meta": meta, "rows": rows}


def _matmul_args(n: int, dtype: str, seed: int):
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    return (
        jnp.asarray(rng.standard_normal((n, n)), dtype),
        jnp.asarray(rng.standard_normal((n, n)), dtype),
    )
