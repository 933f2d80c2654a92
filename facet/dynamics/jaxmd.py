"""Molecular dynamics compiled end to end: jax-md integrators driven by a Facet model.

The integrators are jax-md's (Schoenholz and Cubuk, NeurIPS 2020; https://github.com/jax-md/
jax-md): velocity Verlet for NVE and the BAOAB Langevin scheme of Davidchack, Ouldridge and
Tretyakov (J. Chem. Phys. 142, 144114 (2015)) for NVT. Forces come from the model through a
:class:`~facet.data.GraphBatch` whose Verlet list (built at ``cutoff + skin``) is rebuilt outside
``jit`` only when :func:`~facet.dynamics.neighbors.list_is_valid` fails, jax-md style. Several
structures (replicas) can run together in one batch.

Units are ASE's: eV, A, amu, and time in ``A sqrt(amu / eV)`` (``ase.units.fs`` = 0.0982 of it),
so momenta match ``atoms.get_momenta()``. Positions are integrated unwrapped (``space.free``):
the integer image shifts of the edges stay correct as atoms leave the cell.

A step that would leave the list incomplete is rolled back and redone after the rebuild, so
every force the integrator uses was computed with a complete list.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from ase import units

from .ensembles import builder, centre_of_mass_at_rest
from .neighbors import build_graphs, capacity_for, list_is_valid, mask_edges, padded_batch
from .potential import PredictFn, check_structures, pure_predict

__all__ = ["JaxMDConfig", "JaxMDResult", "JaxMD", "run_jax_md"]


@dataclass(frozen=True)
class JaxMDConfig:
    """Settings of a compiled MD run.

    ``timestep_fs`` in fs; ``temperature_K`` for the thermostat (NVT); ``friction_per_fs`` the
    Langevin friction in 1/fs; ``log_interval`` steps between recorded energies;
    ``buffer_records`` energies kept on the device between host transfers (a static shape, so
    the run length never changes the compiled program); ``skin`` (A) and ``headroom`` as in
    :class:`facet.dynamics.FireConfig`; ``record_positions`` also keeps the positions of every
    record (for a trajectory file). The last step is always recorded, whether or not it is a
    multiple of ``log_interval``.
    """

    ensemble: str = "nve"
    timestep_fs: float = 1.0
    temperature_K: float = 300.0
    friction_per_fs: float = 0.01
    log_interval: int = 10
    buffer_records: int = 128
    skin: float = 0.5
    headroom: float = 0.1
    record_positions: bool = False


class JaxMDResult(NamedTuple):
    atoms: list  # final structures (positions unwrapped, momenta set)
    steps: np.ndarray  # (R,) step index of each record
    potential_energy: np.ndarray  # (R, S) eV per structure
    kinetic_energy: np.ndarray  # (R, S) eV
    temperature: np.ndarray  # (R, S) K, 2 E_kin / (dof k_B); dof 3N, 3N - 3 for NVE at rest
    n_rebuilds: int
    wall_time: float  # s, compilation included
    positions: np.ndarray | None = None  # (R, N_total, 3) A, with config.record_positions


class _Carry(NamedTuple):
    md: Any  # jax-md state
    step: jax.Array
    n_rec: jax.Array
    rec_step: jax.Array
    rec_epot: jax.Array
    rec_ekin: jax.Array
    valid: jax.Array
    rec_pos: jax.Array


def _padded(atoms: list, values, fill: float) -> np.ndarray:
    """Per-atom ``values(a)`` of every structure, concatenated, plus one padding row."""
    first = np.asarray(values(atoms[0]))
    out = np.full((sum(len(a) for a in atoms) + 1, *first.shape[1:]), fill)
    out[:-1] = np.concatenate([values(a) for a in atoms])
    return out


class _Records(NamedTuple):
    """Host copies of the recorded steps, energies and (optionally) positions, per segment."""

    steps: list
    epot: list
    ekin: list
    positions: list

    def first(self, epot, ekin, positions) -> None:
        self.steps.append([0])
        self.epot.append(np.asarray(epot))
        self.ekin.append(np.asarray(ekin))
        self.positions.append(np.asarray(positions, np.float64)[None])

    def add(self, c: _Carry, with_positions: bool) -> None:
        n = int(c.n_rec)
        self.steps.append(np.asarray(c.rec_step[:n]))
        self.epot.append(np.asarray(c.rec_epot[:n]))
        self.ekin.append(np.asarray(c.rec_ekin[:n]))
        if with_positions:
            self.positions.append(np.asarray(c.rec_pos[:n], np.float64))


class JaxMD:
    """Compiled MD for one model and configuration; reuse an instance to reuse the program."""

    def __init__(
        self,
        model: Any,
        config: JaxMDConfig = JaxMDConfig(),
        *,
        dtype: str = "float32",
        predict: PredictFn | None = None,
    ):
        self._make = builder(config.ensemble, "jax_md")
        self.config = config
        self.cutoff = float(model.cutoff)
        self.dtype = np.dtype(dtype)
        # the model's declared elements (facet.elements); None accepts every element
        self.supported_numbers = getattr(model, "supported_numbers", None)
        self.params, self._apply = pure_predict(model, predict)
        self.dt = config.timestep_fs * units.fs
        self.kt = config.temperature_K * units.kB
        self.gamma = config.friction_per_fs / units.fs
        self._loop = jax.jit(self._run)
        self._init = jax.jit(self._init_state)
        self._record0 = jax.jit(self._energies)

    def _force_fn(self, params):
        def force_fn(r, batch, base_mask):
            b = mask_edges(batch._replace(positions=r), base_mask, self.cutoff)
            f = self._apply(params, b, forces=True, stress=False).forces
            return jnp.where(batch.node_mask[:, None], f, 0.0)

        return force_fn

    def _sim(self, params):
        from jax_md import space  # lazy: 32-40 s to import (facet.dynamics.ensembles)

        _, shift_fn = space.free()
        return self._make(self._force_fn(params), shift_fn, self.dt, self.kt, self.gamma)

    def _init_state(self, params, key, positions, mass, momenta, batch, base_mask):
        init_fn, _ = self._sim(params)
        return init_fn(
            key,
            positions,
            kT=self.kt,
            mass=mass,
            momenta=momenta,
            batch=batch,
            base_mask=base_mask,
        )

    def _run(self, params, md_state, batch, base_mask, ref_x, target_step, step0):
        _, step_fn = self._sim(params)
        cfg, g = self.config, batch.cell.shape[0]
        nrec = cfg.buffer_records
        no_cell_moves = jnp.zeros((g,), bool)

        def record(c: _Carry) -> _Carry:
            b = batch._replace(positions=c.md.position, edge_mask=base_mask)
            epot, ekin = self._energies(params, c.md, b)
            epot, ekin = epot[0], ekin[0]
            pos = c.rec_pos.at[c.n_rec].set(c.md.position) if cfg.record_positions else c.rec_pos
            return c._replace(
                n_rec=c.n_rec + 1,
                rec_step=c.rec_step.at[c.n_rec].set(c.step),
                rec_epot=c.rec_epot.at[c.n_rec].set(epot),
                rec_ekin=c.rec_ekin.at[c.n_rec].set(ekin),
                rec_pos=pos,
            )

        def body(c: _Carry) -> _Carry:
            new = step_fn(c.md, batch=batch, base_mask=base_mask)
            ok = list_is_valid(
                new.position,
                batch.cell,
                ref_x,
                batch.cell,
                batch.node_graph,
                batch.node_mask,
                no_cell_moves,
                self.cutoff,
                cfg.skin,
            )
            md = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, c.md)
            c = c._replace(md=md, step=c.step + ok.astype(c.step.dtype), valid=ok)
            due = ok & ((c.step % cfg.log_interval == 0) | (c.step == target_step))
            return jax.lax.cond(due, record, lambda x: x, c)

        def cond(c: _Carry):
            return c.valid & (c.step < target_step) & (c.n_rec < nrec)

        dt = ref_x.dtype
        carry = _Carry(
            md_state,
            step0,
            jnp.asarray(0),
            jnp.zeros((nrec,), step0.dtype),
            jnp.zeros((nrec, g), dt),
            jnp.zeros((nrec, g), dt),
            jnp.asarray(True),
            jnp.zeros((nrec, *ref_x.shape) if cfg.record_positions else (1, 1, 3), dt),
        )
        return jax.lax.while_loop(cond, body, carry)

    def run(
        self,
        structures: Any | Sequence[Any],
        steps: int,
        *,
        seed: int = 0,
        progress: Any = None,
    ) -> JaxMDResult:
        """Run ``steps`` MD steps of one ``ase.Atoms`` or a list of them (replicas, together).

        Initial momenta are the structures' own (``atoms.get_momenta()``); set them with
        ``ase.md.velocitydistribution.MaxwellBoltzmannDistribution`` beforehand. Energies are
        recorded at step 0, every ``log_interval`` steps and at the last step. ``progress``, if
        given, is called with the number of steps done after every compiled segment.
        """
        t0 = time.perf_counter()
        single = not isinstance(structures, list | tuple)
        atoms = [a.copy() for a in ([structures] if single else structures)]
        check_structures(self, atoms)
        n_node = sum(len(a) for a in atoms) + 1
        # NVE keeps a zero total momentum: those 3 degrees of freedom never carry energy (the
        # Langevin thermostat does give the centre of mass its share: 3N there).
        nve = self.config.ensemble == "nve"
        dof = np.array([3.0 * len(a) - 3.0 * (nve and centre_of_mass_at_rest(a)) for a in atoms])
        x, mass, mom = (_padded(atoms, f, fill) for f, fill in
                        ((lambda a: a.positions, 0.0), (lambda a: a.get_masses(), 1.0),
                         (lambda a: a.get_momenta(), 0.0)))  # fmt: skip
        rec = _Records([], [], [], [])
        capacity, n_rebuilds, md_state, step = 0, -1, None, 0
        while True:
            cur = x if md_state is None else np.asarray(md_state.position, np.float64)
            batch, capacity = self._batch(atoms, cur, capacity, n_node)
            n_rebuilds += 1
            if md_state is None:
                md_state = self._init(self.params, jax.random.PRNGKey(seed), batch.positions,
                                      jnp.asarray(mass, self.dtype), jnp.asarray(mom, self.dtype),
                                      batch, batch.edge_mask)  # fmt: skip
                rec.first(*self._record0(self.params, md_state, batch), md_state.position)
            step_at_build = step
            md_state, step = self._segments(md_state, batch, steps, step, rec, progress)
            if step >= steps:
                break
            if step == step_at_build:
                # Even a freshly built list did not survive one step: rebuilding cannot help.
                raise ValueError(
                    f"MD step {step}: an atom moves more than half the neighbour-list skin "
                    f"({self.config.skin} A) in one {self.config.timestep_fs} fs step, so no list "
                    "stays complete; use a shorter timestep or a larger skin, and check the "
                    "temperature and forces"
                )
        return self._result(atoms, md_state, rec, n_rebuilds, time.perf_counter() - t0, dof)

    def _batch(self, atoms: list, positions: np.ndarray, capacity: int, n_node: int):
        """A Verlet list (at ``cutoff + skin``) of ``positions``, padded to ``capacity`` or to a
        larger one when it no longer fits; returns ``(batch, capacity)``."""
        parts = np.split(positions[:-1], np.cumsum([len(a) for a in atoms])[:-1])
        cells = [np.asarray(a.cell) for a in atoms]
        graphs = build_graphs(parts, [a.numbers for a in atoms], cells, [a.pbc for a in atoms],
                              self.cutoff + self.config.skin)
        n_edges = sum(gr.n_edge for gr in graphs)
        if n_edges + 1 > capacity:
            capacity = capacity_for(n_edges, self.config.headroom)
        batch = padded_batch(graphs, capacity, n_node_pad=n_node, dtype=self.dtype)
        batch = jax.tree_util.tree_map(jnp.asarray, batch)
        return batch._replace(positions=jnp.asarray(positions, self.dtype)), capacity

    def _segments(self, md_state, batch, steps: int, step: int, rec: _Records, progress):
        """Run compiled segments (each ends when its record buffer is full) until ``steps`` or
        until the list may miss a pair; returns ``(md_state, step)``."""
        while True:
            c = self._loop(self.params, md_state, batch, batch.edge_mask, batch.positions,
                           jnp.asarray(steps), jnp.asarray(step))  # fmt: skip
            md_state, step = c.md, int(c.step)
            if progress is not None:
                progress(step)
            rec.add(c, self.config.record_positions)
            if not bool(c.valid) or step >= steps:
                return md_state, step

    def _result(self, atoms, md_state, rec: _Records, n_rebuilds: int, wall: float,
                dof: np.ndarray):
        """Set the final positions and momenta on ``atoms`` and collect the records."""
        xs = np.asarray(md_state.position, np.float64)
        ps = np.asarray(md_state.momentum, np.float64)
        n0 = 0
        for a in atoms:
            n = len(a)
            a.positions = xs[n0 : n0 + n]
            a.set_momenta(ps[n0 : n0 + n])
            n0 += n
        epot = np.concatenate([np.reshape(e, (-1, len(atoms) + 1)) for e in rec.epot])[:, :-1]
        ekin = np.concatenate([np.reshape(e, (-1, len(atoms) + 1)) for e in rec.ekin])[:, :-1]
        return JaxMDResult(
            atoms,
            np.concatenate([np.ravel(s) for s in rec.steps]),
            epot,
            ekin,
            2.0 * ekin / (dof * units.kB),
            n_rebuilds,
            wall,
            np.concatenate(rec.positions)[:, :-1] if self.config.record_positions else None,
        )

    def _energies(self, params, md_state, batch):
        b = mask_edges(batch, batch.edge_mask, self.cutoff)
        epot = self._apply(params, b, forces=False, stress=False).energy
        g = batch.cell.shape[0]
        ke = jnp.sum(md_state.momentum**2, -1) / (2.0 * md_state.mass[:, 0])
        ke = jnp.where(batch.node_mask, ke, 0.0)
        return epot[None], jax.ops.segment_sum(ke, batch.node_graph, num_segments=g)[None]

    def compile_count(self) -> int:
        """Programs compiled by the MD loop (one per distinct edge capacity)."""
        return int(self._loop._cache_size())


def run_jax_md(
    structures: Any,
    model: Any,
    steps: int,
    *,
    config: JaxMDConfig = JaxMDConfig(),
    dtype: str = "float32",
    predict: PredictFn | None = None,
    seed: int = 0,
) -> JaxMDResult:
    """Run a compiled jax-md simulation; see :class:`JaxMD`.

    Example::

        from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
        MaxwellBoltzmannDistribution(atoms, temperature_K=300)
        res = run_jax_md(atoms, model, 1000, config=JaxMDConfig(ensemble="nve"))
        res.potential_energy + res.kinetic_energy  # conserved in NVE
    """
    return JaxMD(model, config, dtype=dtype, predict=predict).run(structures, steps, seed=seed)
