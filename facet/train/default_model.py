"""Train and export the shipped default model (issue 7, scope 2).

Two steps, each one command::

    python scripts/train_default_model.py train --minutes 6 --work runs/default
    python scripts/train_default_model.py export --run runs/default/run --out facet/models/default

``prepare``
    only step 1 of ``train``.

``train``
    1. writes the material splits of ``data/distill/splits.json`` (train / val / test) as extxyz
       into ``--work`` (the same files ``scripts/bench_accuracy.py`` writes); for the sharded
       set ``data/distill2`` one MPTrj gzip per split of its ``splits.json``
       (:func:`facet.teacher.distill2.write_split_files`, the shards labelled so far);
    2. unless ``--max-steps`` is given, times a short run of ``--calibrate-steps`` steps of the
       same configuration (the slope of wall time over the logged steps after compilation) and
       sets ``run.max_steps`` so that the real run's schedule ends inside ``--minutes``;
    3. runs ``facet train --config facet/train/configs/default.yaml`` with those data paths and
       that step count; the chosen step count is printed and written to ``train.json`` so the
       run can be repeated with ``--max-steps``.

``export``
    Takes the best checkpoint of a run (EMA weights), keeps only what inference needs (the
    EMA parameters and the E0s; no optimiser state), and writes it as a checkpoint directory
    ``--out`` (``arrays.npz``, ``config.yaml``, ``meta.json``, ``COMPLETE``) together with the
    test-split metrics (``metrics.json``), reference predictions for the tests
    (``reference.json``, float64 on this machine) and the model card ``README.md``
    (:mod:`facet.train.model_card`).

``widen``
    The ``export`` of one checkpoint grown to ``--channels`` channels and ``--mixer-hidden``
    mixer fields with the function unchanged (:mod:`facet.nn.widen`): a run started from it
    with ``model.init_from`` continues training with more capacity.

``scripts/train_default_model.py`` is the entry point: it calls :func:`main`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from facet.train.model_card import is_sharded, write_card

DEFAULT_CONFIG = "facet/train/configs/default.yaml"


def _splits(data: str, work: Path) -> dict[str, str]:
    if is_sharded(data):  # data/distill2: MPTrj shards + splits.json
        from facet.teacher.distill2 import write_split_files

        out = write_split_files(data, str(work))
        for name, v in out.items():
            print(f"{name}: {v['frames']} frames of {v['materials']} materials "
                  f"({v['pending']} not labelled yet, {v['empty']} without a usable frame) "
                  f"-> {v['path']}", flush=True)
        return {name: v["path"] for name, v in out.items()}
    from facet.bench.accuracy import load_splits
    from facet.bench.train_peers import write_mace_extxyz

    splits = load_splits(data)
    paths = {}
    for name, frames in splits.items():
        paths[name] = str(work / f"{name}.extxyz")
        if not Path(paths[name]).exists():
            write_mace_extxyz(frames, paths[name])
        print(
            f"{name}: {len(frames)} structures of {len({f.material_id for f in frames})} "
            f"materials -> {paths[name]}",
            flush=True,
        )
    return paths


def _facet_train(config: str, paths: dict, out_dir: Path, extra: list[str]) -> float:
    cmd = [
        sys.executable,
        "-m",
        "facet",
        "train",
        "--config",
        config,
        f"data.train=[{paths['train']}]",
        f"data.val=[{paths['val']}]",
        f"run.out_dir={out_dir}",
        *extra,
    ]
    print("+", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def seconds_per_step(log_csv: Path, skip: int) -> float:
    """Steady-state seconds per optimiser step from a run's ``log.csv``.

    Each train row's ``wall_s`` is the time since the previous row; rows up to step ``skip``
    (compilation, warm-up) are dropped and the median over the rest is divided by the logging
    interval."""
    with open(log_csv) as fh:
        rows = [r for r in csv.DictReader(fh) if r["kind"] == "train" and r["wall_s"]]
    steps = [int(r["step"]) for r in rows]
    per = [
        float(r["wall_s"]) / (s - p)
        for r, s, p in zip(rows[1:], steps[1:], steps[:-1], strict=True)
        if s > skip
    ]
    if not per:
        raise RuntimeError(f"{log_csv}: too few logged steps after step {skip} to time a step")
    return float(np.median(per))


def cmd_train(args) -> int:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    paths = _splits(args.data, work)
    t_start = time.perf_counter()
    extra = list(args.override)
    info = {
        "data": args.data,
        "config": args.config,
        "overrides": extra,
        "minutes": args.minutes,
        "host": platform.node(),
        "python": platform.python_version(),
    }
    max_steps = args.max_steps
    if max_steps is None:
        cal = work / "calibrate"
        shutil.rmtree(cal, ignore_errors=True)
        n = args.calibrate_steps
        cal_wall = _facet_train(
            args.config,
            paths,
            cal,
            [*extra, f"run.max_steps={n}", "run.log_every=5", f"run.eval_every={10 * n}"],
        )
        sps = seconds_per_step(cal / "log.csv", skip=n // 4)
        # the real run repeats the calibration's fixed costs (data loading, compilation, one
        # validation); keep a further 10 % for the validations and checkpoints of every epoch
        fixed = max(0.0, cal_wall - n * sps)
        left = 60.0 * args.minutes - (time.perf_counter() - t_start) - 1.1 * fixed
        max_steps = max(n, int(0.9 * left / sps))
        info.update({"calibration_steps": n, "seconds_per_step": sps, "fixed_s": fixed})
        print(f"calibration: {sps * 1e3:.1f} ms/step -> run.max_steps={max_steps}", flush=True)
    info["max_steps"] = max_steps
    run_dir = work / "run"
    wall = _facet_train(args.config, paths, run_dir, [*extra, f"run.max_steps={max_steps}"])
    info["train_wall_s"] = wall
    try:
        import jax

        info["device"] = str(jax.devices()[0].device_kind)
    except Exception as exc:  # noqa: BLE001 - informational only
        info["device"] = f"unknown ({exc})"
    (work / "train.json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))
    return 0


# ----------------------------------------------------------------------------- export
REFERENCE_STRUCTURES = ("Si-diamond", "NaCl-rocksalt", "Cu-fcc-vacancy", "H2O-molecule")


def reference_atoms():
    """Small fixed structures (built with ASE; deterministic) for the reference predictions."""
    from ase.build import bulk, molecule

    si = bulk("Si", "diamond", a=5.43)
    si.positions[0] += (0.05, -0.03, 0.02)
    nacl = bulk("NaCl", "rocksalt", a=5.6).repeat((1, 1, 2))
    nacl.positions[1] += (0.0, 0.04, -0.02)
    cu = bulk("Cu", "fcc", a=3.62, cubic=True).repeat((2, 1, 1))
    del cu[3]
    h2o = molecule("H2O")
    h2o.center(vacuum=5.0)
    h2o.pbc = False
    return dict(zip(REFERENCE_STRUCTURES, (si, nacl, cu, h2o), strict=True))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def portable_run_path(run: str | os.PathLike) -> str:
    """Where the exported weights came from, without the exporting machine's file layout: the
    run's path relative to the working directory when it lies below it, else its last three
    folders (``<run>/checkpoints/<step>``)."""
    p = Path(run)
    try:
        return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(*p.parts[-3:]).as_posix() if p.is_absolute() else p.as_posix()


def export_model(run: str, out: Path, data: str = "data/distill",
                 widen: tuple[int, int] | None = None, seed: int = 0) -> Path:
    """Write the inference-only checkpoint of ``run``'s best step (or of the step folder
    ``run``) into ``out`` (atomically). With ``widen = (channels, mixer_hidden)`` the model is
    first grown to those widths computing the same function (:func:`facet.nn.widen.widen_model`,
    new weights drawn from ``seed``), for a run that goes on from it with ``model.init_from``."""
    import yaml
    from flax import nnx

    from facet.train.checkpoint import save_checkpoint
    from facet.train.model_io import load_model

    model, cfg, ckpt = load_model(run, report=lambda *a, **k: None)
    meta = json.loads((ckpt / "meta.json").read_text())
    config = cfg.to_dict()
    if widen is not None:
        from facet.nn.widen import widen_model

        model = widen_model(model, widen[0], widen[1], seed=seed)
        config["model"]["overrides"] = {**config["model"]["overrides"],
                                        "channels": int(widen[0]),
                                        "mixer_hidden": int(widen[1])}
    _, params, rest = nnx.split(model, nnx.Param, ...)
    tmp_root = Path(tempfile.mkdtemp(prefix="facet_export_"))
    name = Path(data).name
    config["data"]["train"] = [f"data/{name} (train split of splits.json)"]
    config["data"]["val"] = [f"data/{name} (val split of splits.json)"]
    config["run"]["out_dir"] = portable_run_path(run)
    d = save_checkpoint(
        tmp_root,
        int(meta["step"]),
        {"ema": params, "rest": rest},
        config_yaml=yaml.safe_dump(config, sort_keys=False),
        state={
            "exported_from_step": int(meta["step"]),
            "trained_steps": meta.get("state", {}).get("step"),
        },
        # the elements the run was trained on (facet.elements; written by facet train)
        supported_elements=meta.get("supported_elements"),
    )
    out.mkdir(parents=True, exist_ok=True)
    for name in ("arrays.npz", "config.yaml", "meta.json", "COMPLETE"):
        os.replace(d / name, out / f".{name}.tmp")
    for name in ("arrays.npz", "config.yaml", "meta.json", "COMPLETE"):  # marker last
        os.replace(out / f".{name}.tmp", out / name)
    shutil.rmtree(tmp_root, ignore_errors=True)
    return ckpt


def reference_predictions(model_dir: Path) -> dict:
    """The structures of :func:`reference_atoms` (numbers, positions, cell, pbc) with the shipped
    model's float64 and float32 predictions on them (energy eV, forces eV/A, stress eV/A^3)."""
    from facet.calculator import FacetCalculator

    out = {}
    for name, atoms in reference_atoms().items():
        out[name] = {
            "numbers": atoms.numbers.tolist(),
            "positions": atoms.positions.tolist(),
            "cell": np.asarray(atoms.cell).tolist(),
            "pbc": atoms.pbc.tolist(),
        }
    for dtype in ("float64", "float32"):
        calc = FacetCalculator(model=str(model_dir), dtype=dtype)
        for name, atoms in reference_atoms().items():
            atoms.calc = calc
            row = {
                "energy": float(atoms.get_potential_energy()),
                "forces": atoms.get_forces().tolist(),
            }
            if atoms.pbc.all():
                row["stress"] = atoms.get_stress().tolist()
            out[name][dtype] = row
    return out


