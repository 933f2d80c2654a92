"""ASE calculator for Facet models: energy, free_energy, forces, stress (Voigt), per-atom energies.

``FacetCalculator(model="default" | path | name | model object, dtype=None, dispersion=None)``

Model resolution is :func:`facet.model_io.load_model` (re-exported here with the registry
:data:`MODELS`, :func:`register_model` and :func:`model_path`).

* **model**: an object following the model contract (a :class:`facet.nn.FacetModel`, or any
  module with ``cutoff``, ``dtype`` and ``node_energies(batch, positions, cell)``); a registered
  name (:data:`MODELS`; ``"default"`` is the shipped trained model); a checkpoint or training-run
  directory (:func:`facet.model_io.read_trained`, EMA weights); or a preset name
  (``"facet-s"``, ``"facet-m"``: random weights, with a warning).
* **dtype**: ``"float32"`` or ``"float64"``; ``None`` keeps a model object's own dtype (float32
  otherwise). Float64 runs inside ``jax.enable_x64(True)`` contexts: no global JAX flag changes.
* **dispersion**: ``None`` (default) or a DFT-D3 damping name (``"d3bj"``, see
  :data:`facet.dispersion.DAMPINGS`) with the parameters of ``dispersion_xc`` (``"pbe"``): the
  D3 energy, forces, stress and per-atom energies of the ``dftd3`` package are added to the
  model's (:mod:`facet.dispersion`).
* Any other keyword raises ``TypeError`` naming it, except ASE's own ``Calculator`` keywords
  (``label``, ``directory``, ``atoms``, ``restart``, ``ignore_bad_restart_file``).

Shapes. Each structure becomes a graph at ``model.cutoff`` (every periodic image counts, so cells
smaller than the cutoff are correct) padded to a bucket of the geometric ladder of
:func:`facet.data.bucket_size` after adding ``headroom`` (10 %). The calculator keeps its
current bucket while the structure still fits and is not less than half of it, so a relaxation
or MD run compiles once or twice, not whenever the neighbour count changes
(:attr:`FacetCalculator.compile_count`).

Conventions: energies eV, forces eV/A, stress eV/A^3 with ASE's sign (positive = tensile) in
Voigt order ``xx yy zz yz xz xy``, defined only for cells periodic in all three directions (a
slab or a molecule has no volume: asking for its stress raises
``PropertyNotImplementedError``); ``energies`` are the model's per-atom energies, summing to
``energy``.

Errors (raised before anything is compiled): atomic numbers outside 1..118 or outside the
model's ``supported_numbers`` (when it declares them); NaN/inf positions or cell; two atoms
closer than :data:`MIN_DISTANCE` (0.5 A, periodic images included); a missing or corrupt model
file; an unknown model name (the message lists the alternatives).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from flax import nnx

from .compile_cache import enable_compile_cache
from .data import bucket_size, collate
from .data.neighbors import graph_from_atoms
from .dispersion import make_dispersion
from .elements import check_supported
from .errors import InputError
from .model_io import MODEL_PATHS, MODELS, load_model, model_path, register_model, x64
from .physics import full_to_voigt, predict

__all__ = ["FacetCalculator", "MODELS", "MODEL_PATHS", "register_model", "load_model",
           "model_path", "MIN_DISTANCE"]

#: Atoms closer than this (A) are rejected: no potential is trained there.
MIN_DISTANCE = 0.5


def _check_numbers(model, numbers: np.ndarray, where: str) -> None:
    if len(numbers) == 0:
        raise InputError(f"{where}: the structure has no atoms (nothing to compute)")
    check_supported(model, numbers, where)


def _check_geometry(atoms, graph, where: str) -> None:
    pos = atoms.positions
    if not np.all(np.isfinite(pos)):
        bad = np.flatnonzero(~np.all(np.isfinite(pos), axis=1))
        raise InputError(f"{where}: positions of atoms {bad[:10].tolist()} are NaN or infinite")
    if graph is None or graph.n_edge == 0:
        return
    vec = pos[graph.senders] + graph.shifts @ graph.cell - pos[graph.receivers]
    d = np.linalg.norm(vec, axis=1)
    k = int(np.argmin(d))
    if d[k] < MIN_DISTANCE:
        i, j = int(graph.receivers[k]), int(graph.senders[k])
        image = (
            "" if not np.any(graph.shifts[k]) else f" (periodic image {graph.shifts[k].tolist()})"
        )
        raise InputError(
            f"{where}: atoms {i} and {j}{image} are {d[k]:.3f} A apart, closer than "
            f"{MIN_DISTANCE} A (overlapping atoms)"
        )


def add_dispersion(results: dict, disp: dict) -> None:
    """Add the dispersion terms ``disp`` to a calculator's ``results`` in place."""
    for k in ("energy", "forces", "stress", "energies"):
        if k in results and k in disp:
            results[k] = results[k] + disp[k]
    if "energy" in results:
        results["free_energy"] = results["energy"]


