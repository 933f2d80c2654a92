"""MACE's own trainer (``mace_run_train`` from mace-torch) as a peer runner for Facet's benchmarks.

Two jobs, one file:

* ``train`` (standard library only; runs under any Python): builds the ``mace_run_train`` command
  for a MACE-MP-0-sized model, runs it in a subprocess with its work directory outside the
  repository, optionally stops it at a wall-clock budget, and parses what MACE wrote
  (``<work>/logs/*.log`` and ``<work>/results/*_train.txt``, one JSON object per optimiser step
  and per validation) into one row: parameter count, seconds per step, structures/s, atoms/s,
  epochs run, and the last validation MAE (energy meV/atom, forces meV/A, stress meV/A^3).
* ``predict`` (runs in the MACE environment, needs torch + mace): loads a trained ``.model`` and
  writes per-structure predictions (energy eV, forces eV/A, stress eV/A^3 ASE sign) for an extxyz
  file as JSON, so that Facet's harness scores both trainers with one metric function.

Architecture (MACE-MP-0, Batatia et al., arXiv 2401.00096): ScaleShiftMACE, r_max 6 A,
10 Bessel radial functions, polynomial cutoff p = 5, correlation order 3, 2 interactions;
"small" = hidden irreps 128x0e (max_L 0), "medium" = 128x0e+128x1o (max_L 1). mace-torch defaults
to float64; we pass ``--default_dtype float32`` (Facet trains in float32) and record it.
No ``--foundation_model``: nothing is downloaded.

Labels: the extxyz files carry MACE's ``REF_energy`` / ``REF_forces`` / ``REF_stress`` keys
(ASE >= 3.23 moves plain ``energy``/``forces``/``stress`` into ``atoms.calc``, which MACE warns
about), written by :func:`facet.data.extxyz.write_extxyz` with ``prefix="REF_"``.

Throughput definition: MACE times each optimiser step itself (``take_step``: host-to-device copy,
forward, forces and stress by autograd, backward, clipping, optimiser and EMA update; data loading
excluded, as in Facet's benchmark). Steps of the first epoch's first ``skip_steps`` are dropped
(allocator warm-up). The training loader drops its last partial batch, so every timed step holds
exactly ``batch_size`` structures: structures/s = batch_size / median step time; atoms/s =
structures/s x the mean atoms per training structure (the expectation under MACE's uniform
shuffling; MACE does not log atoms per batch).

    python facet/bench/peers/mace_train.py train --train t.extxyz --valid v.extxyz --size small \\
        --batch-size 8 --epochs 3 --work /tmp/mace_run --out row.json
    /path/to/mace-venv/bin/python facet/bench/peers/mace_train.py predict --model m.model \\
        --data test.extxyz --out preds.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: Default location of the MACE environment; overridden by ``--venv`` or ``$FACET_MACE_VENV``.
DEFAULT_VENV = os.path.join(os.path.expanduser("~"), "venvs", "mace")

#: MACE-MP-0 sizes: name -> (hidden irreps, max_L).
SIZES = {"small": ("128x0e", 0), "medium": ("128x0e+128x1o", 1)}
#: The 89 elements of MPTrj / MACE-MP-0 (Z 1-83 and 89-94).
MPTRJ_Z = (*range(1, 84), *range(89, 95))


@dataclass(frozen=True)
class MaceRun:
    """One ``mace_run_train`` invocation (fields map one to one onto its flags)."""

    train_file: str
    valid_file: str
    work_dir: str
    size: str = "small"
    batch_size: int = 8
    epochs: int = 1000
    budget_s: float | None = None  # wall-clock limit of the training loop; None = epochs only
    lr: float = 0.01
    e0s: str = "average"
    dtype: str = "float32"
    seed: int = 0
    test_file: str | None = None
    eval_interval: int = 1
    ema: bool = True
    #: elements of the embedding; None lets MACE take those of the training file (its parameter
    #: count then covers only them); MPTRJ_Z gives MACE-MP-0's 89 elements
    atomic_numbers: tuple[int, ...] | None = None
    extra: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if self.size not in SIZES:
            raise ValueError(f"unknown MACE size {self.size!r}; choose one of {sorted(SIZES)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")


def find_mace(venv: str | None = None) -> tuple[str | None, str]:
    """``(path of mace_run_train, "")`` or ``(None, reason)`` when the environment is missing."""
    venv = venv or os.environ.get("FACET_MACE_VENV") or DEFAULT_VENV
    exe = Path(venv) / "bin" / "mace_run_train"
    if not Path(venv).is_dir():
        return None, f"MACE environment {venv} does not exist (set --venv or FACET_MACE_VENV)"
    if not exe.is_file():
        return None, f"{exe} not found: install mace-torch in {venv}"
    return str(exe), ""


def skipped_row(size: str, reason: str) -> dict:
    """The row reported instead of numbers when MACE cannot run: never a silent omission."""
    return {"trainer": "mace", "model": f"mace-{size}", "status": f"skipped: {reason}"}


def command(run: MaceRun, exe: str, name: str = "mace") -> list[str]:
    """The ``mace_run_train`` argument list for ``run``."""
    hidden, max_l = SIZES[run.size]
    cmd = [
        exe, "--name", name, "--work_dir", run.work_dir, "--seed", str(run.seed),
        "--train_file", run.train_file, "--valid_file", run.valid_file,
        "--energy_key", "REF_energy", "--forces_key", "REF_forces", "--stress_key", "REF_stress",
        "--model", "ScaleShiftMACE", "--hidden_irreps", hidden, "--max_L", str(max_l),
        "--r_max", "6.0", "--correlation", "3", "--num_interactions", "2",
        "--num_radial_basis", "10", "--num_cutoff_basis", "5",
        "--E0s", run.e0s, "--default_dtype", run.dtype, "--device", "cpu",
        "--batch_size", str(run.batch_size), "--valid_batch_size", str(run.batch_size),
        "--max_num_epochs", str(run.epochs), "--eval_interval", str(run.eval_interval),
        "--lr", str(run.lr), "--loss", "universal", "--compute_stress", "True",
        "--error_table", "PerAtomMAEstressvirials", "--plot", "False", "--num_workers", "0",
    ]  # fmt: skip
    if run.ema:
        cmd += ["--ema", "--ema_decay", "0.99"]
    if run.test_file:
        cmd += ["--test_file", run.test_file]
    if run.atomic_numbers:
        cmd += ["--atomic_numbers", "[" + ",".join(str(z) for z in run.atomic_numbers) + "]"]
    return cmd + list(run.extra)


_PARAMS = re.compile(r"(?:Total number of parameters|trainable parameters)\D*?(\d+)")


def parse_params(log_text: str) -> int | None:
    """Parameter count from MACE's log (``...Total number of parameters: N``)."""
    hits = _PARAMS.findall(log_text)
    return int(hits[-1]) if hits else None


