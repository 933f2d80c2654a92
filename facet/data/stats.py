"""Streaming statistics of a dataset: counts, elements and label ranges, in one pass.

Used by ``facet preprocess`` (stored in the manifest, per split) and ``facet info`` (on a raw
file). Everything is accumulated in O(1) memory per frame except the element histogram (at most
118 entries) and the set of material ids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["DatasetStats"]


@dataclass
class _Range:
    lo: float = math.inf
    hi: float = -math.inf
    total: float = 0.0
    n: int = 0

    def add(self, values) -> None:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.size == 0:
            return
        self.lo = min(self.lo, float(v.min()))
        self.hi = max(self.hi, float(v.max()))
        self.total += float(v.sum())
        self.n += int(v.size)

    def as_dict(self) -> dict | None:
        if self.n == 0:
            return None
        return {"min": self.lo, "max": self.hi, "mean": self.total / self.n, "count": self.n}


@dataclass
class DatasetStats:
    """Accumulates per-frame statistics; :meth:`as_dict` gives a JSON-ready summary.

    Units: energies eV (``energy_per_atom`` eV/atom), forces eV/A (Cartesian components and
    norms), stress eV/A^3 (ASE sign; all nine components), distances Angstrom.
    """

    frames: int = 0
    atoms: int = 0
    edges: int = 0
    materials: set = field(default_factory=set)
    elements: dict = field(default_factory=dict)
    atoms_per_frame: _Range = field(default_factory=_Range)
    edges_per_frame: _Range = field(default_factory=_Range)
    energy_per_atom: _Range = field(default_factory=_Range)
    force_component: _Range = field(default_factory=_Range)
    force_norm: _Range = field(default_factory=_Range)
    stress_component: _Range = field(default_factory=_Range)
    labelled: dict = field(default_factory=lambda: {"energy": 0, "forces": 0, "stress": 0})

    def add(self, frame, n_edges: int | None = None) -> None:
        """Add a :class:`~facet.data.frames.Frame` (or a :class:`~facet.data.Graph`)."""
        n = int(frame.numbers.shape[0])
        self.frames += 1
        self.atoms += n
        if n_edges is not None:
            self.edges += int(n_edges)
            self.edges_per_frame.add([n_edges])
        mid = getattr(frame, "material_id", None)
        if mid is None:  # a Graph: its key is "<material>/<frame>"
            mid = getattr(frame, "key", "").rsplit("/", 1)[0]
        self.materials.add(mid)
        zs, counts = np.unique(frame.numbers, return_counts=True)
        for z, c in zip(zs.tolist(), counts.tolist(), strict=True):
            self.elements[z] = self.elements.get(z, 0) + c
        self.atoms_per_frame.add([n])
        if frame.energy is not None:
            self.labelled["energy"] += 1
            self.energy_per_atom.add([frame.energy / n])
        if frame.forces is not None:
            self.labelled["forces"] += 1
            self.force_component.add(frame.forces)
            self.force_norm.add(np.linalg.norm(frame.forces, axis=1))
        if frame.stress is not None:
            self.labelled["stress"] += 1
            self.stress_component.add(frame.stress)

    def as_dict(self) -> dict:
        from ase.data import chemical_symbols

        out = {
            "frames": self.frames,
            "materials": len(self.materials),
            "atoms": self.atoms,
            "elements": {chemical_symbols[z]: c for z, c in sorted(self.elements.items())},
            "n_elements": len(self.elements),
            "labelled_frames": dict(self.labelled),
            "atoms_per_frame": self.atoms_per_frame.as_dict(),
            "energy_per_atom_eV": self.energy_per_atom.as_dict(),
            "force_component_eV_per_A": self.force_component.as_dict(),
            "force_norm_eV_per_A": self.force_norm.as_dict(),
            "stress_component_eV_per_A3": self.stress_component.as_dict(),
        }
        if self.edges:
            out["edges"] = self.edges
            out["edges_per_frame"] = self.edges_per_frame.as_dict()
            # The mean number of neighbours within the cutoff: models normalise messages by it.
            out["avg_neighbors"] = self.edges / max(self.atoms, 1)
        return out
