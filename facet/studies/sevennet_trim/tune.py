"""Distillation fine-tune of the trimmed SevenNet-0's linear radial maps (:mod:`.trim`).

The teacher is the original SevenNet-0, so labels are free: the distillation dataset
(data/distill, generated with SevenNet-0 as teacher, see its PROVENANCE.md) holds the original
model's energies, forces and stresses, and :func:`teacher_labels` checks on a few frames that
they match the model loaded here before they are used. Only the linear maps ``W`` (5 x 8 x n_w)
get gradients; everything else is frozen.

Loss per mini-batch (mean over its structures, and over the force components):

.. math::  L = \\overline{(\\Delta E/N)^2} + \\overline{\\Delta F^2}
           + w_\\sigma\\,\\overline{\\Delta \\sigma^2},

with energies in meV/atom, forces in meV/A and stresses in meV/A^3 (``w_sigma`` defaults to 1).
Plain squares (not Huber): against a teacher there are no label outliers, and squares weight
the large force errors the MAE is made of. Adam with a cosine learning-rate decay to zero over
the time budget (Loshchilov & Hutter, ICLR 2017), mini-batches of whole structures merged into
one graph (torch_geometric ``Batch``, as sevenn trains), which on CPU costs several times less
per structure than one structure per call.
"""

from __future__ import annotations

import math
import time

import numpy as np

from . import evaluate as ev

KBAR_PER_EV_A3 = 1602.1766208


def distill_frames(root, split: str) -> list:
    """``(atoms, record)`` for every frame of the materials of ``split`` in ``root/splits.json``
    (MPTrj-format ``*.json.gz``/``*.json`` files beside it)."""
    import gzip
    import json
    from pathlib import Path

    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    root = Path(root)
    split_map = json.loads((root / "splits.json").read_text())
    if split not in split_map:
        raise KeyError(f"{root / 'splits.json'}: no {split!r} split (has {sorted(split_map)})")
    raw = {}
    skip = ("splits.json", "manifest.json", "stats.json")
    for f in sorted(root.glob("*.json.gz")) + sorted(
        p for p in root.glob("*.json") if p.name not in skip
    ):
        with (gzip.open if f.name.endswith(".gz") else open)(f, "rt") as fh:
            raw.update(json.load(fh))
    missing = [m for m in split_map[split] if m not in raw]
    if missing:
        raise KeyError(f"{root}: {split} materials {missing[:5]} not in its data files")
    out = []
    for m in split_map[split]:
        for fid, rec in raw[m].items():
            for key in ("structure", "uncorrected_total_energy", "force", "stress"):
                if rec.get(key) is None:
                    raise KeyError(f"{root}: material {m}, frame {fid}: no {key!r}")
            out.append((AseAtomsAdaptor.get_atoms(Structure.from_dict(rec["structure"])), rec))
    return out