def parse_results(lines: list[str], *, batch_size: int, mean_atoms: float,
                  skip_steps: int = 2) -> dict:
    """Throughput and validation metrics from MACE's ``results/*_train.txt`` JSON lines.

    Rows with ``"mode": "opt"`` carry the step time (``"time"``, s) and ``"epoch"``; rows with
    ``"mode": "eval"`` carry ``mae_e_per_atom`` (eV/atom), ``mae_f`` (eV/A), ``mae_stress``
    (eV/A^3) and ``epoch`` (``None`` for the evaluation before training). Malformed lines raise
    ``ValueError`` naming the line number.
    """
    opt, evals = [], []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"MACE results line {i} is not JSON ({e}): {line[:80]!r}") from None
        if row.get("mode") == "opt":
            opt.append(row)
        elif row.get("mode") == "eval":
            evals.append(row)
    first_epoch = opt[0]["epoch"] if opt else None
    k = 0
    times = []
    for row in opt:
        if row["epoch"] == first_epoch and k < skip_steps:
            k += 1
            continue
        times.append(float(row["time"]))
    out: dict = {"steps_timed": len(times), "steps_total": len(opt),
                 "epochs_run": len({r["epoch"] for r in opt}), "batch_size": batch_size}
    if times:
        med = statistics.median(times)
        out.update({
            "step_s": med, "step_s_min": min(times), "step_s_max": max(times),
            "train_loop_s": sum(float(r["time"]) for r in opt),
            "structures_per_s": batch_size / med,
            "structures_per_s_min": batch_size / max(times),
            "structures_per_s_max": batch_size / min(times),
            "atoms_per_s": batch_size * mean_atoms / med,
            "atoms_per_s_min": batch_size * mean_atoms / max(times),
            "atoms_per_s_max": batch_size * mean_atoms / min(times),
        })  # fmt: skip
    done = [r for r in evals if r.get("epoch") is not None]
    if done:
        last = done[-1]
        out["val_epoch"] = last["epoch"]
        for key, scale, name in (("mae_e_per_atom", 1e3, "val_energy_mae_mev_atom"),
                                 ("mae_f", 1e3, "val_forces_mae_mev_a"),
                                 ("mae_stress", 1e3, "val_stress_mae_mev_a3")):
            if last.get(key) is not None:
                out[name] = float(last[key]) * scale
    return out


def mean_atoms_per_structure(path: str) -> float:
    """Mean atom count of the frames of an extxyz file (from the count lines only)."""
    counts, n = [], 0
    with open(path) as fh:
        while True:
            line = fh.readline()
            if not line:
                break
            if not line.strip():
                continue
            n = int(line.split()[0])
            counts.append(n)
            for _ in range(n + 1):
                fh.readline()
    if not counts:
        raise ValueError(f"{path} holds no structures")
    return sum(counts) / len(counts)