def _sharded_metrics(model_dir: Path, data: str) -> dict:
    """Validation and test errors of the exported model on the sharded set's material split
    (:func:`facet.train.evaluate.evaluate`: the same metrics as the training log)."""
    from facet.teacher.shards import material_kinds, write_split_files
    from facet.train.evaluate import evaluate

    metrics = {}
    kinds = material_kinds(data)
    with tempfile.TemporaryDirectory() as tmp:
        files = write_split_files(data, tmp, splits=("val", "test"))
        for name in ("val", "test"):
            res = evaluate(model_dir, [files[name]["path"]], Path(tmp) / f"eval-{name}",
                           group_of=kinds.__getitem__, report=lambda *a, **k: None)
            metrics[name] = {**res["metrics"], "structures": files[name]["frames"],
                             "materials": files[name]["materials"],
                             "by_kind": res["per_group"]}
    return metrics


def _data_sha256(data: str) -> str:
    """sha256 of the data set: its one file, or splits.json and every shard in order."""
    root = Path(data)
    if not is_sharded(data):
        return _sha256(root / "mptrj_distill.json.gz")
    h = hashlib.sha256(_sha256(root / "splits.json").encode())
    for p in sorted((root / "shards").glob("*.json.gz")):
        h.update(_sha256(p).encode())
    return h.hexdigest()


