"""Export a Facet model for LAMMPS: a ``lammps-jax`` bundle for ``pair_style jax/kk``.

``lammps-jax`` (PyPI; https://github.com/abhijeetgangan/lammps-jax) runs ``jax.export``-ed
programs inside LAMMPS through the PJRT C API. A bundle is one JSON file holding the serialised
programs (energy, forces, both) and the contract the pair style enforces when it loads them:
atom and edge capacities, cutoff, units, precision, neighbour-list layout.

What the pair style hands the program, every step, on every MPI rank (fixed shapes; padding rows
and edges past the live ones):

* ``positions (max_atoms, 3)``: owned atoms first (``nlocal``), then ghost atoms (``nghost``):
  periodic images and atoms of neighbouring ranks, with their Cartesian positions;
* ``species (max_atoms,)``: LAMMPS atom type minus one;
* ``senders, receivers, edge_mask (max_edges,)``: a full neighbour list, one edge per ordered
  pair ``(i, j)`` with ``i`` the row atom (the centre) and ``j`` its neighbour.

Facet's message passing reaches ``num_layers`` cutoffs, so the bundle is exported with
``n_hops = num_layers``: the pair style then widens the ghost shell to ``n_hops * cutoff +
skin`` and also builds neighbour rows for the ghost atoms, so that every feature an owned atom's
energy depends on is computed in full on the rank (node features of ghost atoms are evaluated
redundantly; no feature exchange between ranks is needed). The energy is the sum of the
per-atom energies of owned atoms; forces are minus its gradient for every row, and the pair
style returns the ghost rows' forces to their owners by LAMMPS' reverse communication (so the
export requires ``newton on``). The virial LAMMPS computes from these forces is the model's
stress. The cost: the ghost shell holds several times more atoms than the owned ones
(``max_atoms`` must hold both); see docs/lammps.md for sizes.

The type -> element map is fixed at export (``elements``, LAMMPS type 1 first) and recorded in
the bundle under ``facet.type_elements``; a LAMMPS run defining more types than the bundle maps
stops with lammps-jax's own error (the contract's ``n_species``).

:func:`lammps_inputs` builds, from an ASE ``Atoms``, exactly the arrays the pair style would pass
on one rank (owned atoms, ghost images, full neighbour rows for all of them); :func:`run_bundle`
compiles a bundle's serialised program with JAX's CPU client and runs it on those arrays. Tests
use the two to check a bundle against :class:`facet.FacetCalculator` without LAMMPS.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.extend.backend
import jax.numpy as jnp
import numpy as np
from ase.data import atomic_numbers, chemical_symbols
from flax import nnx
from jaxlib import xla_client
from vesin import NeighborList

from tensorproducts import edge_blocking

from .data.batch import GraphBatch
from .model_io import check_dtype, load_model, x64
from .version import __version__

__all__ = [
    "BUNDLE_SUFFIX",
    "LammpsInputs",
    "energy_fn_for_lammps",
    "export_lammps",
    "lammps_inputs",
    "compile_bundle",
    "run_bundle",
    "fold_ghost_forces",
]

#: Conventional file suffix of a lammps-jax bundle.
BUNDLE_SUFFIX = ".lammps-jax.json"

_PLATFORMS = ("cpu", "cuda")


def _require_lammps_jax():
    try:
        from lammps_jax import export as lj_export
    except ImportError as err:
        raise ImportError(
            "exporting for LAMMPS needs the lammps-jax package: pip install 'facet-mlip[lammps]' "
            "(or pip install lammps-jax)"
        ) from err
    return lj_export


def _type_numbers(elements) -> np.ndarray:
    if elements is None or len(elements) == 0:
        raise ValueError(
            "elements: give the element of every LAMMPS atom type, type 1 first "
            "(for example --elements Si O)"
        )
    out = []
    for k, el in enumerate(elements, start=1):
        if isinstance(el, int | np.integer):
            z = int(el)
        elif isinstance(el, str) and el in atomic_numbers and el != "X":
            z = atomic_numbers[el]
        else:
            raise ValueError(f"elements: LAMMPS type {k} is {el!r}, not a chemical element")
        if not 1 <= z <= 118:
            raise ValueError(f"elements: LAMMPS type {k} has atomic number {z}, not in 1..118")
        out.append(z)
    return np.asarray(out, np.int32)


def _num_layers(model) -> int:
    cfg = getattr(model, "config", None)
    n = getattr(cfg, "num_layers", None)
    if n is None:
        raise ValueError(
            "the model does not declare its number of message-passing layers "
            "(model.config.num_layers), which sets the ghost shell of the LAMMPS bundle"
        )
    return int(n)


def energy_fn_for_lammps(model, type_numbers):
    """``fn(positions, species, graph) -> per-atom energies (max_atoms,)`` in the lammps-jax ABI.

    ``graph`` has ``senders`` (row atom, the centre), ``receivers`` (its neighbour) and
    ``edge_mask``; padding indices may be out of range (they are masked). Edges at or beyond the
    model cutoff are masked too (LAMMPS lists pairs out to cutoff + skin).
    """
    # Weights become constants of the exported program; as JAX arrays (a loaded model may hold
    # NumPy arrays, which cannot be indexed by traced values).
    graphdef, state = nnx.split(model)
    state = jax.tree_util.tree_map(jnp.asarray, state)
    table = jnp.asarray(np.asarray(type_numbers, np.int32))
    n_types = int(table.shape[0])
    dtype = jnp.dtype(model.dtype)
    cutoff = float(model.cutoff)

    def fn(positions, species, graph):
        n_atoms = positions.shape[0]
        n_edges = graph.edge_mask.shape[0]
        positions = positions.astype(dtype)
        mask = graph.edge_mask
        # Facet's receivers are centres and senders neighbours (r_ij = x_j - x_i).
        centre = jnp.where(mask, graph.senders, 0).astype(jnp.int32)
        neighbour = jnp.where(mask, graph.receivers, 0).astype(jnp.int32)
        vec = positions[neighbour] - positions[centre]
        r2 = jnp.sum(vec * vec, axis=-1)
        mask = mask & (r2 < jnp.asarray(cutoff * cutoff, dtype)) & (r2 > 0)
        numbers = table[jnp.clip(species, 0, n_types - 1)]
        g = 2  # one real graph and the padding slot the batch layout expects
        batch = GraphBatch(
            positions=positions,
            numbers=numbers,
            node_graph=jnp.zeros((n_atoms,), jnp.int32),
            node_mask=jnp.ones((n_atoms,), bool),
            senders=neighbour,
            receivers=centre,
            shifts=jnp.zeros((n_edges, 3), dtype),
            edge_mask=mask,
            cell=jnp.broadcast_to(jnp.eye(3, dtype=dtype), (g, 3, 3)),
            pbc=jnp.zeros((g, 3), bool),
            n_node=jnp.asarray([n_atoms, 0], jnp.int32),
            n_edge=jnp.asarray([n_edges, 0], jnp.int32),
            graph_mask=jnp.asarray([True, False]),
            energy=jnp.zeros((g,), dtype),
            forces=jnp.zeros((n_atoms, 3), dtype),
            stress=jnp.zeros((g, 3, 3), dtype),
            energy_mask=jnp.zeros((g,), bool),
            forces_mask=jnp.zeros((g,), bool),
            stress_mask=jnp.zeros((g,), bool),
            weight=jnp.zeros((g,), dtype),
        )
        return nnx.merge(graphdef, state).node_energies(batch, positions, batch.cell)

    return fn


def _edge_blocking_for(platform: str):
    """Products block their message pass over edges when *traced on* a CPU (a cache measure
    that accelerators do not want, :func:`tensorproducts.edge_blocking`): an export for CUDA
    made on a CPU host turns it off."""
    return contextlib.nullcontext() if platform == "cpu" else edge_blocking(0)


def _check_export(path, platform, dtype, max_atoms, edges_per_atom, overwrite):
    """The checked ``(dtype, max_atoms, max_edges, path)`` of :func:`export_lammps`'s
    arguments; ``ValueError``/``FileExistsError``/``FileNotFoundError`` naming the bad one."""
    if platform not in _PLATFORMS:
        raise ValueError(f"platform must be one of {', '.join(_PLATFORMS)}; got {platform!r}")
    dtype = check_dtype(np.dtype(dtype).name, "dtype")
    for name, v in (("max_atoms", max_atoms), ("edges_per_atom", edges_per_atom)):
        if int(v) != v or int(v) <= 0:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")
    max_atoms, edges_per_atom = int(max_atoms), int(edges_per_atom)
    max_edges = max_atoms * edges_per_atom
    if max_edges >= 2**31:
        raise ValueError(
            f"max_atoms * edges_per_atom = {max_edges} does not fit the int32 edge indices"
        )
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; choose another name or pass --force to replace it")
    if path.parent and not path.parent.exists():
        raise FileNotFoundError(f"the directory of {path} does not exist")
    return dtype, max_atoms, max_edges, path


def export_lammps(
    model: Any,
    path: str | os.PathLike,
    *,
    elements,
    max_atoms: int,
    edges_per_atom: int,
    platform: str = "cpu",
    dtype: str = "float32",
    overwrite: bool = False,
    source: str | None = None,
) -> dict:
    """Write a lammps-jax bundle of ``model`` to ``path``; returns the bundle (a dict).

    Args:
        model: anything :func:`facet.model_io.load_model` takes (registered name such as
            ``"default"``, run or checkpoint directory, model object).
        elements: element symbol (or atomic number) of each LAMMPS atom type, type 1 first.
        max_atoms: capacity per MPI rank for owned plus ghost atoms (the ghost shell is
            ``num_layers * cutoff + skin`` wide).
        edges_per_atom: neighbour capacity per atom row; ``max_edges = max_atoms *
            edges_per_atom``.
        platform: PJRT plugin the bundle runs on, ``"cpu"`` (Kokkos OpenMP builds) or
            ``"cuda"``.
        dtype: ``"float32"`` or ``"float64"`` (the model is cast).
        overwrite: replace an existing file at ``path`` (otherwise an error).
        source: how the model was named, recorded in the bundle (defaults to ``str(model)``).
    """
    lj_export = _require_lammps_jax()
    dtype, max_atoms, max_edges, path = _check_export(
        path, platform, dtype, max_atoms, edges_per_atom, overwrite
    )
    numbers = _type_numbers(list(elements))
    if source is None:
        source = model if isinstance(model, str | os.PathLike) else type(model).__name__
    model = load_model(model, dtype)
    n_hops = _num_layers(model)
    fn = energy_fn_for_lammps(model, numbers)

    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        with x64(dtype), _edge_blocking_for(platform), jax.default_matmul_precision("highest"):
            bundle = lj_export.export_model(
                energy_fn=fn,
                path=tmp,
                max_atoms=max_atoms,
                max_edges=max_edges,
                cutoff=float(model.cutoff),
                unit_style="metal",
                precision=dtype,
                n_hops=n_hops,
                n_species=len(numbers),
                platform=platform,
            )
        bundle["facet"] = {
            "facet_version": __version__,
            "source_model": os.fspath(source),
            "type_elements": [chemical_symbols[z] for z in numbers],
            "type_numbers": [int(z) for z in numbers],
            "message_passing_layers": n_hops,
            "edges_per_atom": edges_per_atom,
        }
        Path(tmp).write_text(json.dumps(bundle, indent=2, sort_keys=True) + "\n", "utf-8")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return bundle


# -- running a bundle without LAMMPS -----------------------------------------------------------


class LammpsInputs(NamedTuple):
    """The arrays pair_style jax/kk passes on one rank (see module docstring), plus ``owner``:
    for every present row, the index of the owned atom it images (``-1`` on padding)."""

    positions: np.ndarray
    species: np.ndarray
    nlocal: int
    nghost: int
    senders: np.ndarray
    receivers: np.ndarray
    edge_mask: np.ndarray
    owner: np.ndarray

    def args(self, dtype="float32"):
        """The program's positional arguments, in ABI order."""
        return (
            self.positions.astype(dtype),
            self.species.astype(np.int32),
            np.int32(self.nlocal),
            np.int32(self.nghost),
            self.senders.astype(np.int32),
            self.receivers.astype(np.int32),
            self.edge_mask.astype(bool),
        )