def _mace_versions(venv: str) -> dict:
    py = Path(venv) / "bin" / "python"
    code = ("import json, mace, torch, e3nn; print(json.dumps({'mace': mace.__version__, "
            "'torch': torch.__version__, 'e3nn': e3nn.__version__}))")
    try:
        res = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300)
        return json.loads(res.stdout.strip().splitlines()[-1])
    except Exception as e:  # noqa: BLE001 - versions are informative, never fatal
        return {"error": f"{type(e).__name__}: {e}"}


def train(run: MaceRun, *, venv: str | None = None, threads: int = 1, name: str = "mace",
          log_to: str | None = None) -> dict:
    """Run ``mace_run_train`` for ``run`` and return the parsed row (or a skipped row).

    With ``run.budget_s`` the process is stopped (SIGTERM, then SIGKILL) when the budget has
    elapsed since its launch (start-up, data loading and statistics count, as Facet's compilation
    does in its budget); a second, training-free invocation
    (``--restart_latest`` with ``--max_num_epochs`` set to the epoch of the last checkpoint, i.e.
    the best validation so far, EMA weights) then makes MACE write its ``.model`` and error tables.
    """
    exe, why = find_mace(venv)
    if exe is None:
        return skipped_row(run.size, why)
    venv = str(Path(exe).parent.parent)
    Path(run.work_dir).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    cmd = command(run, exe, name)
    log_path = Path(log_to or Path(run.work_dir) / "stdout.txt")
    results = Path(run.work_dir) / "results"
    t0 = time.perf_counter()
    rc, stopped, samples = _supervise(cmd, log_path, env, run.work_dir, budget_s=run.budget_s,
                                      results=results)
    wall = time.perf_counter() - t0
    text = log_path.read_text(errors="replace")
    if rc != 0 and not stopped:
        tail = "\n".join(text.splitlines()[-15:])
        raise RuntimeError(f"mace_run_train failed (exit {rc}); see {log_path}:\n"
                           f"{tail}")
    files = sorted(results.glob("*_train.txt"))
    if not files:
        raise RuntimeError(f"mace_run_train wrote no results/*_train.txt in {run.work_dir}")
    row = {"trainer": "mace", "model": f"mace-{run.size}", "status": "ok",
           "params": parse_params(text) or _params_from_logs(run.work_dir),
           "dtype": run.dtype, "threads": threads, "wall_s": wall, "stopped_at_budget": stopped,
           "budget_s": run.budget_s, "command": " ".join(cmd[1:]),
           "versions": _mace_versions(venv)}
    row.update(parse_results(files[-1].read_text().splitlines(), batch_size=run.batch_size,
                             mean_atoms=mean_atoms_per_structure(run.train_file)))
    share = cpu_share(samples)
    row["cpu_share"] = share
    if share and "structures_per_s" in row:
        for k in ("structures_per_s", "atoms_per_s"):
            row[k.replace("_per_s", "_per_cpu_s")] = row[k] / share
    if stopped:
        ckpts = sorted(Path(run.work_dir, "checkpoints").glob("*_epoch-*.pt"))
        if not ckpts:
            row["status"] = "no checkpoint within the budget"
            return row
        epoch = max(int(re.search(r"_epoch-(\d+)", c.name).group(1)) for c in ckpts)
        final = MaceRun(**{**asdict(run), "epochs": epoch, "budget_s": None,
                           "extra": (*run.extra, "--restart_latest")})
        flog = Path(run.work_dir) / "finalise.txt"
        rc, _, _ = _supervise(command(final, exe, name), flog, env, run.work_dir, budget_s=None,
                              results=results)
        if rc != 0 and _DONE_MARK not in flog.read_text(errors="replace"):
            raise RuntimeError(f"MACE could not write its model from the last checkpoint; see "
                               f"{flog}")
        row["checkpoint_epoch"] = epoch
    models = sorted(Path(run.work_dir).glob(f"{name}*.model"))
    row["model_file"] = str(models[0]) if models else None
    return row


#: MACE logs this after saving ``<name>.model``; what follows (error tables on the whole
#: training set) is not needed here and is skipped by stopping the process.
_DONE_MARK = "Computing metrics for training, validation, and test sets"


