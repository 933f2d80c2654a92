"""manifest.json and PROVENANCE.md for the SevenNet-0-labelled datasets (deterministic bytes).

Nothing time- or host-dependent beyond the recorded versions goes in, so rerunning with the
same seed and versions reproduces both files byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
import os

LABEL_CONVENTION = {
    "uncorrected_total_energy": "SevenNet-0 total energy, eV",
    "corrected_total_energy": (
        "MaterialsProject2020Compatibility applied to a ComputedStructureEntry with the teacher "
        "energy and MPRelaxSet parameters (run_type GGA or GGA+U, MPRelaxSet U values for "
        "oxides/fluorides, MPRelaxSet POTCAR symbols); null where the scheme does not apply"
    ),
    "energy_per_atom": "corrected_total_energy / n_atoms, eV/atom (null if corrected is null)",
    "force": "N x 3, eV/A, rounded to 1e-6",
    "stress": "3 x 3, kBar, VASP sign (positive = compressive): -stress_ase * 1602.1766208, "
              "rounded to 1e-5 kBar",
    "ef_per_atom, e_per_atom_relaxed, ef_per_atom_relaxed, magmom, bandgap": "null (not "
              "computable from the teacher)",
    "frame key": "<mp_id>-<calc_id>-<ionic_step>; calc_id kinds listed under calc_kinds",
}


def write_manifest_and_provenance(out_dir: str, *, title: str, command: str, seed: int,
                                  profile, materials: list[dict], files: dict[str, str],
                                  versions: dict, calc_kinds: dict, splits: dict | None,
                                  skipped: dict[str, str]) -> dict:
    n_frames = sum(m["n_frames"] for m in materials)
    counts = {"materials": sum(1 for m in materials if m["n_frames"] > 0), "frames": n_frames}
    if splits is not None:
        frames_of = {m["mp_id"]: m["n_frames"] for m in materials}
        counts["splits"] = {name: {"materials": len(ids),
                                   "frames": sum(frames_of[i] for i in ids)}
                            for name, ids in splits.items()}
    manifest = {
        "title": title,
        "command": command,
        "seed": seed,
        "teacher": "SevenNet-0 (sevenn pretrained '7net-0', 11Jul2024 checkpoint), CPU, 1 thread",
        "versions": versions,
        "profile": dataclasses.asdict(profile),
        "calc_kinds": {str(k): v for k, v in calc_kinds.items()},
        "label_convention": LABEL_CONVENTION,
        "files": {name: {"sha256": digest} for name, digest in files.items()},
        "counts": counts,
        "skipped_sources": skipped,
        "materials": materials,
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=False)
        f.write("\n")
    with open(os.path.join(out_dir, "PROVENANCE.md"), "w") as f:
        f.write(_provenance_md(manifest))
    return manifest


def _provenance_md(m: dict) -> str:
    lines = [f"# {m['title']}", "",
             "Generated, not hand-edited. Regenerate with (teacher environment, see "
             "docs/datasets.md):", "", "```", f"OMP_NUM_THREADS=1 {m['command']}", "```", "",
             f"- seed: {m['seed']}",
             f"- teacher: {m['teacher']}",
             f"- materials: {m['counts']['materials']}, frames: {m['counts']['frames']}", ""]
    if "splits" in m["counts"]:
        lines += ["## Splits (by material)", "", "| split | materials | frames |", "|---|---|---|"]
        lines += [f"| {k} | {v['materials']} | {v['frames']} |"
                  for k, v in m["counts"]["splits"].items()]
        lines.append("")
    lines += ["## Files (sha256)", ""]
    lines += [f"- `{name}`: `{v['sha256']}`" for name, v in m["files"].items()]
    lines += ["", "## Versions", ""]
    lines += [f"- {k}: {v}" for k, v in m["versions"].items()]
    lines += ["", "## Label convention", ""]
    lines += [f"- `{k}`: {v}" for k, v in m["label_convention"].items()]
    lines += ["", "## Trajectory kinds (calc_id in the frame key)", ""]
    lines += [f"- {k}: {v}" for k, v in m["calc_kinds"].items()]
    lines += ["", "## Sampling profile", ""]
    lines += [f"- {k}: {v}" for k, v in m["profile"].items()]
    if m["skipped_sources"]:
        lines += ["", "## Source structures not used", ""]
        lines += [f"- {k}: {v}" for k, v in m["skipped_sources"].items()]
    lines += ["", "## Materials", "",
              "| mp_id | source | formula | atoms | frames | MP2020 (frames) | dropped |",
              "|---|---|---|---|---|---|---|"]
    for mat in m["materials"]:
        mp = "; ".join(f"{k}: {v}" for k, v in mat.get("mp2020", {}).items())
        note = mat.get("skipped") or len(mat.get("dropped", []))
        lines.append(f"| {mat['mp_id']} | {mat['name']} | {mat.get('formula', '')} | "
                     f"{mat.get('n_atoms', '')} | {mat['n_frames']} | {mp} | {note} |")
    return "\n".join(lines) + "\n"
