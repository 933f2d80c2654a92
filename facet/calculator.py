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

Start-up. Compiled programs go to JAX's persistent compilation cache (:mod:`facet.compile_cache`);
for a model read from a checkpoint, each padded shape's compiled program is also stored with what
the calculator needs to run it (:mod:`facet.program_cache`), so that a fresh process reads the
checkpoint's arrays and loads the program without building the network, tracing or lowering.
Reading :attr:`FacetCalculator.model` builds the network (if not yet built) and returns the
calculator to the ordinary ``jax.jit`` path for good, since its weights may then be changed.

Errors (raised before anything is compiled): atomic numbers outside 1..118 or outside the
model's ``supported_numbers`` (when it declares them); NaN/inf positions or cell; two atoms
closer than :data:`MIN_DISTANCE` (0.5 A, periodic images included); a missing or corrupt model
file; an unknown model name (the message lists the alternatives).
"""

from __future__ import annotations

import types
import warnings
from typing import Any

import jax
import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from . import program_cache
from .checkpoint import CheckpointError, verify_checkpoint
from .compile_cache import enable_compile_cache
from .data import bucket_size, collate
from .data.neighbors import graph_from_atoms
from .dispersion import make_dispersion
from .elements import check_supported
from .errors import InputError
from .model_io import (
    MODEL_PATHS,
    MODELS,
    checkpoint_source,
    load_model,
    model_path,
    register_model,
    resolve_checkpoint,
    x64,
)
from .physics import predict

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
        program_cache: for a model read from a checkpoint, also store each shape's compiled
            program with the model's description next to that cache, so that another process
            runs it without building the network (:mod:`facet.program_cache`;
            ``FACET_PROGRAM_CACHE=0`` also turns it off; off when ``compile_cache`` is).

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
        program_cache: bool = True,
        **kw,
    ):
        unknown = sorted(set(kw) - _ASE_KEYWORDS)
        if unknown:
            raise TypeError(
                f"FacetCalculator got unknown keyword argument(s) {', '.join(map(repr, unknown))}; "
                f"it takes model, dtype, headroom, dispersion, dispersion_xc, compile_cache, "
                f"program_cache and ASE's "
                f"{', '.join(sorted(_ASE_KEYWORDS))}"
            )
        super().__init__(**kw)
        folder = enable_compile_cache(compile_cache)
        self.dispersion = make_dispersion(dispersion, dispersion_xc)
        self.headroom = float(headroom)
        self._spec, self._dtype_arg = model, dtype
        self._model = None
        self._predict = None
        self._exposed = False  # ``calc.model`` was read: its weights may change in place
        self._programs: dict[tuple[int, ...], tuple[Any, bool]] = {}
        self._weights = None
        self._shape: tuple[int, int] | None = None
        self._store, info = self._open_store(model, dtype, folder, program_cache)
        if info is None:
            self._set_model(load_model(model, dtype))
            info = self._store.write_info(self._model) if self._store is not None else None
            if info is None:
                self._store = None
        if self._store is not None:
            with x64(info.dtype):
                self._weights = self._store.weights(info)
        self._info = info
        self.dtype = info.dtype if info is not None else np.dtype(self._model.dtype).name
        self._about = types.SimpleNamespace(
            supported_numbers=info.supported_numbers, cutoff=info.cutoff
        ) if info is not None else self._model

    @staticmethod
    def _open_store(model, dtype, folder, setting):
        """``(store, info)``: the program store of a checkpoint model (None otherwise) and its
        stored description (None when absent). A checkpoint that cannot be resolved or fails
        its checksums gets no store: :func:`~facet.model_io.load_model` then says what is wrong.
        """
        source = checkpoint_source(model) if folder is not None else None
        if source is None or not program_cache.enabled(setting):
            return None, None
        notes: list[str] = []
        try:
            ckpt = resolve_checkpoint(source, report=notes.append)
            verify_checkpoint(ckpt)
            store = program_cache.ProgramStore(folder / program_cache.SUBFOLDER, ckpt, dtype)
        except (CheckpointError, OSError, ValueError, KeyError):
            return None, None
        info = store.read_info()
        for msg in notes if info is not None else ():  # load_model reports them otherwise
            warnings.warn(msg, stacklevel=4)
        return store, info

    def _set_model(self, model) -> None:
        from flax import nnx

        self._model = model
        graphdef, _ = nnx.split(model)

        @jax.jit
        def _predict(state, batch):
            return predict(nnx.merge(graphdef, state), batch, forces=True, stress=True)

        self._predict = _predict
        # Flattening the module costs milliseconds, as much as a small structure's evaluation:
        # do it once. The State holds the model's Variables by reference, so in-place updates
        # of the weights (``var[...] = x``, ``nnx.update``, ``set_atomic_energies``) are seen.
        self._state = nnx.state(model)

    def _built(self):
        if self._model is None:
            self._set_model(load_model(self._spec, self._dtype_arg))
        return self._model

    @property
    def model(self):
        """The model (built on first use when the calculator started from stored programs).
        Reading it returns the calculator to the ``jax.jit`` path: its weights may be changed."""
        self._exposed = True
        return self._built()

    @property
    def compile_count(self) -> int:
        """Programs compiled or loaded from the program store so far (one per padded shape)."""
        jitted = int(self._predict._cache_size()) if self._predict is not None else 0
        return jitted + len(self._programs)

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

    def _run(self, batch):
        """The model's predictions on ``batch``: the stored program of its shape, else the
        jitted function (same executable for the same shape, so the same numbers)."""
        if self._store is None or self._exposed:
            return self._predict(self._state, batch)
        shape = (batch.node_mask.shape[0], batch.edge_mask.shape[0], batch.graph_mask.shape[0])
        leaves = tuple(jax.tree_util.tree_leaves(batch))
        n_in = (len(self._weights), len(leaves))
        prog = self._programs.get(shape)
        if prog is None:
            loaded = self._store.read_program(shape, n_in)
            if loaded is None:
                return self._compile(shape, batch, leaves)
            self._programs[shape] = prog = (loaded, True)
        fn, flat = prog
        if not flat:
            return fn(self._state, batch)
        try:
            return fn(self._weights, leaves)
        except (TypeError, ValueError) as err:  # inputs the stored program was not built for
            warnings.warn(f"stored program of shape {shape} refused its inputs ({err}); "
                          f"compiling instead (facet.program_cache)", stacklevel=3)
            return self._compile(shape, batch, leaves)

    def _compile(self, shape, batch, leaves):
        """Compile the jitted function for ``batch``'s shape, run it, and store the program
        when a fresh load of it reproduces this run bit for bit."""
        self._built()
        lowered = self._predict.lower(self._state, batch)
        n_in = (len(self._weights), len(leaves))
        compiled = program_cache.fresh_compile(lowered)
        if compiled is None:
            compiled = lowered.compile()
        out = compiled(self._state, batch)
        self._programs[shape] = (compiled, False)
        if self._store.write_program(shape, compiled, n_in):
            self._store.check_program(shape, n_in, (self._weights, leaves), tuple(out))
        return out

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        where = _describe(atoms)
        about = self._model if self._exposed else self._about
        _check_numbers(about, atoms.numbers, where)
        _check_geometry(atoms, None, where)
        if not np.all(np.isfinite(np.asarray(atoms.cell))):
            raise InputError(f"{where}: the cell is not finite")
        if "stress" in properties and not atoms.pbc.all():
            raise PropertyNotImplementedError(
                f"{where}: stress is only defined for cells periodic in all three directions "
                f"(pbc = {atoms.pbc.tolist()})"
            )
        graph = graph_from_atoms(atoms, about.cutoff, labels_from_calc=False)
        _check_geometry(atoms, graph, where)
        n, e = self._padded_shape(graph.n_node, graph.n_edge)
        with x64(self.dtype):
            batch = collate([graph], n, e, 2, dtype=np.dtype(self.dtype))
            # To NumPy before indexing: an eager slice of a device array compiles a program.
            energy, node_e, forces, stress = (np.asarray(x) for x in self._run(batch))
        nat = len(atoms)
        self.results = {
            "energy": float(energy[0]),
            "free_energy": float(energy[0]),
            "energies": np.asarray(node_e[:nat], dtype=np.float64),
            "forces": np.asarray(forces[:nat], dtype=np.float64),
        }
        if atoms.pbc.all():
            s = stress[0]  # Voigt order xx yy zz yz xz xy (facet.physics.full_to_voigt)
            self.results["stress"] = np.array(
                [s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]], np.float64
            )
        if self.dispersion is not None:
            # D3 per-atom energies need an N x N pair matrix: only when asked for.
            per_atom = "energies" in properties
            if not per_atom:
                del self.results["energies"]
            add_dispersion(self.results, self.dispersion.compute(atoms, energies=per_atom))