def _supervise(cmd, log_path: Path, env: dict, cwd: str, *, budget_s: float | None,
               results: Path) -> tuple[int, bool, list]:
    """Run ``cmd``, polling every 0.5 s; returns ``(exit code, stopped at budget, samples)``.

    Stops the process group at ``budget_s`` after launch (SIGTERM, SIGKILL after 30 s), or once
    MACE has saved its model (:data:`_DONE_MARK` in the log). ``samples`` are the
    ``(wall, CPU, steps)`` polls used by :func:`cpu_share`.
    """
    t0 = time.perf_counter()
    stopped = False
    samples = []
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
        while proc.poll() is None:
            time.sleep(0.5)
            steps = _count_opt_lines(results)
            if steps:
                samples.append((time.perf_counter(), _cpu_seconds(proc.pid), steps))
            over = budget_s is not None and time.perf_counter() - t0 > budget_s
            done = _DONE_MARK in log_path.read_text(errors="replace")
            if over or done:
                stopped = stopped or over
                stop(proc)
                return (0 if done and not over else proc.returncode), stopped, samples
    return proc.returncode, stopped, samples


def stop(proc) -> None:
    """Stop a process started in its own session: SIGTERM to its group, SIGKILL after 30 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _count_opt_lines(results: Path) -> int:
    n = 0
    for f in results.glob("*_train.txt"):
        with open(f, errors="replace") as fh:
            n += sum('"mode": "opt"' in line for line in fh)
    return n


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a running process (Linux ``/proc/<pid>/stat``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def cpu_share(samples: list[tuple[float, float | None, int]]) -> float | None:
    """Fraction of one core the trainer got while its optimiser steps were being logged.

    ``samples`` are ``(wall, cpu, steps logged)`` polls; the window runs from the first poll that
    saw a step to the last poll at which the step count grew. On a shared machine the wall-clock
    rate divided by this share is the rate per CPU second (what the step costs, not how long it
    waited for a core).
    """
    good = [s for s in samples if s[1] is not None]
    if len(good) < 2:
        return None
    last = max(range(len(good)), key=lambda i: (good[i][2], -i))
    (w0, c0, _), (w1, c1, _) = good[0], good[last]
    return (c1 - c0) / (w1 - w0) if w1 > w0 and c1 > c0 else None


def _params_from_logs(work_dir: str) -> int | None:
    for p in sorted(Path(work_dir, "logs").glob("*.log")):
        n = parse_params(p.read_text(errors="replace"))
        if n is not None:
            return n
    return None


def count_model_parameters(model_file: str, venv: str | None = None) -> int:
    """Trainable parameters of a saved MACE ``.model`` (counted in the MACE environment).

    ``mace_run_train`` does not log the count, so the model it wrote is loaded and
    ``sum(p.numel() for p in model.parameters())`` taken (buffers such as E0s, scale and shift
    are not parameters).
    """
    exe, why = find_mace(venv)
    if exe is None:
        raise RuntimeError(why)
    py = Path(exe).parent / "python"
    code = ("import sys, torch; m = torch.load(sys.argv[1], map_location='cpu', "
            "weights_only=False); print(sum(p.numel() for p in m.parameters()))")
    res = subprocess.run([str(py), "-c", code, model_file], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="1",
                                  TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1"))
    if res.returncode != 0:
        raise RuntimeError(f"cannot count the parameters of {model_file}:\n{res.stderr[-2000:]}")
    return int(res.stdout.strip().splitlines()[-1])


def predict(model_path: str, data: str, out: str, dtype: str = "float32") -> int:
    """Predictions of a trained MACE ``.model`` on every frame of ``data`` (MACE venv only)."""
    import ase.io
    import torch
    from mace.calculators import MACECalculator

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    calc = MACECalculator(model_paths=model_path, device="cpu", default_dtype=dtype)
    rows = []
    for i, atoms in enumerate(ase.io.iread(data, index=":", format="extxyz")):
        atoms.calc = calc
        rows.append({"index": i, "frame_id": str(atoms.info.get("frame_id", i)),
                     "energy": float(atoms.get_potential_energy()),
                     "forces": atoms.get_forces().tolist(),
                     "stress": atoms.get_stress(voigt=False).tolist()})
    Path(out).write_text(json.dumps(rows))
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="run mace_run_train and print/write the parsed row")
    t.add_argument("--train", required=True)
    t.add_argument("--valid", required=True)
    t.add_argument("--test")
    t.add_argument("--work", required=True, help="work directory (outside the repository)")
    t.add_argument("--size", choices=sorted(SIZES), default="small")
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--epochs", type=int, default=1000)
    t.add_argument("--budget-s", type=float)
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--venv")
    t.add_argument("--out")
    p = sub.add_parser("predict", help="predictions of a .model on an extxyz file (MACE venv)")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = ap.parse_args(argv)
    if args.cmd == "predict":
        n = predict(args.model, args.data, args.out, args.dtype)
        print(f"wrote {n} predictions to {args.out}")
        return 0
    run = MaceRun(train_file=args.train, valid_file=args.valid, test_file=args.test,
                  work_dir=args.work, size=args.size, batch_size=args.batch_size,
                  epochs=args.epochs, budget_s=args.budget_s, dtype=args.dtype)
    row = train(run, venv=args.venv, threads=args.threads)
    text = json.dumps(row, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
