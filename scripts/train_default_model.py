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
    (``reference.json``, float64 on this machine) and the model card ``README.md``.
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

DEFAULT_CONFIG = "facet/train/configs/default.yaml"


def _splits(data: str, work: Path) -> dict[str, str]:
    if (Path(data) / "shards").is_dir():  # data/distill2: MPTrj shards + splits.json
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


def export_model(run: str, out: Path, data: str = "data/distill") -> Path:
    """Write the inference-only checkpoint of ``run``'s best step into ``out`` (atomically)."""
    import yaml
    from flax import nnx

    from facet.train.checkpoint import save_checkpoint
    from facet.train.model_io import load_model

    model, cfg, ckpt = load_model(run, report=lambda *a, **k: None)
    meta = json.loads((ckpt / "meta.json").read_text())
    _, params, rest = nnx.split(model, nnx.Param, ...)
    tmp_root = Path(tempfile.mkdtemp(prefix="facet_export_"))
    config = cfg.to_dict()
    name = Path(data).name
    config["data"]["train"] = [f"data/{name} (train split of splits.json)"]
    config["data"]["val"] = [f"data/{name} (val split of splits.json)"]
    config["run"]["out_dir"] = str(Path(run).as_posix())
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


def _metric_row(m: dict, split: str) -> str:
    x = m[split]
    return (f"| {split} | {x.get('materials', '')} | {x['structures']} | "
            f"{x['energy_mae']:.1f} / {x['energy_rmse']:.1f} | "
            f"{x['forces_mae']:.1f} / {x['forces_rmse']:.1f} | "
            f"{x['stress_mae']:.2f} / {x['stress_rmse']:.2f} |")


def write_card_sharded(out: Path, result: dict, data: str) -> str:
    """The model card of a model trained on a sharded set (``data/distill2``)."""
    from facet.teacher.distill2 import summarize

    summ = summarize(data)
    sp = summ["splits"]
    tr = result.get("training", {})
    meta = json.loads((out / "meta.json").read_text())
    elements = meta.get("supported_elements") or []
    m = result["metrics"]
    import yaml

    e0_kind = yaml.safe_load((out / "config.yaml").read_text())["model"].get(
        "atomic_energies", "fit")
    kinds = ", ".join(f"{k} {v['materials']}" for k, v in summ["kinds"].items())
    lines = [
        '# Facet default model (`FacetCalculator(model="default")`)', "",
        "**Distilled from SevenNet-0, not DFT.** A facet-s network (spline radial functions, "
        "exact quadratic grid mixing; docs/architecture.md) trained to reproduce SevenNet-0's "
        f"energies, forces and stresses on `{data}`. It is as good as that teacher at best, and "
        "worse where it has not seen similar structures.", "",
        "## Model", "",
        f"- Architecture: `facet-s` preset, {result['params']:,} parameters, float32 weights "
        "(float64 evaluation supported), cutoff 5.0 A, ZBL repulsion at short range.",
        f"- Weights: EMA of the parameters at the best validation step "
        f"({result['source_checkpoint_step']}); `arrays.npz` sha256 `{result['arrays_sha256']}`.",
        f"- Supported elements ({len(elements)}; the calculator refuses any other, naming it): "
        + " ".join(elements) + ".", "",
        "## Data and label convention", "",
        f"- `{data}` (docs/datasets.md, `{data}/PROVENANCE.md`): "
        f"{sum(v['frames'] for v in sp.values()):,} frames of "
        f"{sum(v['materials'] for v in sp.values()):,} materials in {summ['shards']} shards; "
        f"kinds (materials): {kinds}. Split by material, stratified by kind: train / val / test "
        f"= {sp['train']['materials']} / {sp['val']['materials']} / {sp['test']['materials']} "
        f"materials ({sp['train']['frames']} / {sp['val']['frames']} / {sp['test']['frames']} "
        "frames).",
        "- Labels: SevenNet-0's **uncorrected** total energies (no MP2020 anion/U correction), "
        "forces, and stresses in eV/A^3 with ASE's sign (positive = tensile).",
        ("- Energy references: least-squares E0s on the composition-balanced training split "
         "(an A/B against SevenNet-0's isolated-atom energies chose them; docs/training.md)"
         if e0_kind == "fit" else
         f"- Energy references: the E0 table `{e0_kind}` (SevenNet-0's isolated atoms)")
        + ", fixed during training, as are the per-element scale and shift.",
        f"- Data sha256 (splits.json and shards): `{result['data_sha256']}`.", "",
        "## Training", "",
        f"- Recipe: `{tr.get('config', 'facet/train/configs/distill2.yaml')}` (facet-s, "
        f"{result.get('structures_per_step', '?')} structures per step, AdamW, warm-up-stable-"
        "decay schedule, EMA), resumed across working periods from committed checkpoints.",
        f"- Trained {tr.get('trained_steps', '?')} optimiser steps (best validation at "
        f"{result['source_checkpoint_step']}); device: {tr.get('device', 'CPU, one core')}"
        + (f"; {tr['cpu_hours']:.1f} CPU-hours" if "cpu_hours" in tr else "") + ".",
        *([f"- {tr['note']}."] if tr.get("note") else []), "",
        "## Accuracy against the teacher (held-out materials)", "",
        "| split | materials | structures | energy MAE / RMSE (meV/atom) | force MAE / RMSE "
        "(meV/A) | stress MAE / RMSE (meV/A^3) |", "|---|---|---|---|---|---|",
        _metric_row(m, "val"), _metric_row(m, "test"), "",
        "Targets of issue 16 on the test split: force MAE <= 80 meV/A, energy MAE <= 30 "
        "meV/atom, stress MAE <= 5 meV/A^3. The learning curve (docs/benchmarks/accuracy/"
        "learning_curve) shows how far each is and what limits it.", "",
        *result.get("extra_sections", []),
        "## Limitations", "",
        *([f"- **{result['card_note']}**"] if result.get("card_note") else []),
        f"- A small distillation set ({sum(v['frames'] for v in sp.values()):,} frames, vs 1.58 "
        "million in MPTrj) and a CPU training budget: expect larger errors than SevenNet-0 "
        "itself, most of all for rare elements and bonding far from the data's kinds.",
        "- Inherits the teacher's functional (PBE/PBE+U as in MPTrj) and its errors.",
        "- Not for production science without validation against DFT on your system.", "",
    ]
    text = "\n".join(lines)
    (out / "README.md").write_text(text)
    return text