def _card_inputs(args, result: dict) -> None:
    if args.card_extra:
        result["extra_sections"] = [*Path(args.card_extra).read_text().splitlines(), ""]
    if args.training_note:
        result["training"] = {**result.get("training", {}),
                              **json.loads(Path(args.training_note).read_text())}


def cmd_export(args) -> int:
    from facet.bench.accuracy import load_splits, predict_facet, score
    from facet.bench.train_peers import write_mace_extxyz
    from facet.nn.presets import count_parameters
    from facet.train.model_io import load_model

    out = Path(args.out)
    if args.card_only:
        result = json.loads((out / "metrics.json").read_text())
        result["card_note"] = args.card_note or result.get("card_note", "")
        tj = Path(args.run).parent / "train.json"
        if tj.exists():
            result["training"] = {
                k: v for k, v in json.loads(tj.read_text()).items() if k != "host"
            }
        _card_inputs(args, result)
        (out / "metrics.json").write_text(json.dumps(result, indent=1) + "\n")
        write_card(out, result, args.data)
        return 0
    ckpt = export_model(args.run, out, args.data)
    model, cfg, _ = load_model(out, report=lambda *a, **k: None)
    if is_sharded(args.data):
        metrics = _sharded_metrics(out, args.data)
    else:
        splits = load_splits(args.data)
        metrics = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("val", "test"):
                path = str(Path(tmp) / f"{name}.extxyz")
                write_mace_extxyz(splits[name], path)
                metrics[name] = score(splits[name], predict_facet(str(out), path, splits[name]))
                metrics[name]["structures"] = len(splits[name])
    train_info = {}
    tj = Path(args.run).parent / "train.json"
    if tj.exists():
        train_info = json.loads(tj.read_text())
        train_info.pop("host", None)
    result = {
        "params": count_parameters(model),
        "source_checkpoint_step": ckpt.name,
        "arrays_sha256": _sha256(out / "arrays.npz"),
        "metrics": metrics,
        "training": train_info,
        "data": args.data,
        "data_sha256": _data_sha256(args.data),
        "structures_per_step": cfg.data.max_graphs - 1,
        "card_note": args.card_note,
    }
    _card_inputs(args, result)
    (out / "metrics.json").write_text(json.dumps(result, indent=1) + "\n")
    ref = {"arrays_sha256": result["arrays_sha256"], "structures": reference_predictions(out)}
    (out / "reference.json").write_text(json.dumps(ref, indent=1) + "\n")
    write_card(out, result, args.data)
    print(json.dumps(result, indent=1))
    return 0


