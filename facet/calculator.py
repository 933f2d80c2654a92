"""ASE calculator for Facet models: energy, free_energy, forces, stress (Voigt), per-atom energies.

``FacetCalculator(model="default" | path | name | model object, dtype=None, dispersion=None)``

* **model**: an object following the model contract (a :class:`facet.nn.FacetModel`, or any
  module with ``cutoff``, ``dtype`` and ``node_energies(batch, positions, cell)``); a registered
  name (:data:`MODELS`; ``"default"`` is the shipped trained model); a checkpoint or training-run
  directory (:func:`facet.train.model_io.load_model`, EMA weights); or a preset name
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

import contextlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

from .errors import InputError

__all__ = ["FacetCalculator", "MODELS", "register_model", "load_model", "model_path",
           "MIN_DISTANCE"]

#: Atoms closer than this (A) are rejected: no potential is trained there.
MIN_DISTANCE = 0.5

#: Registered model names -> ``loader(dtype) -> model``.
MODELS: dict[str, Callable[[str], Any]] = {}


#: Registered names whose model is a checkpoint folder -> that folder (for fine-tuning and
#: evaluation, which need the checkpoint itself: ``model.init_from=default``).
MODEL_PATHS: dict[str, Path] = {}


def register_model(name: str, loader: Callable[[str], Any], *, path: Any = None) -> None:
    """Register a named model (``loader(dtype)`` builds it); a name can be re-registered.
    ``path``: the checkpoint or run folder it loads, when it is one."""
    MODELS[name] = loader
    MODEL_PATHS.pop(name, None)
    if path is not None:
        MODEL_PATHS[name] = Path(path)


def model_path(spec: str | os.PathLike) -> Path:
    """The checkpoint or run folder of a registered name or a path (``"default"`` -> the shipped
    model's folder). Raises ``FileNotFoundError``/``ValueError`` naming ``spec`` otherwise."""
    name = os.fspath(spec)
    if name in MODEL_PATHS:
        path = MODEL_PATHS[name]
        if not path.exists():
            raise FileNotFoundError(f"model {name!r}: its folder {path} is missing; reinstall")
        return path
    path = Path(name)
    if path.exists():
        return path
    if name in MODELS:
        raise InputError(f"model {name!r} is registered without a checkpoint folder")
    raise FileNotFoundError(
        f"model {name!r} is neither a registered name with a checkpoint "
        f"({', '.join(sorted(MODEL_PATHS)) or 'none'}) nor an existing checkpoint or run folder"
    )


def _shipped_dir() -> Path:
    return Path(__file__).resolve().parent / "models" / "default"


def _load_default(dtype: str):
    path = _shipped_dir()
    if not path.exists():
        from .nn.presets import PRESETS

        others = ", ".join(sorted(set(MODELS) - {"default"})) or "none"
        raise FileNotFoundError(
            f"no default Facet model is shipped in this installation ({path} is missing; "
            "it comes with the package: reinstall facet). Use instead: a checkpoint or run "
            "directory written by `facet train` (FacetCalculator(model='runs/my_run')), a model "
            f"object, another registered name ({others}), "
            f"or a preset with random weights ({', '.join(PRESETS)})."
        )
    return _load_path(path, dtype)


register_model("default", _load_default, path=_shipped_dir())


def _x64(dtype: str):
    """A context enabling 64-bit JAX types for float64 (a no-op for float32)."""
    if np.dtype(dtype) == np.float64:
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


def _load_path(path: Path, dtype: str | None):
    import yaml

    from .elements import attach_supported
    from .train.checkpoint import CheckpointError
    from .train.model_io import load_model as load_trained

    try:
        with _x64(dtype or "float32"):
            model, _, ckpt = load_trained(path, report=lambda msg: warnings.warn(msg, stacklevel=3))
    except (CheckpointError, OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as err:
        msg = " ".join(str(err).split())
        raise InputError(f"cannot load a Facet model from {path}: {msg}") from err
    # The elements it was trained on (meta.json, else its non-zero E0s: facet.elements).
    return attach_supported(_cast(model, dtype), ckpt)


def _cast(model, dtype: str | None):
    """``model`` in ``dtype`` (a new FacetModel with cast weights when they differ)."""
    if dtype is None or np.dtype(model.dtype) == np.dtype(dtype):
        return model
    from .nn import FacetModel

    if not isinstance(model, FacetModel):
        raise ValueError(
            f"the model is {np.dtype(model.dtype).name}; build it in {dtype} or pass dtype=None"
        )
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from .nn.presets import create_model

    with _x64(dtype):
        # Shapes only (no random weights drawn, nothing compiled): every Variable is replaced.
        new = nnx.eval_shape(lambda: create_model(model.config, dtype=dtype))
        state = nnx.state(model)
        cast = jax.tree_util.tree_map(
            lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, state
        )
        nnx.update(new, cast)
    return new


def load_model(spec: Any, dtype: str | None = None):
    """Resolve ``spec`` (object, registered name, path or preset) to a model (see module)."""
    if hasattr(spec, "node_energies") and hasattr(spec, "cutoff"):
        return _cast(spec, dtype)
    if not isinstance(spec, str | os.PathLike):
        raise TypeError(
            f"model must be a model object, a registered name, a path or a preset; got "
            f"{type(spec).__name__}"
        )
    from .nn.presets import PRESETS

    name = os.fspath(spec)
    if name in MODELS:
        return _cast(MODELS[name](dtype or "float32"), dtype)
    if name in PRESETS:
        from .nn.presets import create_model

        warnings.warn(
            f"model {name!r} is a preset: its weights are random (for timing and tests only)",
            stacklevel=3,
        )
        with _x64(dtype or "float32"):
            return create_model(name, dtype=dtype or "float32")
    path = Path(name)
    if path.exists():
        return _load_path(path, dtype)
    if os.sep in name or path.suffix:
        raise FileNotFoundError(f"model file or directory {name} does not exist")
    raise InputError(
        f"unknown model {name!r}: not a registered name ({', '.join(sorted(MODELS))}), a preset "
        f"({', '.join(PRESETS)}) or an existing path"
    )


def _check_numbers(model, numbers: np.ndarray, where: str) -> None:
    from .elements import check_supported

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
        import jax
        from flax import nnx

        from .compile_cache import enable_compile_cache
        from .physics import predict

        enable_compile_cache(compile_cache)
        self.model = load_model(model, dtype)
        from .dispersion import make_dispersion

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
        from .data import bucket_size

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
        from .data import collate
        from .data.neighbors import graph_from_atoms

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
        with _x64(self.dtype):
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
                from .physics import full_to_voigt

                self.results["stress"] = np.asarray(full_to_voigt(out.stress[0]), np.float64)
        if self.dispersion is not None:
            # D3 per-atom energies need an N x N pair matrix: only when asked for.
            per_atom = "energies" in properties
            if not per_atom:
                del self.results["energies"]
            add_dispersion(self.results, self.dispersion.compute(atoms, energies=per_atom))