def write_card(out: Path, result: dict, data: str) -> str:
    """The model card ``README.md`` of the shipped model, from ``metrics.json``'s content."""
    if _sharded(data):
        return write_card_sharded(out, result, data)
    stats = json.loads((Path(data) / "stats.json").read_text())
    manifest = json.loads((Path(data) / "manifest.json").read_text())
    a = stats["all"]
    tr = result.get("training", {})
    m = result["metrics"]

    def row(split):
        x = m[split]
        return (
            f"| {split} | {x['structures']} | {x['energy_mae']:.1f} / {x['energy_rmse']:.1f} | "
            f"{x['forces_mae']:.1f} / {x['forces_rmse']:.1f} | "
            f"{x['stress_mae']:.2f} / {x['stress_rmse']:.2f} |"
        )

    lines = [
        '# Facet default model (`FacetCalculator(model="default")`)',
        "",
        "**Distilled from SevenNet-0, not DFT.** A facet-s network (spline radial functions, "
        "CG message product, exact quadratic grid mixing; see docs/architecture.md) trained to "
        "reproduce SevenNet-0's energies, forces and stresses on the distillation set "
        "`data/distill`. It is as good as that teacher at best, and worse where it has not seen "
        "similar structures.",
        "",
        "## Model",
        "",
        f"- Architecture: `facet-s` preset, {result['params']:,} trainable parameters, float32 "
        "weights (float64 evaluation supported), cutoff 5.0 A, ZBL repulsion at short range.",
        f"- Weights: EMA of the parameters at the best validation step "
        f"({result['source_checkpoint_step']}); `arrays.npz` sha256 "
        f"`{result['arrays_sha256']}`.",
        "- Files: `arrays.npz` (EMA parameters + E0s only, no optimiser state), `config.yaml` "
        "(the training configuration), `meta.json` + `COMPLETE` (checkpoint format with "
        "checksums), `metrics.json`, `reference.json` (predictions used by the tests).",
        "",
        "## Data and label convention",
        "",
        f"- `data/distill` ({manifest.get('command', '')}): {a['frames']:,} frames of "
        f"{a['materials']} materials, {a['n_elements']} elements, "
        f"{stats['all']['n_atoms'].get('min', '?')}-{stats['all']['n_atoms'].get('max', '?')} "
        "atoms per frame; strained, rattled, relaxation and MD snapshots of Materials Project "
        "structures, ASE dcdft elemental crystals and prototype substitutions "
        "(docs/datasets.md). Split by material (splits.json): train / val / test = "
        f"{stats['train']['frames']} / {stats['val']['frames']} / {stats['test']['frames']} "
        "frames.",
        f"- Labels: {manifest.get('teacher', 'SevenNet-0')}. Energies are the teacher's "
        "**uncorrected** total energies (SevenNet-0 was trained on MPTrj's uncorrected "
        "PBE/PBE+U energies): no MP2020 anion/U correction is applied; to compare with "
        "corrected Materials Project energies apply pymatgen's MaterialsProject2020Compatibility "
        "yourself. Stress in eV/A^3 with ASE's sign (positive = tensile), Voigt order in ASE.",
        f"- Dataset file sha256: `{result['data_sha256']}`.",
        "",
        "## Training",
        "",
        "- Recipe: `facet/train/configs/default.yaml`"
        + (
            f" through {tr['trained_by']}"
            if tr.get("trained_by")
            else " via `scripts/train_default_model.py train`"
        )
        + ", exported with `scripts/train_default_model.py export`.",
        f"- Steps: {tr.get('max_steps', '?')} optimiser steps of up to "
        f"{result.get('structures_per_step', '?')} structures (best validation at "
        f"{result['source_checkpoint_step']}); device: {tr.get('device', '?')}"
        + (
            f"; training wall time {tr['train_wall_s'] / 60:.1f} min (compilation and data "
            "loading included)"
            if "train_wall_s" in tr
            else ""
        )
        + ".",
        *([f"- {tr['note']}."] if tr.get("note") else []),
        "",
        "## Accuracy against the teacher (held-out materials)",
        "",
        "| split | structures | energy MAE / RMSE (meV/atom) | force MAE / RMSE (meV/A) | "
        "stress MAE / RMSE (meV/A^3) |",
        "|---|---|---|---|---|",
        row("val"),
        row("test"),
        "",
        "Errors are against SevenNet-0's labels, per energy per atom, per force component and "
        "per stress component (definitions in facet/train/loss.py). The validation and test "
        "splits hold a handful of materials each, so these figures are noisy; "
        "docs/benchmarks/accuracy/ compares Facet with MACE trained on the same data.",
        "",
        "## Limitations",
        "",
        *([f"- **{result['card_note']}**"] if result.get("card_note") else []),
        "- Trained on a small distillation set (about 10^4 frames, vs 1.58 million in MPTrj): "
        "expect larger errors than SevenNet-0 itself, especially for elements and bonding "
        "environments that are rare in `data/distill` (element counts in docs/datasets.md).",
        "- Bulk crystals only: molecules, surfaces, defects and liquids were not in the data.",
        "- Inherits the teacher's functional (PBE/PBE+U as in MPTrj) and its errors.",
        "- Not for production science without validation against DFT on your system.",
        "",
    ]
    text = "\n".join(lines)
    (out / "README.md").write_text(text)
    return text


def _sharded(data: str) -> bool:
    return (Path(data) / "shards").is_dir()


def _sharded_metrics(model_dir: Path, data: str) -> dict:
    """Validation and test errors of the exported model on the sharded set's material split
    (:func:`facet.train.evaluate.evaluate`: the same metrics as the training log)."""
    from facet.teacher.distill2 import write_split_files
    from facet.train.evaluate import evaluate

    metrics = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = write_split_files(data, tmp, splits=("val", "test"))
        for name in ("val", "test"):
            res = evaluate(model_dir, [files[name]["path"]], Path(tmp) / f"eval-{name}",
                           report=lambda *a, **k: None)
            metrics[name] = {**res["metrics"], "structures": files[name]["frames"],
                             "materials": files[name]["materials"]}
    return metrics


def _data_sha256(data: str) -> str:
    """sha256 of the data set: its one file, or splits.json and every shard in order."""
    root = Path(data)
    if not _sharded(data):
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
    if _sharded(args.data):
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
    args = ap.parse_args(argv)
    return {"prepare": cmd_prepare, "train": cmd_train, "export": cmd_export}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
