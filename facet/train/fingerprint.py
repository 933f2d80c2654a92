"""What identifies a run's training data: the fingerprints checked on resume and the elements a
checkpoint supports.

* :func:`size_fingerprint`: the structure sizes the batcher plans with. A resumed run recomputes
  its data position from the step, which is only right on data of the same sizes.
* :func:`content_fingerprint`: the content (positions, cells, labels). Relabelled data keep the
  sizes but change this one; resuming on them needs ``--allow-data-change``.
* :func:`training_elements`: the element symbols a checkpoint records as supported.
"""

from __future__ import annotations

import hashlib

import numpy as np
from ase.data import atomic_numbers

from facet.elements import numbers_of, supported_from_e0, symbols_of

__all__ = ["size_fingerprint", "content_fingerprint", "training_elements",
           "finetuned_elements"]


def size_fingerprint(batcher) -> str:
    """Identifies the training set by its structure sizes (cheap for lazy sources)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(batcher._n_nodes, np.int64).tobytes())
    h.update(np.ascontiguousarray(batcher._n_edges, np.int64).tobytes())
    return h.hexdigest()[:16]


def _manifest(graphs) -> tuple[object, dict | None]:
    """The preprocessed dataset behind ``graphs`` and its manifest (``None`` for a list)."""
    ds = getattr(graphs, "ds", None)
    manifest = getattr(ds, "manifest", None)
    return ds, (manifest if isinstance(manifest, dict) else None)


def content_fingerprint(graphs) -> str:
    """SHA-256 of the training data's content: every structure's numbers, positions, cell and
    labels, in order (a preprocessed dataset: its shards' recorded SHA-256s and the split).
    Relabelled data (same structures, other energies) gives another fingerprint."""
    h = hashlib.sha256()
    ds, manifest = _manifest(graphs)
    if manifest is not None and manifest.get("splits"):
        h.update(str(getattr(ds, "split", "")).encode())
        for name in sorted(manifest["splits"]):
            for shard in manifest["splits"][name].get("shards", []):
                h.update(f"{name}:{shard.get('file')}:{shard.get('sha256')}".encode())
        return h.hexdigest()[:32]
    for g in graphs:
        for arr in (g.numbers, g.positions, g.cell, g.energy, g.forces, g.stress):
            if arr is None:
                h.update(b"-")
                continue
            a = np.ascontiguousarray(np.asarray(arr, np.float64))
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()[:32]


def element_numbers(graphs) -> set[int]:
    """Atomic numbers present in ``graphs`` (reads every structure)."""
    seen: set[int] = set()
    for g in graphs:
        seen.update(np.unique(np.asarray(g.numbers)).tolist())
    return seen


def training_elements(graphs) -> list[str]:
    """Sorted element symbols of the training structures (a preprocessed split: from its
    manifest's statistics, without reading the shards)."""
    ds, manifest = _manifest(graphs)
    split = getattr(ds, "split", None)
    if manifest is not None and split in manifest.get("splits", {}):
        els = manifest["splits"][split].get("stats", {}).get("elements")
        if els:
            return symbols_of(atomic_numbers[s] for s in els)
    return symbols_of(element_numbers(graphs))


def finetuned_elements(supported: list[str], atomic_energies: np.ndarray) -> list[str]:
    """A fine-tuned model supports its training elements and the pretrained ones (those with a
    non-zero E0)."""
    return symbols_of({*numbers_of(supported), *supported_from_e0(atomic_energies)})