def cmd_widen(args) -> int:
    src = export_model(args.run, Path(args.out), args.data,
                       widen=(args.channels, args.mixer_hidden), seed=args.seed)
    print(f"{src} widened to {args.channels} channels and {args.mixer_hidden} mixer fields "
          f"-> {args.out} (go on with: facet train ... model.init_from={args.out})")
    return 0


def cmd_prepare(args) -> int:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    _splits(args.data, work)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="write the split files only")
    p.add_argument("--data", default="data/distill")
    p.add_argument("--work", default="runs/default")
    t = sub.add_parser("train", help="split, calibrate and train")
    t.add_argument("--data", default="data/distill")
    t.add_argument("--config", default=DEFAULT_CONFIG)
    t.add_argument("--work", default="runs/default")
    t.add_argument("--minutes", type=float, default=6.0, help="wall-clock budget of the run")
    t.add_argument("--calibrate-steps", type=int, default=60)
    t.add_argument("--max-steps", type=int, help="skip the timing run and train this many steps")
    t.add_argument("--override", action="append", default=[], help="extra key=value")
    e = sub.add_parser("export", help="write the inference checkpoint, metrics and card data")
    e.add_argument("--run", default="runs/default/run")
    e.add_argument("--out", default="facet/models/default")
    e.add_argument("--data", default="data/distill")
    e.add_argument("--card-note", default="", help="a limitation to state first in the card")
    e.add_argument("--card-extra", default=None,
                   help="a Markdown file whose sections go into the card before its "
                        "limitations (property suite, the README's main job)")
    e.add_argument("--training-note", default=None,
                   help="a JSON file of training facts for the card (trained_steps, device, "
                        "cpu_hours, note)")
    e.add_argument(
        "--card-only",
        action="store_true",
        help="rewrite README.md from the existing metrics.json (no export)",
    )
    w = sub.add_parser("widen", help="grow a checkpoint to more channels, same function "
                                     "(a start for model.init_from)")
    w.add_argument("--run", required=True, help="run folder (best step) or step folder")
    w.add_argument("--out", required=True, help="folder to write (must not hold a model)")
    w.add_argument("--data", default="data/distill2")
    w.add_argument("--channels", type=int, required=True)
    w.add_argument("--mixer-hidden", type=int, required=True)
    w.add_argument("--seed", type=int, default=0, help="seed of the new weights")
    args = ap.parse_args(argv)
    if args.cmd == "widen" and Path(args.out, "COMPLETE").exists():
        ap.error(f"--out {args.out} already holds a model; choose an empty folder")
    return {"prepare": cmd_prepare, "train": cmd_train, "export": cmd_export,
            "widen": cmd_widen}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