def lammps_inputs(
    atoms,
    bundle: dict,
    *,
    skin: float = 1.0,
    within_cutoff: bool = False,
) -> LammpsInputs:
    """One rank's inputs for ``atoms`` (fully periodic), as the pair style builds them.

    Owned atoms are ``atoms`` wrapped into the cell; ghosts are every periodic image whose
    fractional coordinates lie within ``n_hops * cutoff + skin`` of the cell (LAMMPS' ghost
    shell, measured normal to the cell faces); every row, owned or ghost, gets its full list of
    neighbours among the present atoms within ``cutoff + skin`` (LAMMPS' list), or within the
    cutoff with ``within_cutoff`` (lammps-jax 0.2's pair style filters the list to the cutoff
    before packing it, so ``max_edges`` needs to hold those only). Raises ``ValueError`` when
    atoms or edges exceed the bundle's capacities (the pair style stops then too).
    """
    contract = bundle["contract"]
    cutoff = float(contract["cutoff"])
    n_hops = int(contract.get("n_hops", 1))
    max_atoms = int(contract["max_atoms"])
    max_edges = int(contract["max_edges"])
    numbers_of_type = bundle.get("facet", {}).get("type_numbers")
    if numbers_of_type is None:
        raise ValueError("the bundle has no facet.type_numbers (not written by facet export)")
    type_of_number = {int(z): k for k, z in enumerate(numbers_of_type)}
    missing = sorted(set(atoms.numbers.tolist()) - set(type_of_number))
    if missing:
        raise ValueError(f"atomic numbers {missing} have no LAMMPS type in the bundle")
    if not np.all(atoms.pbc):
        raise ValueError("lammps_inputs needs a cell periodic in all three directions")

    cell = np.asarray(atoms.cell, np.float64)
    frac = np.asarray(atoms.get_scaled_positions(wrap=True), np.float64)
    n = len(atoms)
    shell = n_hops * cutoff + skin
    recip = np.linalg.inv(cell).T  # rows: reciprocal vectors b_k with a_i . b_k = delta_ik
    heights = 1.0 / np.linalg.norm(recip, axis=1)  # distance between opposite cell faces
    reach = shell / heights  # ghost shell in fractional units
    span = [np.arange(-int(np.ceil(r)), int(np.ceil(r)) + 1) for r in reach]
    shifts = np.array(np.meshgrid(*span, indexing="ij")).reshape(3, -1).T
    shifts = shifts[np.any(shifts != 0, axis=1)]
    img = frac[None, :, :] + shifts[:, None, :]  # (S, n, 3)
    keep = np.all((img >= -reach) & (img < 1.0 + reach), axis=-1)
    s_idx, a_idx = np.nonzero(keep)
    ghost_frac = img[s_idx, a_idx]
    all_frac = np.concatenate([frac, ghost_frac])
    owner = np.concatenate([np.arange(n), a_idx])
    positions = all_frac @ cell
    nall = len(positions)
    if nall > max_atoms:
        raise ValueError(
            f"{n} owned + {nall - n} ghost atoms exceed the bundle's max_atoms = {max_atoms} "
            f"(ghost shell {shell:.2f} A = {n_hops} x {cutoff} A + skin {skin} A)"
        )
    nl = NeighborList(cutoff=cutoff + skin, full_list=True)
    i, j, d = nl.compute(
        points=positions, box=np.zeros((3, 3)), periodic=False, quantities="ijd"
    )
    if within_cutoff:
        i, j = i[d < cutoff], j[d < cutoff]
    n_edge = len(i)
    if n_edge > max_edges:
        raise ValueError(f"{n_edge} neighbour pairs exceed the bundle's max_edges = {max_edges}")
    pos = np.zeros((max_atoms, 3))
    pos[:nall] = positions
    species = np.zeros(max_atoms, np.int32)
    species[:nall] = [type_of_number[int(z)] for z in atoms.numbers[owner]]
    senders = np.full(max_edges, max_atoms, np.int32)
    receivers = np.full(max_edges, max_atoms, np.int32)
    mask = np.zeros(max_edges, bool)
    senders[:n_edge], receivers[:n_edge], mask[:n_edge] = i, j, True
    own = np.full(max_atoms, -1, np.int64)
    own[:nall] = owner
    return LammpsInputs(pos, species, n, nall - n, senders, receivers, mask, own)


