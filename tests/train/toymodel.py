"""A small learnable pair potential that implements the Facet model contract, for fast tests of
the training machinery (compilation of the full model dominates CPU test time).

Node energy ``E_i = scale[Z_i] * 1/2 sum_j sum_k W[Z_i, k] g_k(r_ij) f_c(r_ij) + shift[Z_i]
+ E0[Z_i]`` with Gaussian radial functions ``g_k`` and a cosine cutoff ``f_c``; forces and stress
by automatic differentiation (:func:`toy_predict`, the same definitions as the contract's
``facet.physics.predict``: F = -dE/dx, stress = (1/V) dE/d(strain), ASE sign).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class ToyAtomicEnergies(nnx.Variable):
    """Not an nnx.Param: the optimiser must skip it."""


class ToyPredictions(NamedTuple):
    energy: jax.Array
    node_energies: jax.Array
    forces: jax.Array | None
    stress: jax.Array | None


class PairModel(nnx.Module):
    def __init__(self, *, cutoff: float = 4.0, n_basis: int = 6, seed: int = 0, dtype=jnp.float32):
        self.cutoff = float(cutoff)
        key = jax.random.PRNGKey(seed)
        self.w = nnx.Param(0.1 * jax.random.normal(key, (119, n_basis), dtype))
        self.scale = nnx.Param(jnp.ones((119,), dtype))
        self.shift = nnx.Param(jnp.zeros((119,), dtype))
        self.atomic_energies = ToyAtomicEnergies(jnp.zeros((119,), dtype))
        self.mu = np.linspace(1.0, cutoff, n_basis)

    def set_atomic_energies(self, e0):
        self.atomic_energies[...] = jnp.asarray(e0, self.atomic_energies[...].dtype)

    def set_scale_shift(self, scale, shift):
        dt = self.scale[...].dtype
        self.scale[...] = jnp.broadcast_to(jnp.asarray(scale, dt), (119,))
        self.shift[...] = jnp.broadcast_to(jnp.asarray(shift, dt), (119,))

    def __call__(self, batch):
        pos = batch.positions
        cell_e = batch.cell[batch.node_graph[batch.receivers]]
        vec = (
            pos[batch.senders]
            + jnp.einsum("ea,eab->eb", batch.shifts.astype(pos.dtype), cell_e)
            - pos[batch.receivers]
        )
        r2 = jnp.sum(vec * vec, axis=-1)
        safe = jnp.where(batch.edge_mask, r2, 1.0)
        r = jnp.sqrt(safe)
        fc = jnp.where(r < self.cutoff, 0.5 * (jnp.cos(jnp.pi * r / self.cutoff) + 1.0), 0.0)
        g = jnp.exp(-((r[:, None] - self.mu) ** 2) / 0.5)
        zi = batch.numbers[batch.receivers]
        phi = jnp.sum(self.w[...][zi] * g, axis=-1) * fc
        phi = jnp.where(batch.edge_mask, phi, 0.0)
        out = 0.5 * jax.ops.segment_sum(phi, batch.receivers, pos.shape[0])
        z = batch.numbers
        e = self.scale[...][z] * out + self.shift[...][z] + self.atomic_energies[...][z]
        return jnp.where(batch.node_mask, e, 0.0)


def toy_predict(model, batch, *, forces=True, stress=True):
    G = batch.cell.shape[0]
    dt = batch.positions.dtype

    def energy(pos, strain):
        sym = 0.5 * (strain + jnp.swapaxes(strain, -1, -2))
        pos2 = pos + jnp.einsum("na,nab->nb", pos, sym[batch.node_graph])
        cell2 = batch.cell + jnp.einsum("gia,gab->gib", batch.cell, sym)
        node_e = model(batch._replace(positions=pos2, cell=cell2))
        return jnp.sum(node_e), node_e

    strain = jnp.zeros((G, 3, 3), dt)
    (_, node_e), (dpos, dstrain) = jax.value_and_grad(energy, argnums=(0, 1), has_aux=True)(
        batch.positions, strain
    )
    e = jax.ops.segment_sum(node_e, batch.node_graph, G)
    e = jnp.where(batch.graph_mask, e, 0.0)
    vol = jnp.abs(jnp.linalg.det(batch.cell))
    periodic = jnp.all(batch.pbc, axis=-1) & batch.graph_mask
    s = jnp.where(
        periodic[:, None, None], dstrain / jnp.where(periodic, vol, 1.0)[:, None, None], 0.0
    )
    return ToyPredictions(e, node_e, -dpos if forces else None, s if stress else None)


def random_crystals(n: int, *, seed: int = 0, cutoff: float = 4.0, elements=(14, 8, 3)):
    """``n`` small perturbed periodic cells (2-6 atoms) as unlabelled ``ase.Atoms``."""
    from ase import Atoms

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        na = int(rng.integers(2, 7))
        a = 3.0 + 0.4 * na ** (1 / 3) + rng.uniform(0, 0.3)
        cell = a * np.eye(3) + rng.normal(0, 0.1, (3, 3))
        frac = rng.uniform(0, 1, (na, 3))
        nums = rng.choice(elements, na)
        out.append(Atoms(numbers=nums, scaled_positions=frac, cell=cell, pbc=True))
    return out


def labelled_graphs(n: int, teacher: PairModel, *, seed: int = 0, cutoff: float = 4.0):
    """Graphs with energy/forces/stress labels computed by ``teacher`` (float64 NumPy)."""
    from facet.data.batch import collate
    from facet.data.neighbors import graph_from_atoms

    raw = [
        graph_from_atoms(a, cutoff, key=f"toy-{k // 3}/{k}")
        for k, a in enumerate(random_crystals(n, seed=seed, cutoff=cutoff))
    ]
    # One batch, one (eager) evaluation: labelling graph by graph would dispatch per shape.
    b = jax.tree.map(jnp.asarray, collate(raw))
    p = toy_predict(teacher, b)
    energy, forces, stress = (np.asarray(x, np.float64) for x in (p.energy, p.forces, p.stress))
    graphs, n0 = [], 0
    for k, g in enumerate(raw):
        graphs.append(
            g.__class__(
                **{
                    **g.__dict__,
                    "energy": float(energy[k]),
                    "forces": forces[n0 : n0 + g.n_node],
                    "stress": stress[k],
                }
            )
        )
        n0 += g.n_node
    return graphs


def data_parallel_vs_union() -> dict:
    """A data-parallel gradient and training step against one device on the union batch.

    The toy model (float64, 10 labelled crystals) is trained with AdamW + EMA; the
    :class:`~facet.train.batching.EpochBatcher` packs the first batch for every device of the mesh
    (all processes), and this process fills only its own slots. The same loss gradient and step
    are computed (a) sharded over the mesh and (b) on this process's first local device with the
    union of every device's structures in one batch; in float64 the two agree to round-off.
    Used by ``dp_check.py`` (one process, two host devices) and ``mh_worker.py`` (two processes).

    Returns the JSON-ready comparison: ``loss`` (union, sharded), ``grad_max``, the maximal
    differences ``grad_diff``, ``errsum_diff``, ``state_diff`` (parameters), ``ema_diff``, the
    per-device structure counts ``n_struct``, this process's ``slots`` and ``local_structures``,
    ``batch_devices`` (devices the sharded batch lives on) and ``param_sharding_replicated``.
    """
    from facet.data.batch import collate
    from facet.train.batching import Budget, EpochBatcher, stack_batches
    from facet.train.config import LossSection, OptimSection
    from facet.train.optim import make_optimizer
    from facet.train.parallel import host_slots, make_mesh, put_batch, replicate, to_host
    from facet.train.step import init_state, make_loss_fn, make_step_fns, split_model

    teacher = PairModel(seed=5, dtype=jnp.float64)
    graphs = labelled_graphs(10, teacher, seed=2)
    graphdef, params, rest = split_model(PairModel(seed=0, dtype=jnp.float64))
    loss_cfg = LossSection(
        energy_kind="mse",
        forces_kind="huber",
        stress_kind="mae",
        huber_delta=0.05,
        stress_weight=1.0,
    )
    mesh = make_mesh()
    slots = host_slots(mesh)
    batcher = EpochBatcher(graphs, Budget(20, 800, 5), seed=0, n_devices=2, device_slots=slots)
    packs = batcher.global_indices(0, 0)
    assert all(p.size for p in packs), [p.size for p in packs]
    local = batcher.local_batch(0, 0)
    sharded = put_batch(local, mesh)

    # Reference: the union of every device's structures on this process's own device.
    dev = jax.local_devices()[0]
    union = [graphs[i] for p in packs for i in p]
    single = stack_batches([collate(union, 64, 2400, 16)])
    single = jax.device_put(jax.tree.map(jnp.asarray, single), dev)
    local_params, local_rest = jax.device_put((params, rest), dev)

    loss_fn, _ = make_loss_fn(graphdef, loss_cfg, predict_fn=toy_predict)
    grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    (l2, e2), g2 = grad(replicate(params, mesh), replicate(rest, mesh), sharded)
    (l1, e1), g1 = grad(local_params, local_rest, single)

    tx = make_optimizer(OptimSection(lr=1e-2, warmup_steps=0), 10)
    step, _ = make_step_fns(graphdef, tx, loss_cfg, ema_decay=0.9, predict_fn=toy_predict)
    step = jax.jit(step)
    s2, _ = step(replicate(init_state(params, tx), mesh), replicate(rest, mesh), sharded)
    s1, _ = step(jax.device_put(init_state(params, tx), dev), local_rest, single)

    def maxdiff(a, b):
        return max(
            float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
            for x, y in zip(jax.tree.leaves(to_host(a)), jax.tree.leaves(to_host(b)), strict=True)
        )

    return {
        "slots": slots,
        "local_structures": int(local.graph_mask.sum()),
        "n_struct": [int(p.size) for p in packs],
        "batch_devices": len(sharded.positions.sharding.device_set),
        "param_sharding_replicated": bool(s2.params["w"].get_value().sharding.is_fully_replicated),
        "loss": [float(l1), float(to_host(l2))],
        "grad_max": max(float(np.max(np.abs(np.asarray(x)))) for x in jax.tree.leaves(to_host(g1))),
        "grad_diff": maxdiff(g1, g2),
        "errsum_diff": maxdiff(e1, e2),
        "state_diff": maxdiff(s1.params, s2.params),
        "ema_diff": maxdiff(s1.ema, s2.ema),
    }
