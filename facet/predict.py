"""Energies, forces, stress and per-atom energies of many unlabelled structures, batched.

:func:`predict_structures` packs the structures into padded batches the way training does
(:func:`facet.data.batch.pack_indices`): every structure that fits the *budget* (the batch
shape a model was trained with, ``data.max_nodes/max_edges/max_graphs`` of its checkpoint) shares
that one padded shape, so one compilation serves them all; a structure too large for it gets a
shape of its own from the geometric bucket ladder of :func:`facet.data.bucket_size` (one
compilation per bucket). Inputs are never reordered in the output. :func:`write_predictions`
writes extxyz with ASE's calculator keys (``energy``, ``free_energy``, ``forces``, ``stress``,
``energies``), so ``ase.io.read`` gives the results back through ``atoms.get_forces()`` etc.

Conventions as :class:`facet.FacetCalculator`: eV, eV/A, stress eV/A^3 in Voigt order with ASE's
sign, only for cells periodic in all three directions (none for a slab or a molecule); the same
input checks (unsupported elements, NaN positions, overlapping atoms) raise naming the structure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from flax import nnx
from tqdm import tqdm

from .calculator import _check_geometry, _check_numbers, add_dispersion
from .data import bucket_size, collate
from .data.batch import BatchShape, pack_indices
from .data.neighbors import graph_from_atoms
from .dispersion import make_dispersion
from .dynamics.relax import to_atoms
from .errors import InputError
from .model_io import MODEL_PATHS, load_model, model_path, resolve_checkpoint, x64
from .physics import full_to_voigt, predict

__all__ = ["DEFAULT_BUDGET", "Predictor", "predict_structures", "write_predictions",
           "training_budget"]

#: Batch shape used when the model carries no training configuration (nodes and graphs include
#: one padding slot each): the shipped model's CPU training shape, rounded.
DEFAULT_BUDGET = (129, 4096, 9)


def training_budget(spec: Any) -> tuple[int, int, int] | None:
    """``(max_nodes, max_edges, max_graphs)`` of the checkpoint behind ``spec`` (a registered
    name or a folder), or None for a model object or a preset."""
    if not isinstance(spec, str | os.PathLike):
        return None
    name = os.fspath(spec)
    if name not in MODEL_PATHS and not Path(name).exists():
        return None
    ckpt = resolve_checkpoint(model_path(name), report=lambda m: None)
    data = (yaml.safe_load((ckpt / "config.yaml").read_text()) or {}).get("data", {})
    try:
        return int(data["max_nodes"]), int(data["max_edges"]), int(data["max_graphs"])
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class Predictor:
    """A model's jitted prediction (energy, forces, stress, per-atom energies) for padded
    batches; :attr:`compile_count` counts the programs compiled (one per padded shape)."""

    model: Any
    _fn: Callable = field(init=False, repr=False)
    _state: Any = field(init=False, repr=False)

    def __post_init__(self):
        graphdef, self._state = nnx.split(self.model)

        @jax.jit
        def fn(state, batch):
            p = predict(nnx.merge(graphdef, state), batch, forces=True, stress=True)
            return p.energy, p.forces, p.stress, p.node_energies

        self._fn = fn

    @property
    def compile_count(self) -> int:
        return int(self._fn._cache_size())

    def __call__(self, batch):
        return self._fn(self._state, batch)


def _graph(model, atoms, key: str):
    _check_numbers(model, atoms.numbers, key)
    _check_geometry(atoms, None, key)
    if not np.all(np.isfinite(np.asarray(atoms.cell))):
        raise InputError(f"{key}: the cell is not finite")
    graph = graph_from_atoms(atoms, model.cutoff, labels_from_calc=False, key=key)
    _check_geometry(atoms, graph, key)
    return graph


def _plan(graphs, budget: tuple[int, int, int]) -> list[tuple[tuple[int, int, int], np.ndarray]]:
    """``[(padded shape, structure indices)]``: structures fitting ``budget`` packed in input
    order into batches of that shape; each larger one alone in a bucket of the ladder."""
    n_nodes = np.asarray([g.n_node for g in graphs])
    n_edges = np.asarray([g.n_edge for g in graphs])
    b = BatchShape(*budget)
    fits = (n_nodes + 1 <= b.max_nodes) & (n_edges <= b.max_edges)
    plan = [(budget, idx) for idx in pack_indices(np.flatnonzero(fits), n_nodes, n_edges, b)]
    for i in np.flatnonzero(~fits):
        shape = (bucket_size(int(n_nodes[i]) + 1), bucket_size(max(int(n_edges[i]), 1)), 2)
        plan.append((shape, np.asarray([i])))
    return plan


def predict_structures(
    model: Any,
    structures: Sequence[Any],
    *,
    keys: Sequence[str] | None = None,
    budget: tuple[int, int, int] | None = None,
    per_atom: bool = False,
    dispersion: Any = None,
    progress: bool = False,
    predictor: Predictor | None = None,
) -> list[dict[str, Any]]:
    """Predictions for every structure, in input order (see the module docstring).

    Args:
        model: a model object, registered name, checkpoint/run folder or preset
            (:func:`facet.model_io.load_model`).
        structures: ``ase.Atoms`` (or pymatgen structures).
        keys: names used in error messages (default ``structure <i>``).
        budget: ``(max_nodes, max_edges, max_graphs)``; default: the model's training shape
            (:func:`training_budget`), else :data:`DEFAULT_BUDGET`.
        per_atom: also return ``energies`` (per-atom energies summing to ``energy``).
        dispersion: None or a DFT-D3 damping name (``"d3bj"``) or :class:`facet.dispersion.D3`;
            its terms are added (``dftd3`` package, computed structure by structure).
        progress: show a progress bar (structures).
        predictor: a :class:`Predictor` to reuse (keeps its compiled programs).

    Returns one dict per structure: ``energy``, ``free_energy``, ``forces`` (n, 3), ``stress``
    (Voigt 6, 3D-periodic cells only), ``energies`` (n,) on request; NumPy float64.
    """
    if budget is None:
        budget = training_budget(model) or DEFAULT_BUDGET
    if predictor is None:
        predictor = Predictor(load_model(model))
    model = predictor.model
    d3 = make_dispersion(dispersion)
    keys = list(keys) if keys is not None else [f"structure {i}" for i in range(len(structures))]
    atoms_list = [to_atoms(a, k) for a, k in zip(structures, keys, strict=True)]
    dtype = np.dtype(model.dtype)
    out: list[dict[str, Any] | None] = [None] * len(atoms_list)
    with tqdm(total=len(atoms_list), disable=not progress, unit="structure") as bar:
        graphs = [_graph(model, a, k) for a, k in zip(atoms_list, keys, strict=True)]
        for shape, idx in _plan(graphs, budget):
            with x64(dtype.name):
                batch = collate([graphs[i] for i in idx], *shape, dtype=dtype)
                e, f, s, ne = (np.asarray(x, np.float64) for x in predictor(batch))
            n0 = 0
            for slot, i in enumerate(idx):
                atoms, n = atoms_list[i], graphs[i].n_node
                res: dict[str, Any] = {"energy": float(e[slot]), "free_energy": float(e[slot]),
                                       "forces": f[n0:n0 + n].copy()}
                if per_atom:
                    res["energies"] = ne[n0:n0 + n].copy()
                if atoms.pbc.all():
                    res["stress"] = np.asarray(full_to_voigt(s[slot]), np.float64)
                if d3 is not None:
                    add_dispersion(res, d3.compute(atoms, energies=per_atom))
                out[i] = res
                n0 += n
            bar.update(len(idx))
    return out  # type: ignore[return-value]


def write_predictions(structures: Sequence[Any], results: Sequence[dict], path: str | os.PathLike,
                      *, keys: Sequence[str] | None = None) -> int:
    """Write ``structures`` with ``results`` as their calculator results to extxyz ``path``
    (ASE's keys; the input's own ``info`` is kept; ``facet_source`` names the input frame).
    Returns the number of frames written."""
    frames = []
    for k, (a, res) in enumerate(zip(structures, results, strict=True)):
        b = a.copy()
        b.calc = None
        for name in list(b.info):
            if name in res:
                del b.info[name]  # an old label of the same name would shadow the prediction
        for name in ("forces", "energies", "stress"):
            b.arrays.pop(name, None)
        if keys is not None:
            b.info["facet_source"] = keys[k]
        b.calc = SinglePointCalculator(b, **res)
        frames.append(b)
    write(os.fspath(path), frames, format="extxyz")
    return len(frames)
