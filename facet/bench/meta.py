"""What a benchmark row was measured on: versions, hardware, load average, thread settings.

Every selection of ``facet bench`` stores :func:`run_meta` once per run and :func:`row_meta`
(the few fields a single row needs to stand alone: device kind, dtype, seed, load average at the
time of the row) in each row, so that rows copied out of a report still say where they came from.
Only standard-library probes and ``jax.devices()``: works on a CPU box and on a CUDA machine
without torch or any peer installed.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import time

#: Distributions whose versions are recorded (absent ones are recorded as ``None``).
PACKAGES = (
    "facet",
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "e3nn-jax",
    "numpy",
    "scipy",
    "ase",
    "vesin",
    "matplotlib",
)

#: Thread-count environment variables recorded with every run.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "XLA_FLAGS",
    "JAX_PLATFORMS",
)


def versions(packages=PACKAGES) -> dict[str, str | None]:
    """Installed versions of ``packages`` (default :data:`PACKAGES`) plus Python's (None for a
    package that is not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def cpu_model() -> str:
    """The CPU's marketing name from ``/proc/cpuinfo`` (Linux), else :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (``None`` where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def device_info() -> dict:
    """JAX backend, device kind (e.g. ``"NVIDIA H200"`` or ``"cpu"``) and device count."""
    import jax

    devs = jax.devices()
    d = devs[0]
    return {
        "backend": jax.default_backend(),
        "device_kind": getattr(d, "device_kind", str(d)),
        "device": str(d),
        "device_count": len(devs),
    }


def git_state() -> dict:
    """Commit of the source checkout and whether its tracked files differ from it (or None)."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "modified_files": None}
    if head.returncode != 0:
        return {"commit": None, "modified_files": None}
    return {"commit": head.stdout.strip(), "modified_files": len(dirty.stdout.splitlines())}


def run_meta(
    *, dtype: str | None = None, seed: int | None = None, quick: bool = False, command: str = ""
) -> dict:
    """The header of one benchmark run (stored once in its JSON)."""
    return {
        "command": command,
        "quick": quick,
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "dtype": dtype,
        "seed": seed,
        "versions": versions(),
        "hardware": {
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "system": platform.system(),
            **device_info(),
        },
        "threads": {k: os.environ.get(k) for k in THREAD_VARS},
        "loadavg_start": load_average(),
        "git": git_state(),
    }


def row_meta(*, dtype: str | None, seed: int | None) -> dict:
    """Fields repeated in every row: device kind, dtype, seed, load average now."""
    info = device_info()
    return {
        "device_kind": info["device_kind"],
        "backend": info["backend"],
        "dtype": dtype,
        "seed": seed,
        "loadavg": load_average(),
    }
