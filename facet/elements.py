"""Which elements a model supports, and the check every entry point makes before computing.

A trained model declares the elements it was trained on: ``supported_elements`` (a sorted list of
element symbols) in its checkpoint's ``meta.json``, written by ``facet train`` from the elements
of the training structures. Checkpoints written before that field existed get theirs from the
fitted reference energies (E0s): an element absent from the training data keeps E0 = 0 exactly
(:func:`facet.train.e0.fit_atomic_energies` solves only over the elements present), so the
non-zero E0s are the training elements.

A loaded model carries them as ``model.supported_numbers`` (a tuple of atomic numbers); the
calculator, ``facet relax``/``md``/``evaluate`` and the batched paths refuse any other element
with :class:`facet.errors.InputError` naming the elements (:func:`check_supported`). A model
without the attribute (a preset with random weights, a test potential) accepts every element.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = [
    "symbols_of",
    "numbers_of",
    "supported_from_e0",
    "supported_elements_of_checkpoint",
    "check_supported",
    "attach_supported",
]


def symbols_of(numbers: Iterable[int]) -> list[str]:
    """Sorted (by atomic number) element symbols of ``numbers``, each once."""
    from ase.data import chemical_symbols

    return [chemical_symbols[z] for z in sorted({int(z) for z in numbers})]


def numbers_of(symbols: Iterable[str]) -> tuple[int, ...]:
    from ase.data import atomic_numbers

    out = []
    for s in symbols:
        if s not in atomic_numbers or atomic_numbers[s] == 0:
            raise InputError(f"supported_elements: {s!r} is not an element symbol")
        out.append(atomic_numbers[s])
    return tuple(sorted(set(out)))


def supported_from_e0(e0: np.ndarray) -> tuple[int, ...]:
    """Atomic numbers whose fitted reference energy is non-zero (old checkpoints)."""
    e0 = np.asarray(e0).reshape(-1)
    return tuple(int(z) for z in np.flatnonzero(e0) if z >= 1)


def supported_elements_of_checkpoint(ckpt: str | Path, model=None) -> tuple[int, ...] | None:
    """Atomic numbers a checkpoint supports: ``meta.json``'s ``supported_elements``, else the
    non-zero E0s of ``model`` (loaded from that checkpoint); None when neither is known."""
    meta_path = Path(ckpt) / "meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("supported_elements"):
            return numbers_of(meta["supported_elements"])
    e0 = getattr(model, "atomic_energies", None)
    if e0 is not None:
        values = np.asarray(e0[...] if hasattr(e0, "__getitem__") else e0)
        if values.ndim == 1 and np.any(values):
            return supported_from_e0(values)
    return None


def attach_supported(model, ckpt: str | Path):
    """Set ``model.supported_numbers`` from the checkpoint (see the module); returns model."""
    numbers = supported_elements_of_checkpoint(ckpt, model)
    if numbers is not None:
        model.supported_numbers = numbers
    return model


def check_supported(model, numbers: Iterable[int], where: str) -> None:
    """Raise :class:`InputError` if ``numbers`` are not elements 1..118 or include elements the
    model does not declare in ``supported_numbers``; the message names them."""
    z = np.asarray(list(numbers) if not isinstance(numbers, np.ndarray) else numbers)
    bad = sorted(set(z[(z < 1) | (z > 118)].tolist()))
    if bad:
        raise InputError(
            f"{where}: atomic numbers {bad} are not chemical elements (expected 1..118)"
        )
    supported = getattr(model, "supported_numbers", None)
    if supported is None:
        return
    missing = sorted(set(z.tolist()) - {int(s) for s in np.asarray(supported).tolist()})
    if missing:
        allowed = ", ".join(symbols_of(supported))
        raise InputError(
            f"{where}: the model does not support element(s) {', '.join(symbols_of(missing))} "
            f"(not in its training data; it supports {allowed})"
        )
