"""Batched FIRE relaxation with cell degrees of freedom: many structures in one compiled loop.

FIRE (Bitzek, Koskinen, Gähler, Moseler, Gumbsch, Phys. Rev. Lett. 97, 170201 (2006)) exactly as
ASE's :class:`ase.optimize.FIRE` runs it (same parameters, same first step, same step-length
cap), applied per structure to the generalised coordinates of ASE's
:class:`ase.filters.FrechetCellFilter`:

* positions in the undeformed cell, ``s_i = F^{-1} x_i``, and
* the cell variable ``Lambda = c log F`` with ``F`` the deformation gradient since the start
  (cell vectors as rows: ``C = C_0 F^T``) and ``c`` the ``exp_cell_factor`` (number of atoms).

Generalised forces: ``f_s = F^T f_i`` on the positions; on the cell,
``f_Lambda = (1/c) D exp(L)^*[W F^{-T}]`` with ``L = Lambda / c``, ``W = -V (sigma + p I)`` the
virial and ``D exp(L)^*`` the adjoint of the Fréchet derivative of the matrix exponential
(a vector-Jacobian product of ``jax.scipy.linalg.expm``). A structure is converged when every row
of its generalised force (atoms and 3 cell rows) is shorter than ``fmax``, as in ASE; converged
structures freeze while the others continue. Norms in the FIRE mixing and in the step cap run
over one structure's coordinates, so every structure follows the same trajectory as a
one-at-a-time ASE relaxation (up to round-off and the order of floating-point sums).

Neighbour lists are Verlet lists with a skin, rebuilt outside ``jit`` only when
:func:`facet.dynamics.neighbors.list_is_valid` says a pair may be missing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from ..errors import InputError
from .neighbors import build_graphs, capacity_for, list_is_valid, mask_edges, padded_batch
from .potential import PredictFn, check_structures, pure_predict

__all__ = ["FireConfig", "FireState", "BatchedRelaxResult", "BatchedFIRE", "relax_batched"]


@dataclass(frozen=True)
class FireConfig:
    """FIRE parameters (ASE's defaults; ``dt``, ``dtmax`` in ASE time units) and loop settings.

    ``skin`` (A) is the Verlet-list margin (0.3 A: on 100 small cells one thread spends 8 %
    less per step than with 0.5 A, for one extra list rebuild in 30 steps; the list is rebuilt
    whenever an atom moved more than half of it, so the value trades speed, never accuracy);
    ``headroom`` the relative slack of the edge buffer;
    ``scalar_pressure`` (eV/A^3) adds ``p V`` to the enthalpy minimised over the cell.
    """

    dt: float = 0.1
    maxstep: float = 0.2
    dtmax: float = 1.0
    nmin: int = 5
    finc: float = 1.1
    fdec: float = 0.5
    astart: float = 0.1
    fa: float = 0.99
    skin: float = 0.3
    headroom: float = 0.1
    scalar_pressure: float = 0.0


class FireState(NamedTuple):
    """Loop state; per-graph arrays have shape ``(G,)``."""

    s: jax.Array  # (N, 3) positions in the undeformed cell
    lam: jax.Array  # (G, 3, 3) cell variable c * log F
    v_s: jax.Array
    v_lam: jax.Array
    dt: jax.Array
    a: jax.Array
    n_pos: jax.Array  # FIRE's count of consecutive steps with P = f.v > 0
    steps: jax.Array  # optimiser steps taken
    started: jax.Array  # False until the first step (ASE's ``v is None``)
    done: jax.Array
    fmax: jax.Array  # last generalised-force maximum
    energy: jax.Array
    valid: jax.Array  # scalar: the neighbour list is still complete


class BatchedRelaxResult(NamedTuple):
    atoms: list  # relaxed ase.Atoms, each with a SinglePointCalculator (energy, forces, stress)
    energies: np.ndarray  # (S,) eV
    converged: np.ndarray  # (S,) bool
    steps: np.ndarray  # (S,) FIRE steps taken
    fmax: np.ndarray  # (S,) final generalised-force maximum, eV/A
    n_rebuilds: int  # neighbour-list rebuilds (outside jit)
    wall_time: float  # seconds, compilation included
    initial_energies: np.ndarray | None = None  # (S,) eV of the input structures


def _expm(lmat):
    return jax.vmap(jax.scipy.linalg.expm)(lmat)


def _per_graph_sum(node_vals, graph_vals, node_graph, g):
    return jax.ops.segment_sum(node_vals, node_graph, num_segments=g) + graph_vals


class _Setup(NamedTuple):
    """The fixed data of one relaxation (one padding graph and one padding node at the end)."""

    cell0: jax.Array  # (G, 3, 3) initial cells
    cf: jax.Array  # (G,) exp_cell_factor: the number of atoms
    cell_moves: jax.Array  # (G,) bool: the cell relaxes (3D periodic, relax_cell)
    positions: np.ndarray  # (N, 3) initial positions, padding node last
    n_node: int

    @classmethod
    def of(cls, atoms: list, relax_cell: bool, dtype) -> _Setup:
        n_graph = len(atoms) + 1
        cell0 = np.tile(np.eye(3), (n_graph, 1, 1))
        cell_moves = np.zeros(n_graph, bool)
        cf = np.ones(n_graph)
        for k, a in enumerate(atoms):
            cell0[k] = np.asarray(a.cell)
            cell_moves[k] = relax_cell and bool(a.pbc.all())
            cf[k] = float(len(a))
        x = np.concatenate([a.positions for a in atoms])
        s = np.zeros((x.shape[0] + 1, 3))
        s[:-1] = x
        return cls(jnp.asarray(cell0, dtype), jnp.asarray(cf, dtype), jnp.asarray(cell_moves),
                   s, s.shape[0])


def _initial_state(setup: _Setup, cfg: FireConfig, dt) -> FireState:
    """FIRE at rest in the input geometry (``Lambda = 0``); the padding graph is done."""
    n_graph, n_node = setup.cell0.shape[0], setup.n_node
    return FireState(
        s=jnp.asarray(setup.positions, dt),
        lam=jnp.zeros((n_graph, 3, 3), dt),
        v_s=jnp.zeros((n_node, 3), dt),
        v_lam=jnp.zeros((n_graph, 3, 3), dt),
        dt=jnp.full((n_graph,), cfg.dt, dt),
        a=jnp.full((n_graph,), cfg.astart, dt),
        n_pos=jnp.zeros((n_graph,), jnp.int32),
        steps=jnp.zeros((n_graph,), jnp.int32),
        started=jnp.zeros((n_graph,), bool),
        done=jnp.asarray(np.arange(n_graph) == n_graph - 1),
        fmax=jnp.zeros((n_graph,), dt),
        energy=jnp.zeros((n_graph,), dt),
        valid=jnp.asarray(True),
    )


def _fire_step(cfg: FireConfig, st: FireState, f_s, f_lam, energy, ng, nmask, fmax, max_steps):
    """One FIRE step of every structure not yet done, given its generalised forces (ASE's
    ``FIRE.step``: velocity mixing, time-step and mixing-factor updates, the step-length cap),
    with norms and sums over one structure's coordinates."""
    g = st.lam.shape[0]

    def per_graph(node_vals, graph_vals):
        return _per_graph_sum(node_vals, graph_vals, ng, g)

    row_s = jnp.where(nmask, jnp.linalg.norm(f_s, axis=-1), 0.0)
    fm = jnp.maximum(
        jnp.maximum(jax.ops.segment_max(row_s, ng, num_segments=g), 0.0),
        jnp.max(jnp.linalg.norm(f_lam, axis=-1), axis=-1),
    )
    done = st.done | (fm < fmax) | (st.steps >= max_steps)
    move = ~done
    # FIRE velocity mixing (ASE's FIRE.step), one structure at a time.
    vf = per_graph(jnp.sum(f_s * st.v_s, -1), jnp.sum(f_lam * st.v_lam, (-1, -2)))
    ff = per_graph(jnp.sum(f_s * f_s, -1), jnp.sum(f_lam * f_lam, (-1, -2)))
    vv = per_graph(jnp.sum(st.v_s * st.v_s, -1), jnp.sum(st.v_lam**2, (-1, -2)))
    mix = st.started & (vf > 0.0)
    reset = st.started & ~(vf > 0.0)
    coef = jnp.where(ff > 0, jnp.sqrt(vv) / jnp.sqrt(jnp.where(ff > 0, ff, 1.0)), 0.0)
    a_n, a_g = st.a[ng][:, None], st.a[:, None, None]
    v_s = jnp.where(mix[ng][:, None], (1 - a_n) * st.v_s + a_n * coef[ng][:, None] * f_s, st.v_s)
    v_lam = jnp.where(
        mix[:, None, None], (1 - a_g) * st.v_lam + a_g * coef[:, None, None] * f_lam, st.v_lam
    )
    v_s = jnp.where(reset[ng][:, None], 0.0, v_s)
    v_lam = jnp.where(reset[:, None, None], 0.0, v_lam)
    grow = mix & (st.n_pos > cfg.nmin)
    dt = jnp.where(grow, jnp.minimum(st.dt * cfg.finc, cfg.dtmax), st.dt)
    dt = jnp.where(reset, dt * cfg.fdec, dt)
    a = jnp.where(grow, st.a * cfg.fa, st.a)
    a = jnp.where(reset, cfg.astart, a)
    n_pos = jnp.where(mix, st.n_pos + 1, jnp.where(reset, 0, st.n_pos))
    v_s = v_s + dt[ng][:, None] * f_s
    v_lam = v_lam + dt[:, None, None] * f_lam
    dr_s, dr_lam = dt[ng][:, None] * v_s, dt[:, None, None] * v_lam
    normdr = jnp.sqrt(per_graph(jnp.sum(dr_s * dr_s, -1), jnp.sum(dr_lam * dr_lam, (-1, -2))))
    scale = jnp.where(normdr > cfg.maxstep, cfg.maxstep / jnp.where(normdr > 0, normdr, 1), 1)
    mn, mg = move[ng][:, None], move[:, None, None]
    return FireState(
        s=jnp.where(mn, st.s + scale[ng][:, None] * dr_s, st.s),
        lam=jnp.where(mg, st.lam + scale[:, None, None] * dr_lam, st.lam),
        v_s=jnp.where(mn, v_s, st.v_s),
        v_lam=jnp.where(mg, v_lam, st.v_lam),
        dt=jnp.where(move, dt, st.dt),
        a=jnp.where(move, a, st.a),
        n_pos=jnp.where(move, n_pos, st.n_pos),
        steps=st.steps + move.astype(st.steps.dtype),
        started=st.started | move,
        done=done,
        fmax=fm,
        energy=energy,
        valid=st.valid,
    )


class BatchedFIRE:
    """Compiled batched FIRE for one model; reuse an instance to reuse its compiled loop.

    Args:
        model: an object following the model contract (``cutoff``, ``model(batch)``).
        config: :class:`FireConfig`.
        dtype: floating dtype of positions (``"float64"`` needs 64-bit JAX enabled by the caller).
        predict: ``predict(model, batch, forces=, stress=)``; :func:`facet.physics.predict` by
            default.
    """

    def __init__(
        self,
        model: Any,
        config: FireConfig = FireConfig(),
        *,
        dtype: str = "float32",
        predict: PredictFn | None = None,
    ):
        self.cutoff = float(model.cutoff)
        self.config = config
        self.dtype = np.dtype(dtype)
        # the model's declared elements (facet.elements); None accepts every element
        self.supported_numbers = getattr(model, "supported_numbers", None)
        self.params, self._apply = pure_predict(model, predict)
        self._loop = jax.jit(self._run_loop, static_argnames=("relax_cell",))
        self._final = jax.jit(self._evaluate, static_argnames=("relax_cell",))

    # -- pure pieces -------------------------------------------------------------------------
    def _geometry(self, state, batch, cell0, cf):
        f = _expm(state.lam / cf[:, None, None])
        x = jnp.einsum("nij,nj->ni", f[batch.node_graph], state.s)
        cell = cell0 @ jnp.swapaxes(f, -1, -2)
        return f, x, cell

    def _evaluate(self, params, batch, base_mask, cell0, cf, lam, s, relax_cell):
        state = FireState(s, lam, *([None] * 11))
        _, x, cell = self._geometry(state, batch, cell0, cf)
        b = mask_edges(batch._replace(positions=x, cell=cell), base_mask, self.cutoff)
        return self._apply(params, b, forces=True, stress=relax_cell), x, cell

    def _gen_forces(self, params, state, batch, base_mask, cell0, cf, cell_moves, relax_cell):
        cfg = self.config
        f_def, x, cell = self._geometry(state, batch, cell0, cf)
        b = mask_edges(batch._replace(positions=x, cell=cell), base_mask, self.cutoff)
        pred = self._apply(params, b, forces=True, stress=relax_cell)
        forces = jnp.where(batch.node_mask[:, None], pred.forces, 0.0)
        f_s = jnp.einsum("ni,nij->nj", forces, f_def[batch.node_graph])
        if relax_cell:
            vol = jnp.abs(jnp.linalg.det(cell))
            eye = jnp.eye(3, dtype=cell.dtype)
            virial = -vol[:, None, None] * (pred.stress + cfg.scalar_pressure * eye)
            ucf = virial @ jnp.linalg.inv(jnp.swapaxes(f_def, -1, -2))
            _, vjp = jax.vjp(_expm, state.lam / cf[:, None, None])
            (f_lam,) = vjp(ucf)
            f_lam = jnp.where(cell_moves[:, None, None], f_lam / cf[:, None, None], 0.0)
        else:
            f_lam = jnp.zeros_like(state.lam)
        return f_s, f_lam, pred.energy, x, cell

    def _run_loop(
        self,
        params,
        state,
        batch,
        base_mask,
        cell0,
        cf,
        cell_moves,
        ref_x,
        ref_cell,
        fmax,
        max_steps,
        relax_cell,
    ):
        cfg = self.config
        ng, nmask = batch.node_graph, batch.node_mask

        def body(st: FireState) -> FireState:
            f_s, f_lam, energy, _, _ = self._gen_forces(
                params, st, batch, base_mask, cell0, cf, cell_moves, relax_cell
            )
            new = _fire_step(cfg, st, f_s, f_lam, energy, ng, nmask, fmax, max_steps)
            _, x_new, cell_new = self._geometry(new, batch, cell0, cf)
            ok = list_is_valid(
                x_new, cell_new, ref_x, ref_cell, ng, nmask, cell_moves, self.cutoff, cfg.skin
            )
            return new._replace(valid=ok)

        def cond(st: FireState):
            return st.valid & ~jnp.all(st.done)

        return jax.lax.while_loop(cond, body, state._replace(valid=jnp.asarray(True)))

    # -- driver ------------------------------------------------------------------------------
    def relax(
        self,
        structures: Sequence[Any],
        *,
        fmax: float = 0.05,
        max_steps: int = 500,
        relax_cell: bool = True,
    ) -> BatchedRelaxResult:
        """Relax ``structures`` (``ase.Atoms``) together; returns copies, inputs are untouched.

        The cell relaxes only for structures periodic in all three directions (and only with
        ``relax_cell``); slabs and molecules relax their positions. Elements the model does not
        support, empty structures and NaN positions raise :class:`facet.errors.InputError`.
        """
        t0 = time.perf_counter()
        atoms = [a.copy() for a in structures]
        self._check(atoms, relax_cell)
        setup = _Setup.of(atoms, relax_cell, self.dtype)
        state = _initial_state(setup, self.config, self.dtype)
        state, batch, n_rebuilds, initial = self._iterate(
            atoms, setup, state, fmax, max_steps, relax_cell
        )
        energies = self._write_results(atoms, setup, state, batch, relax_cell)
        steps = np.asarray(state.steps)[:-1]
        fm = np.asarray(state.fmax, np.float64)[:-1]
        return BatchedRelaxResult(
            atoms, energies, fm < fmax, steps, fm, n_rebuilds, time.perf_counter() - t0, initial
        )

    def _check(self, atoms: list, relax_cell: bool) -> None:
        """Refuse what cannot be relaxed, with one line naming the structure."""
        if not atoms:
            raise InputError("relax(): no structures given")
        check_structures(self, atoms)
        if self.config.scalar_pressure == 0.0:
            return
        for k, a in enumerate(atoms):
            if not (relax_cell and a.pbc.all()):
                why = "relax_cell=False" if not relax_cell else "not periodic in 3D"
                raise InputError(f"structure {k} ({a.get_chemical_formula()}): an external "
                                 f"pressure acts through the cell, which stays fixed here "
                                 f"({why}); it would be ignored")

    def _batch(self, atoms: list, setup: _Setup, state: FireState, capacity: int):
        """A Verlet list (at ``cutoff + skin``) of the current geometry, padded to ``capacity``
        or to a larger one when it no longer fits; returns ``(batch, capacity)``."""
        cfg = self.config
        cur_x, cur_cell = self._current(state, setup.cell0, setup.cf, setup.n_node, atoms)
        graphs = build_graphs(cur_x, [a.numbers for a in atoms], cur_cell,
                              [a.pbc for a in atoms], self.cutoff + cfg.skin)
        n_edges = sum(gr.n_edge for gr in graphs)
        if n_edges + 1 > capacity:
            capacity = capacity_for(n_edges, cfg.headroom)
        batch = padded_batch(graphs, capacity, n_node_pad=setup.n_node, dtype=self.dtype)
        return jax.tree_util.tree_map(jnp.asarray, batch), capacity

    def _iterate(self, atoms, setup: _Setup, state, fmax, max_steps, relax_cell):
        """Run the compiled loop, rebuilding the list outside ``jit`` whenever it leaves with a
        list that may miss a pair; returns ``(state, last batch, rebuilds, initial energies)``."""
        capacity, n_rebuilds, initial = 0, 0, None
        while True:
            batch, capacity = self._batch(atoms, setup, state, capacity)
            if initial is None:  # the energies of the inputs (same program as the final call)
                pred0, _, _ = self._final(
                    self.params, batch, batch.edge_mask, setup.cell0, setup.cf, state.lam,
                    state.s, relax_cell=relax_cell,
                )  # fmt: skip
                initial = np.asarray(pred0.energy, np.float64)[:-1]
            state = self._loop(
                self.params, state, batch, batch.edge_mask, setup.cell0, setup.cf,
                setup.cell_moves, batch.positions, batch.cell, jnp.asarray(fmax, self.dtype),
                jnp.asarray(max_steps), relax_cell=relax_cell,
            )  # fmt: skip
            if bool(jnp.all(state.done)):
                return state, batch, n_rebuilds, initial
            n_rebuilds += 1

    def _write_results(self, atoms, setup: _Setup, state, batch, relax_cell) -> np.ndarray:
        """Set the final geometry and a ``SinglePointCalculator`` (energy, forces, stress) on
        each of ``atoms``; returns the final energies ``(S,)``."""
        pred, xf, cellf = self._final(
            self.params, batch, batch.edge_mask, setup.cell0, setup.cf, state.lam, state.s,
            relax_cell=relax_cell,
        )  # fmt: skip
        # The final list was valid for the final geometry (loop exits only on done or invalid).
        xf, cellf = np.asarray(xf, np.float64), np.asarray(cellf, np.float64)
        energies = np.asarray(pred.energy, np.float64)[:-1]
        forces = np.asarray(pred.forces, np.float64)
        stress = None if pred.stress is None else np.asarray(pred.stress, np.float64)
        moves = np.asarray(setup.cell_moves)
        n0 = 0
        for k, a in enumerate(atoms):
            n = len(a)
            if moves[k]:
                a.set_cell(cellf[k], scale_atoms=False)
            a.positions = xf[n0 : n0 + n]
            results = {
                "energy": energies[k],
                "free_energy": energies[k],
                "forces": forces[n0 : n0 + n],
            }
            if stress is not None and a.pbc.all():
                results["stress"] = full_3x3_to_voigt_6_stress(stress[k])
            a.calc = SinglePointCalculator(a, **results)
            n0 += n
        return energies

    def _current(self, state, cell0, cf, n_node, atoms):
        f = np.asarray(_expm(state.lam / cf[:, None, None]), np.float64)
        s = np.asarray(state.s, np.float64)
        cells = np.asarray(cell0, np.float64) @ np.swapaxes(f, -1, -2)
        out, n0 = [], 0
        for k, a in enumerate(atoms):
            n = len(a)
            out.append(s[n0 : n0 + n] @ f[k].T)
            n0 += n
        return out, [cells[k] for k in range(len(atoms))]

    def compile_count(self) -> int:
        """Programs compiled so far by the loop (one per distinct edge capacity)."""
        return int(self._loop._cache_size())


def relax_batched(
    structures: Sequence[Any],
    model: Any,
    *,
    fmax: float = 0.05,
    max_steps: int = 500,
    relax_cell: bool = True,
    config: FireConfig = FireConfig(),
    dtype: str = "float32",
    predict: PredictFn | None = None,
) -> BatchedRelaxResult:
    """Relax many structures at once with FIRE (+ Fréchet cell filter) in one compiled loop.

    Example::

        from facet.dynamics import relax_batched
        result = relax_batched(list_of_atoms, model, fmax=0.05, max_steps=500)
        result.atoms[0].get_potential_energy()
    """
    return BatchedFIRE(model, config, dtype=dtype, predict=predict).relax(
        structures, fmax=fmax, max_steps=max_steps, relax_cell=relax_cell
    )