def teacher_labels(frames, model, n_check: int = 6, tol_force: float = 2e-4):
    """``(energy eV, forces eV/A, sevenn stress eV/A^3)`` per frame from the dataset's labels,
    after checking ``n_check`` frames against ``model``.

    ``frames``: list of ``(atoms, record)`` with MPTrj-style records (``uncorrected_total_energy``
    eV, ``force`` eV/A, ``stress`` kBar with VASP sign, positive = compressive). SevenNet's raw
    stress output is ``-sigma_ASE`` in the order ``xx yy zz xy yz zx``, i.e. the kBar value / 1602.
    """
    import torch
    from sevenn._keys import PRED_FORCE, PRED_STRESS, PRED_TOTAL_ENERGY

    out = []
    for _, rec in frames:
        s = np.asarray(rec["stress"], dtype=np.float64) / KBAR_PER_EV_A3
        out.append(
            (
                torch.tensor(float(rec["uncorrected_total_energy"])),
                torch.as_tensor(np.asarray(rec["force"], dtype=np.float32)),
                torch.tensor(
                    [s[0, 0], s[1, 1], s[2, 2], s[0, 1], s[1, 2], s[2, 0]], dtype=torch.float32
                ),
            )
        )
    model.eval()
    step = max(1, len(frames) // n_check)
    for i in range(0, len(frames), step)[:n_check]:
        atoms, rec = frames[i]
        o = model(ev.to_graph(atoms, model.cutoff))
        e, f, s = out[i]
        de = abs(float(o[PRED_TOTAL_ENERGY]) - float(e)) / len(atoms)
        df = float((o[PRED_FORCE].detach() - f).abs().max())
        ds = float((o[PRED_STRESS].detach().reshape(-1) - s).abs().max())
        if de > 1e-4 or df > tol_force or ds > 1e-4:
            raise ValueError(
                f"distillation frame {rec.get('mp_id', '?')} (index {i}): labels differ from the "
                f"loaded SevenNet-0 (dE {de:.2e} eV/atom, dF {df:.2e} eV/A, dsigma {ds:.2e} "
                "eV/A^3); the dataset was not made with this teacher"
            )
    return out


def _batch_loss(model, graphs, labels, n_atoms, idx, stress_weight: float):
    """The fine-tune loss of the structures ``idx``: squares of the energy error per atom
    (meV/atom), the force errors (meV/A) and ``stress_weight`` times the stress errors
    (meV/A^3), each averaged over its entries."""
    import torch
    from sevenn._keys import PRED_FORCE, PRED_STRESS, PRED_TOTAL_ENERGY
    from torch_geometric.data import Batch

    out = model(Batch.from_data_list([graphs[i] for i in idx]))
    e_ref = torch.stack([labels[i][0] for i in idx]).to(torch.float32)
    f_ref = torch.cat([labels[i][1] for i in idx])
    s_ref = torch.stack([labels[i][2] for i in idx])
    de = 1e3 * (out[PRED_TOTAL_ENERGY].reshape(-1) - e_ref) / n_atoms[idx]
    df = 1e3 * (out[PRED_FORCE] - f_ref)
    ds = 1e3 * (out[PRED_STRESS].reshape(len(idx), 6) - s_ref)
    return (de**2).mean() + (df**2).mean() + stress_weight * (ds**2).mean()


def finetune(
    model,
    keys,
    structures,
    labels,
    *,
    seconds: float,
    lr: float,
    batch: int,
    stress_weight: float = 1.0,
    seed: int = 0,
    log=print,
):
    """Adam + cosine decay on ``model._modules[k].weight_nn.weight`` for ``k`` in ``keys`` only.

    The cosine schedule runs over the wall-clock budget ``seconds`` (the learning rate at time
    ``t`` is ``lr * (1 + cos(pi t / seconds)) / 2``), so a loaded machine does fewer steps but
    still anneals. Returns ``(per-epoch rows, per-step (seconds, loss, lr) rows)``.
    """
    import torch

    graphs = [ev.to_graph(a, model.cutoff) for a in structures]
    n_atoms = torch.tensor([len(a) for a in structures], dtype=torch.float32)
    for p in model.parameters():
        p.requires_grad_(False)
    params = [model._modules[k].weight_nn.weight for k in keys]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    rng = np.random.default_rng(seed)
    history, steps, epoch = [], [], 0
    model.set_is_batch_data(True)
    model.train()
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < seconds:
            order = rng.permutation(len(graphs))
            losses = []
            for start in range(0, len(order), batch):
                t = time.perf_counter() - t0
                if t >= seconds:
                    break
                for g in opt.param_groups:
                    g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * t / seconds))
                idx = order[start : start + batch]
                loss = _batch_loss(model, graphs, labels, n_atoms, idx, stress_weight)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"fine-tune loss is {float(loss)} at step {len(steps)}"
                    )
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                steps.append((time.perf_counter() - t0, losses[-1], opt.param_groups[0]["lr"]))
            epoch += 1
            history.append(
                {
                    "epoch": epoch,
                    "seconds": time.perf_counter() - t0,
                    "mean_loss": float(np.mean(losses)) if losses else float("nan"),
                    "batches": len(losses),
                }
            )
            log(
                f"  fine-tune epoch {epoch}: loss {history[-1]['mean_loss']:.1f} "
                f"({len(losses)} batches, {history[-1]['seconds']:.0f} s)"
            )
    finally:
        model.eval()
        model.set_is_batch_data(False)
        for p in params:
            p.requires_grad_(False)
    return history, steps