def _describe(atoms) -> str:
    try:
        return f"Atoms {atoms.get_chemical_formula()}"
    except (IndexError, KeyError):  # atomic numbers ASE cannot name
        return f"Atoms with {len(atoms)} atoms"


#: Keywords of ASE's ``Calculator`` that FacetCalculator passes on; any other raises.
_ASE_KEYWORDS = frozenset({"restart", "ignore_bad_restart_file", "label", "atoms", "directory"})


class FacetCalculator(Calculator):
    """ASE calculator around a Facet model (see the module docstring).

    Args:
        model: model object, registered name (``"default"``), checkpoint/run path, or preset.
        dtype: ``"float32"``, ``"float64"`` or None (the model's own).
        headroom: relative slack added to node and edge counts before bucketing.
        compile_cache: keep compiled programs in JAX's persistent compilation cache in the user's
            cache folder, so that another process loads them instead of compiling
            (:mod:`facet.compile_cache`; ``FACET_COMPILE_CACHE=0`` also turns it off).

    Example::

        from ase.build import bulk
        from facet import FacetCalculator
        atoms = bulk("Si", "diamond", a=5.43)
        atoms.calc = FacetCalculator(model="runs/my_run")
        atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(
        self,
        model: Any = "default",
        *,
        dtype: str | None = None,
        headroom: float = 0.1,
        dispersion: str | None = None,
        dispersion_xc: str = "pbe",
        compile_cache: bool = True,
        **kw,
    ):
        unknown = sorted(set(kw) - _ASE_KEYWORDS)
        if unknown:
            raise TypeError(
                f"FacetCalculator got unknown keyword argument(s) {', '.join(map(repr, unknown))}; "
                f"it takes model, dtype, headroom, dispersion, dispersion_xc, compile_cache and "
                f"ASE's "
                f"{', '.join(sorted(_ASE_KEYWORDS))}"
            )
        super().__init__(**kw)
        enable_compile_cache(compile_cache)
        self.model = load_model(model, dtype)
        self.dispersion = make_dispersion(dispersion, dispersion_xc)
        self.dtype = np.dtype(self.model.dtype).name
        self.headroom = float(headroom)
        graphdef, _ = nnx.split(self.model)

        @jax.jit
        def _predict(state, batch):
            return predict(nnx.merge(graphdef, state), batch, forces=True, stress=True)

        self._predict = _predict
        # Flattening the module costs milliseconds, as much as a small structure's evaluation:
        # do it once. The State holds the model's Variables by reference, so in-place updates
        # of the weights (``var[...] = x``, ``nnx.update``, ``set_atomic_energies``) are seen.
        self._state = nnx.state(self.model)
        self._shape: tuple[int, int] | None = None

    @property
    def compile_count(self) -> int:
        """Programs compiled so far (one per padded shape)."""
        return int(self._predict._cache_size())

    def _padded_shape(self, n_node: int, n_edge: int) -> tuple[int, int]:
        want = (
            bucket_size(int(np.ceil(n_node * (1 + self.headroom))) + 1),
            bucket_size(int(np.ceil(n_edge * (1 + self.headroom))) + 1),
        )
        cur = self._shape
        if cur is not None and n_node + 1 <= cur[0] and n_edge <= cur[1]:
            # Keep the current bucket unless it is more than twice what is needed.
            if cur[0] <= 2 * want[0] and cur[1] <= 2 * want[1]:
                return cur
        self._shape = want
        return want

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        where = _describe(atoms)
        _check_numbers(self.model, atoms.numbers, where)
        _check_geometry(atoms, None, where)
        if not np.all(np.isfinite(np.asarray(atoms.cell))):
            raise InputError(f"{where}: the cell is not finite")
        if "stress" in properties and not atoms.pbc.all():
            raise PropertyNotImplementedError(
                f"{where}: stress is only defined for cells periodic in all three directions "
                f"(pbc = {atoms.pbc.tolist()})"
            )
        graph = graph_from_atoms(atoms, self.model.cutoff, labels_from_calc=False)
        _check_geometry(atoms, graph, where)
        n, e = self._padded_shape(graph.n_node, graph.n_edge)
        with x64(self.dtype):
            batch = collate([graph], n, e, 2, dtype=np.dtype(self.dtype))
            out = self._predict(self._state, batch)
            nat = len(atoms)
            energy = float(out.energy[0])
            self.results = {
                "energy": energy,
                "free_energy": energy,
                "energies": np.asarray(out.node_energies[:nat], dtype=np.float64),
                "forces": np.asarray(out.forces[:nat], dtype=np.float64),
            }
            if atoms.pbc.all():
                self.results["stress"] = np.asarray(full_to_voigt(out.stress[0]), np.float64)
        if self.dispersion is not None:
            # D3 per-atom energies need an N x N pair matrix: only when asked for.
            per_atom = "energies" in properties
            if not per_atom:
                del self.results["energies"]
            add_dispersion(self.results, self.dispersion.compute(atoms, energies=per_atom))
