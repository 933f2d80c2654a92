"""The model and data a run starts from: the architecture (from the config or, when
fine-tuning, from the pretrained checkpoint), the training and validation structures, the
pretrained weights, and the per-element reference energies (E0s), scale and shift.

The training loop (:mod:`facet.train.loop`) calls :func:`prepare_model_and_data`, then
:func:`set_reference_energies`; both report in one line what they did.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import numpy as np

from .config import ConfigError, TrainConfig
from .data import elements_missing, load_training_data
from .e0 import fit_atomic_energies, fit_scale_shift, load_atomic_energies
from .evaluate import predict_dataset
from .fingerprint import element_numbers
from .model_io import (
    create_model_from_section,
    finetune_section,
    load_weights_into,
    resolve_checkpoint,
    resolve_model_dir,
)

__all__ = ["prepare_model_and_data", "set_reference_energies"]


def prepare_model_and_data(cfg: TrainConfig, model_factory: Callable | None,
                           data: tuple[Sequence, Sequence] | None, say):
    """``(cfg, model, train_graphs, val_graphs, finetune_source)``: ``cfg`` with the
    pretrained architecture when fine-tuning from a checkpoint, the untrained model, the data
    (``data`` or read from ``cfg.data``) and the resolved checkpoint to fine-tune from (or
    None)."""
    finetune_src = None
    if cfg.model.init_from is not None and model_factory is None:
        # The architecture comes from the checkpoint (model_io.finetune_section).
        arch, finetune_src = finetune_section(cfg.model, report=say)
        cfg = dataclasses.replace(cfg, model=arch)
    model = create_model_from_section(cfg.model, model_factory)
    cutoff = float(cfg.data.cutoff if cfg.data.cutoff is not None else model.cutoff)
    if data is None:
        train_g, val_g = load_training_data(cfg.data, cutoff)
    else:
        train_g, val_g = list(data[0]), list(data[1])
    say(f"data: {len(train_g)} training and {len(val_g)} validation structures, cutoff {cutoff} A")
    if missing := elements_missing(train_g, val_g):
        say(f"warning: validation structures contain elements with no training structure "
            f"(Z = {missing}); their E0 is 0 and their errors will be large")
    return cfg, model, train_g, val_g, finetune_src


def _load_pretrained(model, cfg: TrainConfig, finetune_src, say) -> None:
    src = finetune_src or resolve_checkpoint(resolve_model_dir(cfg.model.init_from), report=say)
    try:
        load_weights_into(model, src)
    except (ValueError, KeyError) as err:
        raise ConfigError(f"config key 'model.init_from': the weights of {src} do not fit "
                          f"the model to train: {' '.join(str(err).split())}") from err
    say(f"fine-tuning from {src}")


def _table_e0(path: str, train_g) -> np.ndarray:
    """Fixed E0s of ``model.atomic_energies``; every training element must have one."""
    try:
        return load_atomic_energies(path, required=sorted(element_numbers(train_g)))
    except ValueError as err:
        raise ConfigError(f"config key 'model.atomic_energies': {err}") from None


def _finetune_e0(model, train_g, cfg: TrainConfig, predict_fn, dtype, say) -> np.ndarray:
    """E0s for fine-tuning: the checkpoint's, corrected by a least-squares fit of the pretrained
    model's energy residuals on the new training data. With the same DFT reference the
    corrections are small; a shifted reference (another code or functional) is absorbed into
    them; elements absent from the new data keep their E0."""
    old = np.asarray(jax.device_get(model.atomic_energies[...]), np.float64)
    labelled = [g for g in train_g if g.energy is not None]
    if not labelled:
        return old
    budget = (cfg.data.max_nodes, cfg.data.max_edges, cfg.data.max_graphs)
    say(f"fine-tuning: predicting the {len(labelled)} labelled training structures with the "
        f"pretrained model to correct its E0s (one pass without gradients)")
    pred = predict_dataset(model, labelled, budget, predict_fn=predict_fn, dtype=dtype)
    residual = np.asarray([g.energy for g in labelled]) - pred["energy"]
    correction = fit_atomic_energies(labelled, energies=residual)
    per_atom = np.abs(residual).sum() / sum(g.n_node for g in labelled)
    changed = {int(z): round(float(correction[z]), 4) for z in np.flatnonzero(correction)}
    say(f"fine-tuning: the pretrained model's energy error on the training data is "
        f"{1e3 * per_atom:.1f} meV/atom; E0 corrections (eV) fitted to it: {changed}")
    return old + correction


def set_reference_energies(model, cfg: TrainConfig, train_g, *, resume: bool, finetune_src,
                           predict_fn, dtype, say) -> None:
    """Load the pretrained weights (a fresh fine-tuning run), then set the E0s (fine-tuned,
    from a table, or fitted) and, for a model trained from scratch, the scale and shift fitted
    to the training data. A resumed run takes all of these from its checkpoint (nothing to do
    here; :meth:`facet.train.loop.Trainer._restore`)."""
    if resume:
        return
    if cfg.model.init_from is not None:
        _load_pretrained(model, cfg, finetune_src, say)
        e0 = _finetune_e0(model, train_g, cfg, predict_fn, dtype, say)
    elif cfg.model.atomic_energies != "fit":
        e0 = _table_e0(cfg.model.atomic_energies, train_g)
    else:
        e0 = fit_atomic_energies(train_g)
    model.set_atomic_energies(e0)
    if cfg.model.init_from is None:
        scale, shift = fit_scale_shift(train_g, e0)
        model.set_scale_shift(scale, shift)
        how = ("fitted" if cfg.model.atomic_energies == "fit"
               else f"from {cfg.model.atomic_energies}")
        say(f"E0s {how} ({len(train_g)} training structures); scale {scale:.4g}, "
            f"shift {shift:.4g} eV")
