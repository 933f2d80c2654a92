"""The model card ``README.md`` of the shipped default model (:mod:`facet.train.default_model`
``export``): one for a model trained on the sharded set ``data/distill2``, one for the single-file
set ``data/distill``."""

from __future__ import annotations

import json
from pathlib import Path


def is_sharded(data: str) -> bool:
    """Whether ``data`` is a sharded set (``shards/`` and ``splits.json``, ``data/distill2``)."""
    return (Path(data) / "shards").is_dir()


def _metric_row(m: dict, split: str) -> str:
    x = m[split]
    return (f"| {split} | {x.get('materials', '')} | {x['structures']} | "
            f"{x['energy_mae']:.1f} / {x['energy_rmse']:.1f} | "
            f"{x['forces_mae']:.1f} / {x['forces_rmse']:.1f} | "
            f"{x['stress_mae']:.2f} / {x['stress_rmse']:.2f} |")


def by_kind_section(x: dict) -> list[str]:
    """Markdown lines: the test split's errors per kind of structure (mean and median) under
    their heading, or none when the metrics predate the breakdown."""
    rows = x.get("by_kind")
    if not rows:
        return []

    def cell(r, key):
        return (f"{r[key + '_mae']:.1f} / {r[key + '_median']:.1f}"
                if key + "_mae" in r else "-")

    return [
        "### Test errors by kind of structure", "",
        "Mean and median side by side: where the median sits far below the mean, a few "
        "structures far from the training data carry most of the error.", "",
        "| kind | structures | energy MAE / median (meV/atom) | force MAE / median (meV/A) "
        "| stress MAE (meV/A^3) |", "|---|---|---|---|---|",
        *(f"| {k} | {r['structures']} | {cell(r, 'energy')} | {cell(r, 'forces')} | "
          + (f"{r['stress_mae']:.1f} |" if "stress_mae" in r else "- |")
          for k, r in rows.items()), ""]


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
        f"- Weights: EMA of the parameters of the exported checkpoint "
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
        f"- Trained {tr.get('trained_steps', '?')} optimiser steps (exported: "
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
        *by_kind_section(m["test"]),
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


def _distill_head(result: dict, data: str) -> list[str]:
    """Title, model and data sections of the card of a model trained on ``data/distill``."""
    stats = json.loads((Path(data) / "stats.json").read_text())
    manifest = json.loads((Path(data) / "manifest.json").read_text())
    a = stats["all"]
    return [
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
    ]


def _distill_tail(result: dict) -> list[str]:
    """Training, accuracy and limitations sections of the card of a model trained on
    ``data/distill``."""
    tr = result.get("training", {})
    m = result["metrics"]

    def row(split):
        x = m[split]
        return (
            f"| {split} | {x['structures']} | {x['energy_mae']:.1f} / {x['energy_rmse']:.1f} | "
            f"{x['forces_mae']:.1f} / {x['forces_rmse']:.1f} | "
            f"{x['stress_mae']:.2f} / {x['stress_rmse']:.2f} |"
        )

    return [
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


def write_card(out: Path, result: dict, data: str) -> str:
    """The model card ``README.md`` of the shipped model, from ``metrics.json``'s content."""
    if is_sharded(data):
        return write_card_sharded(out, result, data)
    text = "\n".join([*_distill_head(result, data), *_distill_tail(result)])
    (out / "README.md").write_text(text)
    return text
