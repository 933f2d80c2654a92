"""Benchmark the published research implementation (PriceofFreedom) beside ours.

Xie, Daigavane, Kotak, Smidt, "The Price of Freedom", ICML 2025; code
github.com/atomicarchitects/PriceofFreedom. Nothing of it is copied here: this module imports it
from a checkout given by ``--pof`` and runs it **in its own environment** (a virtual environment
created on first use) in a subprocess, in the same three settings, batch sizes, dtype and timing
method as :mod:`tensorproducts.bench.harness`, and prints JSON rows. Each measured research row also
carries ``paired``: our variant timed beside it in that process, ABBA-interleaved
(tensorproducts.bench.pof_pairing): a ratio not confounded by drift between our run and this one.

Environment: the checkout pins ``jax[cuda12]>=0.5`` and ``e3nn-jax>=0.20.7`` (plus notebook and
plotting tools). CUDA wheels are unusable on a CPU-only machine, so the venv is created with
``--system-site-packages`` (it sees this machine's jax and e3nn-jax, whose versions the rows
record) and only the missing runtime dependency ``chex`` is installed into it; the checkout is put
on ``PYTHONPATH`` instead of ``pip install -e`` so that it stays read-only.

Usage::

    python -m tensorproducts.bench.pof --pof /path/to/PriceofFreedom --out pof.json [--quick]

Library use (``facet bench tp --pof PATH``): :func:`run_pof` returns ``(rows, meta)``; when the
checkout is absent or the run fails it returns rows marked ``skipped`` with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# Research-code variant -> the name of our variant computing the same product.
# GTP-fourier last: its tables take minutes to build and it gets what is left of the budget.
POF_VARIANTS = {
    "CGTP-dense": "cg-dense",
    "GTP-grid": "gaunt-grid",
    "Matrix-TP": "matrix",
    "VGTP-grid": "vector-gaunt-grid",
    "CGTP-sparse": "cg-sparse",
    "GTP-fourier": "gaunt-fourier",
}
DEFAULT_VENV = Path.home() / ".cache" / "facet" / "pof-venv"
# The research vector Gaunt product takes vector-spherical-harmonic coefficients (its VSHCoeffs
# rejects anything else), so it runs in the research-only setting "vsh" (both inputs the VSH
# coefficients of degree <= L, `VSHCoeffs.get_vsh_irreps(jmax=L, parity=-1)`, output jmax 2L:
# the inputs of its own MIMO benchmark) and is shown beside our vector-gaunt-grid in mimo at
# the same L; the other research variants take the s2_irreps settings.
S2_SETTINGS = ("siso", "simo", "mimo")
APPLIES = {v: ("vsh",) if v == "VGTP-grid" else S2_SETTINGS for v in POF_VARIANTS}
NEEDS_VSH = "needs VSH-coefficient inputs (its VSHCoeffs rejects s2_irreps): timed in setting vsh"


#: The worker runs as ``python -m WORKER_MODULE --worker`` under the research venv's Python.
WORKER_MODULE = "tensorproducts.bench.pof"


def worker_env(pof: str) -> dict:
    """The worker's environment: the research checkout and the folder holding this
    ``tensorproducts`` package (installed or editable) on ``PYTHONPATH``, JAX on the CPU."""
    import tensorproducts

    here = Path(tensorproducts.__file__).resolve().parent.parent
    path = os.pathsep.join([str(Path(pof).resolve()), str(here)])
    return dict(os.environ, PYTHONPATH=path, JAX_PLATFORMS="cpu")


def paired_rounds(quick: bool) -> int:
    """Default ABBA rounds of ours beside each research case (``--paired-rounds``)."""
    return 5 if quick else 15


def accounted(variant: str, setting: str, lmax: int, why: str) -> dict | None:
    """The row recorded for a case a worker never reported: ``why`` where the variant applies
    to ``setting``, the not-applicable reason for VGTP on s2 settings, None for vsh otherwise."""
    base = {"variant": f"pof:{variant}", "ours": POF_VARIANTS[variant], "setting": setting,
            "L": lmax, "channels": 1, "mode": "fwd"}  # fmt: skip
    if setting in APPLIES[variant]:
        return dict(base, skipped=why, **({"ours_setting": "mimo"} if setting == "vsh" else {}))
    return dict(base, skipped=NEEDS_VSH) if setting != "vsh" else None


def ensure_venv(venv: Path, log=print) -> Path:
    """Create the venv (system site packages + chex) if needed; return its python."""
    py = venv / "bin" / "python"
    if not py.exists():
        log(f"creating {venv} (system site packages) ...")
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                       check=True)  # fmt: skip
    probe = subprocess.run([str(py), "-c", "import chex"], capture_output=True)
    if probe.returncode != 0:
        # pin jax/jaxlib to the versions already present so pip does not pull another jax
        import jax
        import jaxlib

        log("installing chex into the research venv ...")
        subprocess.run([str(py), "-m", "pip", "install", "-q", "chex",
                        f"jax=={jax.__version__}", f"jaxlib=={jaxlib.__version__}"],
                       check=True)  # fmt: skip
    return py


def check_variants(names) -> list[str]:
    """``names`` if every one is a research variant (``POF_VARIANTS``), else ValueError."""
    bad = [n for n in names if n not in POF_VARIANTS]
    if bad:
        raise ValueError(f"unknown research variant(s) {bad}; choose from {list(POF_VARIANTS)}")
    return list(names)


def _git_head(path: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or "(commit unknown)"
    except (OSError, subprocess.SubprocessError):
        return "(commit unknown)"


def run_pof(
    pof: str | None,
    config: dict,
    *,
    venv: Path = DEFAULT_VENV,
    budget_s: float = 300.0,
    log=print,
) -> tuple[list[dict], dict]:
    """Run the research code in a subprocess; ``config`` has ``settings``, ``lmaxes`` (per
    setting), ``batch`` (L -> size), ``warmup``, ``repeats``, ``max_call_s``, ``dtype``."""
    if not pof or not (Path(pof) / "freedom" / "tensor_products" / "functional.py").exists():
        reason = f"skipped: no PriceofFreedom checkout at {pof!r}"
        return [{"variant": f"pof:{v}", "skipped": reason} for v in POF_VARIANTS], {"pof": reason}
    try:
        py = ensure_venv(Path(venv), log=log)
    except (subprocess.CalledProcessError, OSError) as err:
        reason = f"skipped: could not build the research venv: {err}"
        return [{"variant": f"pof:{v}", "skipped": reason} for v in POF_VARIANTS], {"pof": reason}
    env = worker_env(pof)
    # record the checkout by its commit, not by this machine's path (reports are committed)
    rows, meta = [], {"pof": f"checkout {_git_head(Path(pof))}", "budget_s": budget_s}
    # the many-in-many-out setting first: it is the one the acceptance checks hinge on
    config = dict(config, settings=sorted(config["settings"], key=lambda s: s != "mimo"))
    start = time.time()
    meta["started_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    # one subprocess per research variant (the 2D-Fourier tables take minutes to build, so it
    # goes last and gets what is left of the budget; a timeout only loses that variant)
    variants = config.get("variants", list(POF_VARIANTS))
    for k, variant in enumerate(variants):
        left = budget_s - (time.time() - start)
        share = left / (len(variants) - k)
        limit = left if k == len(variants) - 1 else min(left, max(share, 0.5 * left))
        cfg = dict(config, variants=[variant])
        cmd = [str(py), "-m", WORKER_MODULE, "--worker", "--config", json.dumps(cfg),
               "--deadline", str(time.time() + limit)]  # fmt: skip
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=limit + 60, cwd=str(Path(pof).resolve()))  # fmt: skip
            out, err, rc = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err, rc = "timeout (killed)", -1
        seen = set()
        for line in out.splitlines():
            if not line.startswith("{"):
                continue
            obj = json.loads(line)
            if "meta" in obj:
                meta.update(obj["meta"])
                continue
            rows.append(obj)
            seen.add((obj["setting"], obj["L"]))
            msg = obj.get("skipped") or f"{obj['median_ms']:.3f} ms"
            log(f"  pof {obj['setting']:5s} L={obj['L']:2d} {obj['variant']:18s} {msg}")
        if rc != 0:
            meta[f"worker_error:{variant}"] = (err or "")[-1000:]
            for setting in config["settings"]:  # account for what the killed worker never did
                for lmax in config["lmaxes"][setting]:
                    if (setting, lmax) not in seen:
                        row = accounted(variant, setting, lmax, f"research worker: {err[-200:]}")
                        rows += [row] if row else []
    return rows, meta


def setting_irreps(setting: str, lmax: int):
    """``(irreps_in1, irreps_in2, irreps_out)`` of the s2 settings at ``lmax`` (as
    tensorproducts.bench): siso ``L x L -> Le``, simo ``L x L -> s2(2L)``, mimo
    ``s2(L) x s2(L) -> s2(2L)``."""
    import e3nn_jax as e3nn

    one = e3nn.Irreps(f"{lmax}{'e' if lmax % 2 == 0 else 'o'}")
    if setting == "siso":
        return one, one, e3nn.Irreps(f"{lmax}e")
    if setting == "simo":
        return one, one, e3nn.s2_irreps(2 * lmax)
    return e3nn.s2_irreps(lmax), e3nn.s2_irreps(lmax), e3nn.s2_irreps(2 * lmax)


def research_fn(F, variant: str, lmax: int, out):
    """The research code's product ``variant`` (``F``: its ``freedom.tensor_products.functional``)
    as ``(x, y) -> IrrepsArray``, with the keyword choices of the research benchmark script
    (benchmarking/__main__.py)."""
    grid = dict(res_beta=2 * lmax + 1, res_alpha=2 * (2 * lmax + 1), quadrature="gausslegendre",
                p_val1=1, p_val2=1)  # fmt: skip
    return {
        "CGTP-dense": lambda x, y: F.clebsch_gordan_tensor_product_dense(
            x, y, filter_ir_out=out, irrep_normalization="norm"),
        "CGTP-sparse": lambda x, y: F.clebsch_gordan_tensor_product_sparse(
            x, y, filter_ir_out=out, irrep_normalization="norm"),
        "GTP-grid": lambda x, y: F.gaunt_tensor_product_s2grid(
            x, y, filter_ir_out=out, s2grid_fft=False, **grid),
        "GTP-fourier": lambda x, y: F.gaunt_tensor_product_2D_fourier(
            x, y, filter_ir_out=out, res_theta=300, res_phi=300, convolution_type="direct"),
        "Matrix-TP": lambda x, y: F.matrix_tensor_product(
            x, y, filter_ir_out=out, irrep_normalization="norm"),
        "VGTP-grid": lambda x, y: F.vector_gaunt_tensor_product_s2grid(
            x, y, filter_ir_out=out, **dict(grid, p_val1=-1, p_val2=-1)),
    }[variant]  # fmt: skip


# ---------------------------------------------------------------------------- worker (research env)


# Long by design: runs only inside the research environment (PriceofFreedom checkout, its
# venv), which this repository's tests cannot import, so a split could not be checked by a run.
def _worker(config: dict, deadline: float) -> None:
    import e3nn_jax as e3nn
    import jax
    import jax.numpy as jnp
    import numpy as np
    from freedom.tensor_products import functional as F  # the research code, from --pof
    from freedom.tensor_products.vector_spherical_harmonics import VSHCoeffs

    # functional.py uses VSHCoeffs without importing it (their benchmark never runs VGTP); bind
    # the name in that module's namespace at run time, the checkout itself is left untouched
    F.VSHCoeffs = VSHCoeffs
    from .pof_pairing import MIN_ROUNDS, PAIRED_MAX_S, paired

    def emit(obj):
        print(json.dumps(obj), flush=True)

    env = "venv --system-site-packages + chex; checkout on PYTHONPATH; VSHCoeffs bound"
    rounds = int(config.get("paired_rounds", paired_rounds(False)))
    cap = float(config.get("paired_max_s", PAIRED_MAX_S))
    how = (f"ours timed beside each research case in its worker, ABBA-interleaved: up to "
           f"{rounds} rounds, none added after {cap:g} s on a case beyond "
           f"{min(MIN_ROUNDS, rounds)}")  # fmt: skip
    emit({"meta": {"jax": jax.__version__, "e3nn_jax": e3nn.__version__, "paired": how,
                   "python": sys.version.split()[0], "environment": env}})  # fmt: skip

    def irreps(setting, lmax):
        if setting == "vsh":  # vector fields: VSH coefficients up to jmax = L, out jmax = 2L
            ir = VSHCoeffs.get_vsh_irreps(jmax=lmax, parity=-1)
            return ir, ir, VSHCoeffs.get_vsh_irreps(jmax=2 * lmax, parity=1)
        return setting_irreps(setting, lmax)

    def make(variant, lmax, out):
        return research_fn(F, variant, lmax, out)

    dtype = jnp.dtype(config.get("dtype", "float32"))
    dead: dict = {}
    for setting in config["settings"]:
        for lmax in config["lmaxes"][setting]:
            variants = config.get("variants", list(POF_VARIANTS))
            for variant in [v for v in variants if setting not in APPLIES[v]]:
                row = accounted(variant, setting, lmax, "")
                if row:  # not applicable: said without building inputs
                    emit(row)
            variants = [v for v in variants if setting in APPLIES[v]]
            if not variants:
                continue
            b = config["batch"]  # "setting:L" overrides "L" (tensorproducts.bench.batch_size)
            batch = int(b.get(f"{setting}:{lmax}", b[str(lmax)]))
            ir1, ir2, out = irreps(setting, lmax)
            k = jax.random.split(jax.random.PRNGKey(lmax), 3)
            x = e3nn.normal(ir1, k[0], (batch,), dtype=dtype)
            y = e3nn.normal(ir2, k[1], (batch,), dtype=dtype)
            rot = -e3nn.rand_matrix(k[2], (), dtype=dtype)
            for variant in variants:
                row = {"variant": f"pof:{variant}", "ours": POF_VARIANTS[variant],
                       "setting": setting, "L": lmax, "channels": 1, "mode": "fwd",
                       "batch": batch}  # fmt: skip
                if setting == "vsh":
                    row["ours_setting"] = "mimo"  # shown and compared beside our mimo rows
                if (variant, setting) in dead:
                    emit(dict(row, skipped=dead[(variant, setting)]))
                    continue
                if time.time() > deadline:
                    emit(dict(row, skipped="time budget of the research run exhausted"))
                    continue
                try:
                    fn = make(variant, lmax, out)
                    t0 = time.perf_counter()
                    compiled = jax.jit(fn).lower(x, y).compile()
                    row["compile_s"] = time.perf_counter() - t0
                    if row["compile_s"] > config.get("max_compile_s", 120.0):
                        dead[(variant, setting)] = (
                            f"too slow to build: {row['compile_s']:.0f} s compile at L={lmax}"
                        )
                    try:
                        ca = compiled.cost_analysis()
                        ca = ca[0] if isinstance(ca, list | tuple) else ca
                        row["flops"] = float(ca["flops"])
                        row["peak_bytes"] = int(compiled.memory_analysis().peak_memory_in_bytes)
                    except Exception:  # noqa: BLE001 - best effort
                        pass
                    t0 = time.perf_counter()
                    z = jax.block_until_ready(compiled(x, y))
                    first = time.perf_counter() - t0
                    if first > config["max_call_s"]:
                        dead[(variant, setting)] = f"too slow: {first:.2f} s per call at L={lmax}"
                        emit(dict(row, skipped=dead[(variant, setting)]))
                        continue
                    zr = compiled(x.transform_by_matrix(rot), y.transform_by_matrix(rot))
                    scale = float(jnp.max(jnp.abs(z.array)))
                    diff = jnp.abs(zr.array - z.transform_by_matrix(rot).array)
                    row["equivariance_error"] = float(jnp.max(diff)) / scale if scale else None
                    times = []
                    for r in range(config["warmup"] + config["repeats"]):
                        t0 = time.perf_counter()
                        jax.block_until_ready(compiled(x, y))
                        if r >= config["warmup"]:
                            times.append(time.perf_counter() - t0)
                    q = np.percentile(times, [25, 50, 75])
                    row.update(median_ms=1e3 * q[1], iqr_ms=1e3 * (q[2] - q[0]),
                               us_per_sample=1e6 * q[1] / batch, n_timed=len(times))  # fmt: skip
                    row["paired"] = (  # ours beside it, same process (never raises)
                        paired(compiled, row["ours"], setting, lmax, x, y, out, rounds=rounds,
                               max_s=cap, max_call_s=config["max_call_s"])
                        if time.time() < deadline
                        else {"skipped": "time budget of the research run exhausted"}
                    )  # fmt: skip
                except Exception as err:  # noqa: BLE001 - recorded, not hidden
                    dead[(variant, setting)] = f"failed: {type(err).__name__}: {str(err)[:200]}"
                    row["skipped"] = dead[(variant, setting)]
                emit(row)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pof", help="path of a PriceofFreedom checkout")
    ap.add_argument("--venv", default=str(DEFAULT_VENV), help="research virtual environment")
    ap.add_argument("--out", help="write {meta, rows} JSON here (default: stdout)")
    ap.add_argument("--quick", action="store_true", help="L = 1..3, batch 256, 5 repeats")
    ap.add_argument("--budget-s", type=float, default=300.0)
    ap.add_argument("--variants", help=f"comma-separated subset of {','.join(POF_VARIANTS)}")
    ap.add_argument("--paired-rounds", type=int, help="ABBA rounds of ours beside each research "
                    "case (default 15, --quick 5; 0: none)")  # fmt: skip
    ap.add_argument(
        "--interactability",
        action="store_true",
        help="instead of timing: Jacobian rank of the research vector Gaunt product with "
        "per-irrep linear weights around it (its VSH inputs), jmax = 1, 2, 3",
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        if args.interactability:
            from .pof_interactability import interactability_worker

            interactability_worker([1, 2, 3])
        else:
            _worker(json.loads(args.config), args.deadline)
        return 0
    if args.interactability:
        if not args.pof:
            ap.error("--interactability needs --pof PATH")
        py = ensure_venv(Path(args.venv))
        env = worker_env(args.pof)
        cmd = [str(py), "-m", WORKER_MODULE, "--worker", "--interactability"]
        return subprocess.run(cmd, env=env, cwd=str(Path(args.pof).resolve())).returncode
    ls = [1, 2, 3] if args.quick else list(range(1, 11))
    config = {
        "settings": ["siso", "simo", "mimo", "vsh"],
        "lmaxes": {s: ls for s in ("siso", "simo", "mimo", "vsh")},
        "batch": {
            str(l): 256
            if args.quick
            else (
                10000 if l <= 3 else 4000 if l <= 5 else 2000 if l == 6 else 1000 if l <= 8 else 500
            )
            for l in ls
        },  # fmt: skip
        "warmup": 2 if args.quick else 3,
        "repeats": 5 if args.quick else 15,
        "max_call_s": 3.0,
        "dtype": "float32",
        "paired_rounds": paired_rounds(args.quick)
        if args.paired_rounds is None
        else args.paired_rounds,
    }
    if args.variants:
        config["variants"] = check_variants(args.variants.split(","))
    rows, meta = run_pof(args.pof, config, venv=Path(args.venv), budget_s=args.budget_s,
                         log=lambda m: print(m, file=sys.stderr))  # fmt: skip
    text = json.dumps({"meta": meta, "rows": rows}, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
