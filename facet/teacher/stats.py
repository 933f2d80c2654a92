"""Statistics and histograms of an MPTrj-layout dataset (counts per split, elements, ranges).

Pure json/numpy (+ matplotlib for the optional PNGs); reads frames as written by
``facet.teacher.common.mptrj_frame``. Energies: uncorrected per atom (eV/atom); forces: Cartesian
components and per-atom norms (eV/A); stress: kBar, VASP sign (pressure = trace / 3).
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np


def _summary(x: np.ndarray) -> dict:
    q = np.percentile(x, [0, 1, 50, 99, 100])
    return {"min": float(q[0]), "p01": float(q[1]), "median": float(q[2]), "p99": float(q[3]),
            "max": float(q[4]), "mean": float(np.mean(x))}


def _arrays(frames: list[dict]) -> dict[str, np.ndarray]:
    n_atoms = np.array([len(f["force"]) for f in frames])
    e = np.array([f["uncorrected_total_energy"] for f in frames]) / n_atoms
    forces = np.concatenate([np.asarray(f["force"]) for f in frames])
    stress = np.stack([np.asarray(f["stress"]) for f in frames])
    return {"n_atoms": n_atoms, "energy_per_atom": e, "force_component": forces.ravel(),
            "force_norm": np.linalg.norm(forces, axis=1),
            "pressure_kbar": np.trace(stress, axis1=1, axis2=2) / 3.0,
            "stress_component_kbar": stress.reshape(len(frames), 9).ravel()}


def dataset_statistics(data: dict, splits: dict[str, list[str]] | None,
                       figures: str | None = None) -> dict:
    groups = {"all": list(data)}
    if splits:
        groups.update(splits)
    out = {}
    for name, ids in groups.items():
        frames = [fr for mid in ids for fr in data[mid].values()]
        if not frames:
            out[name] = {"materials": len(ids), "frames": 0}
            continue
        arr = _arrays(frames)
        atom_counts, frame_counts = Counter(), Counter()
        for fr in frames:
            symbols = [s["species"][0]["element"] for s in fr["structure"]["sites"]]
            atom_counts.update(symbols)
            frame_counts.update(set(symbols))
        out[name] = {
            "materials": len(ids), "frames": len(frames), "atoms": int(arr["n_atoms"].sum()),
            "corrected_energy_null_frames": sum(f["corrected_total_energy"] is None
                                                for f in frames),
            "n_elements": len(atom_counts),
            "elements_atoms": dict(sorted(atom_counts.items())),
            "elements_frames": dict(sorted(frame_counts.items())),
            **{k: _summary(v) for k, v in arr.items()},
        }
    if figures:
        _plot(data, groups, figures)
    return out


def _plot(data: dict, groups: dict, folder: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    arrays = {name: _arrays([fr for mid in ids for fr in data[mid].values()])
              for name, ids in groups.items() if ids}
    panels = [("energy_per_atom", "uncorrected energy per atom (eV/atom)", False),
              ("force_norm", "|F| per atom (eV/A)", True),
              ("pressure_kbar", "pressure = tr(stress)/3 (kBar, + compressive)", True),
              ("n_atoms", "atoms per frame", False)]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (key, label, logy) in zip(axes.ravel(), panels, strict=True):
        lo = min(np.percentile(a[key], 0.1) for a in arrays.values())
        hi = max(np.percentile(a[key], 99.9) for a in arrays.values())
        bins = np.linspace(lo, hi, 60)
        for name, a in arrays.items():
            ax.hist(np.clip(a[key], lo, hi), bins=bins, histtype="step", density=True, label=name)
        ax.set_xlabel(label)
        ax.set_yscale("log" if logy else "linear")
    axes[0, 0].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "distill_histograms.png"), dpi=100,
                metadata={"Software": None})
    plt.close(fig)

    counts = Counter()
    for mat in data.values():
        for fr in mat.values():
            counts.update(s["species"][0]["element"] for s in fr["structure"]["sites"])
    names = sorted(counts, key=lambda el: -counts[el])
    fig, ax = plt.subplots(figsize=(14, 4))
    ax.bar(range(len(names)), [counts[n] for n in names])
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylabel("atoms (all frames)")
    ax.set_yscale("log")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "distill_elements.png"), dpi=100,
                metadata={"Software": None})
    plt.close(fig)


def stats_markdown(stats: dict) -> str:
    """Markdown tables of :func:`dataset_statistics` output (for docs/datasets.md)."""
    names = list(stats)
    rows = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label in (("materials", "materials"), ("frames", "frames"), ("atoms", "atoms"),
                       ("n_elements", "elements"),
                       ("corrected_energy_null_frames", "frames with null corrected energy")):
        rows.append(f"| {label} | " + " | ".join(str(stats[n].get(key, "")) for n in names) + " |")
    for key, label, fmt in (("n_atoms", "atoms per frame", ".0f"),
                            ("energy_per_atom", "energy per atom (eV/atom)", ".3f"),
                            ("force_component", "force component (eV/A)", ".2f"),
                            ("force_norm", "force norm per atom (eV/A)", ".2f"),
                            ("pressure_kbar", "pressure (kBar, + compressive)", ".0f"),
                            ("stress_component_kbar", "stress component (kBar)", ".0f")):
        cells = []
        for n in names:
            s = stats[n].get(key)
            cells.append("" if s is None else
                         f"{s['min']:{fmt}} / {s['p01']:{fmt}} / {s['median']:{fmt}} / "
                         f"{s['p99']:{fmt}} / {s['max']:{fmt}}")
        rows.append(f"| {label}: min / 1% / median / 99% / max | " + " | ".join(cells) + " |")
    atoms = stats[names[0]]["elements_atoms"]
    frames = stats[names[0]]["elements_frames"]
    elems = sorted(atoms, key=lambda el: -atoms[el])
    rows += ["", f"Elements ({len(elems)}; atoms over all frames / frames containing it):", ""]
    rows.append(", ".join(f"{el} {atoms[el]}/{frames[el]}" for el in elems))
    return "\n".join(rows) + "\n"
