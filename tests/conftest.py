"""Shared fixtures. Nothing here changes global JAX state: float64 is opt-in per test."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

# -- parallel runs (pytest-xdist) ------------------------------------------------------------
# The suite runs in parallel by default: `-n auto` (one worker per physical core, at most
# MAX_WORKERS), whole test files per worker (`--dist loadfile`: a module's fixtures are built once
# and its tests run in order, as in a serial run). `-n 0` or `-p no:xdist` runs serially in one
# process; `-n N` / `--maxprocesses` / `--dist` given on the command line win. Without
# pytest-xdist installed the suite runs serially.
MAX_WORKERS = 8  # each worker imports JAX and compiles its own programs (~1-2 GB each)

_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # set by xdist in its workers: "gw0", "gw1", ...
if _WORKER:
    # Share the CPUs between the workers instead of letting every worker's XLA, OpenMP and BLAS
    # pools take all of them (two workers on two cores would each run two-thread pools). NPROC
    # sizes XLA's CPU intra-op pool (it otherwise follows the CPU affinity); subprocesses inherit
    # these. Smaller values set by the caller are kept.
    _cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    _per = max(1, (_cpus or 1) // max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
    for _var in ("NPROC", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        _have = os.environ.get(_var, "")
        if not (_have.isdigit() and 0 < int(_have) <= _per):
            os.environ[_var] = str(_per)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config):
    """Default to `-n auto --maxprocesses MAX_WORKERS --dist loadfile` when pytest-xdist is
    installed and no `-n` was given (runs before xdist turns `-n` into workers)."""
    opt = config.option
    # Never in a worker: xdist resets a worker's `-n` to None, and it must not start workers.
    if _WORKER or hasattr(config, "workerinput"):
        return (yield)
    if config.pluginmanager.hasplugin("xdist") and getattr(opt, "numprocesses", 0) is None:
        opt.numprocesses = "auto"
        if opt.maxprocesses is None:
            opt.maxprocesses = MAX_WORKERS
        if opt.dist == "no":
            opt.dist = "loadfile"
    return (yield)


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per physical core this process may run on (a `taskset` or container
    CPU set counts, unlike xdist's own count); a single usable core runs the tests in this
    process. xdist's PYTEST_XDIST_AUTO_NUM_WORKERS still wins."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        import psutil

        cores = psutil.cpu_count(logical=config.option.numprocesses == "logical")
    except ImportError:
        cores = None
    n = min(cores or usable or 1, usable or 1)
    return n if n > 1 else 0


# Compiled programs go to a per-session folder, never to the user's cache (facet.compile_cache);
# subprocesses of the tests inherit it. A folder set by the caller is kept. Parallel workers
# each get their own subfolder: JAX writes cache entries in place, and a test that reads the
# cache must not see another process's half-written file.
if "FACET_COMPILE_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="facet-test-jax-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["FACET_COMPILE_CACHE"] = os.environ["FACET_TEST_SESSION_CACHE"] = _cache
if _WORKER and os.environ["FACET_COMPILE_CACHE"] == os.environ.get("FACET_TEST_SESSION_CACHE"):
    os.environ["FACET_COMPILE_CACHE"] = os.path.join(os.environ["FACET_COMPILE_CACHE"], _WORKER)


def _enable_x64():
    # ``jax.experimental.enable_x64`` moved to ``jax.enable_x64`` (a context manager) in 0.10.
    import jax

    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # pragma: no cover - older JAX

    return enable_x64()


@pytest.fixture
def x64():
    """Run the test body with 64-bit JAX types enabled (restored afterwards)."""
    import jax.numpy as jnp

    with _enable_x64():
        assert jnp.zeros(1).dtype == jnp.float64
        yield



# -- no test may leave global JAX flags changed ------------------------------------------------
# A flag left set by one test changes every later test in the same process, and which tests
# share a process depends on how xdist hands out files: such a leak shows up as a rare,
# order-dependent difference elsewhere (issue 19). Float64 belongs in ``jax.enable_x64``
# contexts (the ``x64`` fixture); a test that must change a global flag restores it.
_JAX_FLAGS = ("jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_dtype_promotion",
              "jax_numpy_rank_promotion", "jax_disable_jit", "jax_debug_nans")


def _jax_flags() -> dict:
    import jax

    return {k: getattr(jax.config, k) for k in _JAX_FLAGS}


@pytest.fixture(autouse=True)
def _no_global_jax_flag_changes(request):
    """Fail the test that changed a global JAX flag (and put the flag back, so that the
    tests after it run as they would have)."""
    import jax

    before = _jax_flags()
    yield
    changed = {k: (v, now) for k, v in before.items() if (now := getattr(jax.config, k)) != v}
    for k, (v, _) in changed.items():
        jax.config.update(k, v)
    if changed:
        pytest.fail(f"{request.node.nodeid} left global JAX flags changed (before, after): "
                    f"{changed}; restore them, or use a context such as jax.enable_x64(True)",
                    pytrace=False)
