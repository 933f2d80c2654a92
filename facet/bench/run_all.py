"""``facet bench all``: every selection in turn, each in its own process, then the summary page.

Order: ``tp``, ``model``, ``scaling``, ``dynamics`` (``python -m facet.bench.dynamics --only all``:
the ``md`` and ``relax`` selections in one run, so that they share their peer processes),
``train``, ``accuracy``, then ``summary``. One process per selection keeps their memory apart
and lets one failure leave the others' reports intact; the failure is recorded. Every process
gets one BLAS/OpenMP thread unless the caller set otherwise (timings on shared machines).
Peers: ``--venvs-dir`` (default ``$FACET_VENVS_DIR``, else ``~/venvs`` when it exists) and
``--nequix-model`` (default ``$FACET_NEQUIX_MODEL``); a missing one is reported as skipped by
the selection that needs it. ``all.json`` in the output root records each selection's exit
code, wall time, CPU time of its processes and load average.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .common import write_json
from .meta import load_average, run_meta

SEQUENCE = ("tp", "model", "scaling", "dynamics", "train", "accuracy")
THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def peer_options(venvs_dir: str | None, nequix_model: str | None) -> tuple[str | None, str | None]:
    """Peer environments and Nequix weights from the options, the environment or ``~/venvs``."""
    venvs = venvs_dir or os.environ.get("FACET_VENVS_DIR")
    if not venvs and (Path.home() / "venvs").is_dir():
        venvs = str(Path.home() / "venvs")
    return venvs, nequix_model or os.environ.get("FACET_NEQUIX_MODEL")


def commands(args, venvs: str | None, nequix: str | None) -> dict[str, list[str]]:
    """The arguments of ``python`` for each selection (``-m facet bench ...`` or ``-m MODULE``),
    each writing under ``--root`` (``ROOT/quick`` with ``--quick``), where the summary reads."""
    q = ["--quick"] if args.quick else []
    base = Path(args.root) / "quick" if args.quick else Path(args.root)
    out = {}
    for sel in SEQUENCE:
        where = ["--out", str(base / sel)]  # under the root the summary reads
        if sel == "dynamics":
            dyn = ["--only", "all", *q, *where]
            dyn += ["--venvs-dir", venvs] if venvs else []
            dyn += ["--nequix-model", nequix] if nequix else []
            out[sel] = ["-m", "facet.bench.dynamics", *dyn]
            continue
        cmd = ["-m", "facet", "bench", sel, *q]
        if sel == "tp" and args.pof:
            cmd += ["--pof", args.pof]
        cmd += ["--root", str(args.root)] if sel in ("train", "accuracy") else where
        out[sel] = cmd
    return out


def run(args) -> int:
    skip = set(filter(None, args.skip.split(",")))
    unknown = skip - set(SEQUENCE) - {"summary"}
    if unknown:
        print(f"error: unknown selections in --skip: {sorted(unknown)}", file=sys.stderr)
        return 2
    venvs, nequix = peer_options(args.venvs_dir, args.nequix_model)
    env = {k: os.environ.get(k, v) for k, v in THREADS.items()}
    root = args.root / "quick" if args.quick else args.root
    record = {
        "meta": run_meta(
            quick=args.quick, command="facet bench all" + (" --quick" if args.quick else "")
        ),
        "peers": {"venvs_dir": "set" if venvs else None, "nequix_model": "set" if nequix else None},
        "selections": [],
    }
    t_all = time.perf_counter()
    for sel, cmd in commands(args, venvs, nequix).items():
        entry = {"selection": sel, "loadavg_start": load_average()}
        if sel in skip:
            entry["status"] = "skipped: --skip"
            record["selections"].append(entry)
            continue
        t0, cpu0 = time.perf_counter(), _children_cpu()
        print(f"[bench all] {sel}", flush=True)
        code, tail = _run_module(cmd, env)
        entry.update(
            wall_s=time.perf_counter() - t0,
            cpu_s=_children_cpu() - cpu0,
            returncode=code,
            status="ok" if code == 0 else f"failed: exit {code}: {tail[-300:]}",
            loadavg_end=load_average(),
        )
        record["selections"].append(entry)
        write_json(root / "all.json", record)
    if "summary" not in skip:
        from .summary import write_page

        date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        page = write_page(
            root, command="facet bench summary" + (" --quick" * args.quick), date=date
        )
        print(f"wrote {page}")
    record["wall_s"] = time.perf_counter() - t_all
    record["meta"]["loadavg_end"] = load_average()
    write_json(root / "all.json", record)
    for e in record["selections"]:
        print(
            f"  {e['selection']:9s} {e.get('wall_s', 0):8.1f} s wall "
            f"{e.get('cpu_s', 0):8.1f} s CPU  {e['status'][:100]}"
        )
    print(f"  total     {record['wall_s']:8.1f} s wall")
    return (
        0
        if all(
            e["status"] == "ok" or e["status"].startswith("skipped") for e in record["selections"]
        )
        else 1
    )


def _children_cpu() -> float:
    """User + system CPU seconds of finished child processes (and theirs) so far."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run_module(cmd: list[str], env: dict) -> tuple[int, str]:
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, **env),
    )
    tail: list[str] = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        tail = (tail + [line.rstrip()])[-20:]
    return proc.wait(), "\n".join(tail)
