"""ABBA-interleaved timing of two functions in one process: ours beside the research code.

Run one after the other, two timings differ by the machine's drift between them as well as by
the functions; alternating calls in ABBA order (A B, B A, A B, ...) lets slow phases of the
machine hit both sides alike. Used by the research worker of tensorproducts.bench.pof (it times our
variant beside every research case, the ``paired`` field of a research row) and by
tensorproducts.bench.pof_interleaved (a hand-picked case list).
"""

from __future__ import annotations

import time

import numpy as np

PAIRED_MAX_S = 20.0  # past this many seconds on a case, no rounds are added beyond the minimum
MIN_ROUNDS = 5


def abba(n: int) -> list[tuple[int, int]]:
    """Call order for ``n`` rounds of two functions: (0, 1), (1, 0), (0, 1), ... so each side
    goes first equally often and neither always follows the other."""
    return [(0, 1) if i % 2 == 0 else (1, 0) for i in range(n)]


def summarise(times_ms) -> dict:
    t = np.asarray(times_ms, float)
    q1, med, q3 = np.percentile(t, [25, 50, 75])
    return {"median_ms": float(med), "iqr_ms": float(q3 - q1), "n": int(t.size)}


def interleave(
    fa,
    fb,
    rounds: int,
    *,
    warmup: int = 3,
    max_s: float | None = None,
    min_rounds: int = MIN_ROUNDS,
    clock=time.perf_counter,
) -> tuple[dict, dict, int]:
    """Time the zero-argument callables ``fa`` and ``fb`` (each returns once its work is done)
    in ABBA order: ``warmup`` untimed calls of each, then up to ``rounds`` rounds of one call
    each. Once ``max_s`` seconds have gone into the case (warm-up included), no round is added
    after the first ``min_rounds``. Returns ``(summary of fa, summary of fb, rounds done)``."""
    start = clock()
    for f in (fa, fb):
        for _ in range(warmup):
            f()
    times: tuple[list, list] = ([], [])
    done = 0
    for order in abba(rounds):
        for k in order:
            t0 = clock()
            (fa, fb)[k]()
            times[k].append(1e3 * (clock() - t0))
        done += 1
        if max_s is not None and done >= min_rounds and clock() - start > max_s:
            break
    return summarise(times[0]), summarise(times[1]), done


def ready(f, *args):
    """``f(*args)`` as a zero-argument callable that waits for JAX's asynchronous result."""
    import jax

    return lambda: jax.block_until_ready(f(*args))


def ours_compiled(ours: str, setting: str, lmax: int, x, y, out):
    """Our variant ``ours`` (``tensorproducts.REGISTRY[ours].apply``) compiled on the research
    case's inputs ``x``, ``y`` (IrrepsArrays) and outputs ``out``, taking and returning
    IrrepsArrays like the research function: ``(compiled, x, y)``. In the research-only setting
    ``vsh`` ours runs where the benchmark shows it, on the mimo irreps at the same L (fresh
    inputs of the same batch and dtype); outputs are the ones it reaches
    (:func:`tensorproducts.bench.cases.reached_outputs`), as in the benchmark."""
    import e3nn_jax as e3nn
    import jax

    from tensorproducts import REGISTRY
    from tensorproducts.bench.cases import SETTINGS, reached_outputs

    spec = REGISTRY[ours]
    if spec.requires_sh_input:
        raise ValueError(f"{ours} needs spherical-harmonics input")
    if setting == "vsh":
        ir1, ir2, out = SETTINGS["mimo"](lmax)
        k = jax.random.split(jax.random.PRNGKey(lmax), 2)
        lead = x.array.shape[:-1]
        x = e3nn.normal(ir1, k[0], lead, dtype=x.array.dtype)
        y = e3nn.normal(ir2, k[1], lead, dtype=y.array.dtype)
    out_v = reached_outputs(ours, x.irreps, y.irreps, out)
    if out_v is None:
        raise ValueError("no path of this variant reaches these outputs")
    apply = spec.apply
    return jax.jit(lambda a, b: apply(a, b, out_v)).lower(x, y).compile(), x, y


def paired(
    research,
    ours: str,
    setting: str,
    lmax: int,
    x,
    y,
    out,
    *,
    rounds: int,
    max_s: float = PAIRED_MAX_S,
    warmup: int = 2,
    max_call_s: float | None = None,
) -> dict:
    """The ``paired`` field of a research row: ``research`` (the research product, called as
    ``research(x, y)``) and our ``ours`` (:func:`ours_compiled`) timed ABBA-interleaved in this
    process, ours first. ``{"skipped": reason}`` when ours cannot be built or run, or its first
    call takes over ``max_call_s``; never raises."""
    if rounds < 1:
        return {"skipped": "not requested (paired rounds 0)"}
    try:
        mine, xo, yo = ours_compiled(ours, setting, lmax, x, y, out)
        t0 = time.perf_counter()
        ready(mine, xo, yo)()
        first = time.perf_counter() - t0
        if max_call_s is not None and first > max_call_s:
            return {"skipped": f"ours too slow: {first:.2f} s per call"}
        a, b, n = interleave(
            ready(mine, xo, yo),
            ready(research, x, y),
            rounds,
            warmup=warmup,
            max_s=max_s,
            min_rounds=min(MIN_ROUNDS, rounds),
        )
    except Exception as err:  # noqa: BLE001 - recorded on the row, not hidden
        return {"skipped": f"failed: {type(err).__name__}: {str(err)[:200]}"}
    got = {
        "ours_median_ms": a["median_ms"],
        "ours_iqr_ms": a["iqr_ms"],
        "research_median_ms": b["median_ms"],
        "research_iqr_ms": b["iqr_ms"],
        "rounds": n,
    }
    from tensorproducts.bench.measure import _cost

    flops = _cost(mine)[0]  # XLA FLOPs of ours, for the FLOPs ratio beside the time ratio
    return got if flops is None else dict(got, ours_flops=flops)