def fold_ghost_forces(forces: np.ndarray, inputs: LammpsInputs) -> np.ndarray:
    """Owned-atom forces: each ghost row's force added to its owner (LAMMPS reverse comm)."""
    live = inputs.owner >= 0
    out = np.zeros((inputs.nlocal, 3), np.float64)
    np.add.at(out, inputs.owner[live], np.asarray(forces, np.float64)[live])
    return out


def compile_bundle(bundle: dict, program: str = "energy_and_forces", backend: str = "cpu"):
    """Compile ``program`` of a CPU ``bundle`` (its serialised portable bytecode, as the pair
    style receives it) with a JAX client: ``backend`` names it (``"cpu"``, JAX's own; or the
    name under which a PJRT plugin was registered, e.g. lammps-jax's XLA CPU plugin, see
    docs/lammps.md). Returns ``call(inputs) -> list of NumPy arrays`` (for
    ``energy_and_forces``: the energy and the ``(max_atoms, 3)`` forces of every row)."""
    if bundle["export_info"]["platform"] != "cpu":
        raise ValueError("compile_bundle runs CPU bundles (exported with platform='cpu')")
    blob = base64.b64decode(bundle["programs"][f"{program}_mlir_b64"])
    if not blob:
        raise ValueError(f"the bundle has no {program} program")
    options = xla_client.CompileOptions.ParseFromString(
        base64.b64decode(bundle["compile_options_b64"])
    )
    # The bundle asks for a portable executable (the pair style picks the device); here run it
    # on the backend's first device.
    options.compile_portable_executable = False
    device = jax.devices(backend)[0]
    exe = jax.extend.backend.get_backend(backend).compile_and_load(blob, [device], options)
    precision = bundle["contract"]["precision"]

    def call(inputs: LammpsInputs):
        with x64(precision):
            args = [jax.device_put(a, device) for a in inputs.args(precision)]
            return [np.asarray(o) for o in exe.execute(args)]

    return call


def run_bundle(bundle: dict, inputs: LammpsInputs, program: str = "energy_and_forces"):
    """:func:`compile_bundle` and one call on ``inputs``."""
    return compile_bundle(bundle, program)(inputs)
