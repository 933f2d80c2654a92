"""Typed, frozen configuration of a training run: one source of truth, YAML at the edge.

A run is described by :class:`TrainConfig`, five frozen sections (``model``, ``data``, ``optim``,
``loss``, ``run``). It is loaded from YAML by :func:`load_config`, overridden from the command
line with dotted ``key=value`` strings (``optim.lr=1e-3``, ``data.train=[a.json,b.json]``), and
saved as ``config.yaml`` beside every checkpoint. Every key and every value type is checked
*before* any compute: an unknown key or a wrong type raises :class:`ConfigError` naming the
dotted key.

Units: energies eV, lengths Angstrom, stress eV/A^3 (ASE sign), learning rates per step.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from ..model_spec import DTYPES, ModelSpec

__all__ = [
    "ConfigError",
    "ModelSection",
    "DataSection",
    "OptimSection",
    "LossSection",
    "RunSection",
    "TrainConfig",
    "load_config",
    "config_from_dict",
    "apply_overrides",
    "parse_override",
    "save_config",
]


class ConfigError(InputError):
    """A configuration key is unknown, has the wrong type, or names missing data."""


@dataclass(frozen=True)
class ModelSection(ModelSpec):
    """Which model to train: :class:`facet.model_spec.ModelSpec` (``preset``, ``overrides``,
    ``dtype``, ``seed``, with their defaults) and

    Attributes:
        init_from: a registered model name (``default``: the shipped model), a checkpoint
            directory or a run directory to fine-tune from (its EMA weights are loaded; the E0s
            are refitted on the new training data), or None. Its architecture is the
            checkpoint's: ``preset``/``overrides`` need not be restated, and one that
            contradicts it is refused.
        atomic_energies: the per-element reference energies (E0s): ``fit`` (least squares on
            the training split, :func:`facet.train.e0.fit_atomic_energies`) or a JSON file
            ``{symbol: eV}`` of fixed ones (:func:`facet.train.e0.load_atomic_energies`), e.g.
            the teacher's isolated-atom energies ``data/distill2/teacher_e0.json``; every
            training element needs an entry. Training from scratch only (fine-tuning refits
            the pretrained model's E0s).
    """

    init_from: str | None = None
    atomic_energies: str = "fit"


@dataclass(frozen=True)
class DataSection:
    """Training and validation data and the fixed batch shape.

    Attributes:
        train: paths (MPTrj JSON, extxyz, or a preprocessed dataset directory).
        val: validation paths; when empty, ``val_fraction`` of ``train`` is held out.
        val_fraction: fraction of training structures held out.
        split_by: ``material`` (hold out whole materials: measures transfer to new
            chemistry) or ``frame`` (hold out single frames: interpolation within the
            materials seen, the only meaningful choice for a set of a few materials).
        energy_label: which energy label a reader takes (``uncorrected_total_energy`` or
            ``corrected_total_energy`` for MPTrj; ignored by formats with one energy).
        cutoff: neighbour-list cutoff in Angstrom; None takes the model's ``cutoff``.
        max_nodes, max_edges, max_graphs: the padded batch shape (one compilation per run);
            ``max_graphs`` counts the padding graph slot.
        edge_buckets: padded edge counts a training batch may take (1: always ``max_edges``);
            with ``k > 1`` each batch is padded to the smallest of ``k`` sizes fitted to the
            first epoch's batches (:func:`facet.train.batching.edge_pads`): less work on padding
            edges for ``k - 1`` more compilations of the step. Same loss and gradients.
        seed: seed of the split and of the per-epoch shuffle.
        shuffle: shuffle structures every epoch.
    """

    train: list = field(default_factory=list)
    val: list = field(default_factory=list)
    val_fraction: float = 0.1
    split_by: str = "material"
    energy_label: str = "uncorrected_total_energy"
    cutoff: float | None = None
    max_nodes: int = 512
    max_edges: int = 16384
    max_graphs: int = 17
    edge_buckets: int = 1
    seed: int = 0
    shuffle: bool = True


@dataclass(frozen=True)
class OptimSection:
    """Optimiser and learning-rate schedule (see :mod:`facet.train.optim`).

    Attributes:
        optimizer: name in ``facet.train.optim.OPTIMIZERS`` (``adamw``, ``adam``, ``sgd``).
        lr: peak learning rate.
        warmup_steps: linear warm-up from 0 to ``lr``.
        schedule: name in ``facet.train.optim.SCHEDULES`` (``cosine``, ``linear``, ``constant``,
            ``wsd``: warm-up, constant, then a linear decay over the last ``decay_steps``).
        decay_steps: length of the ``wsd`` decay (``0``: the last fifth of the steps after the
            warm-up); ignored by the other schedules.
        final_lr_factor: learning rate at the last step as a fraction of ``lr``.
        weight_decay: decoupled weight decay (AdamW, Loshchilov & Hutter 2019).
        b1, b2, eps: Adam moments and epsilon.
        clip_norm: clip gradients to this global norm (``<= 0`` disables).
        train_scale_shift: also optimise the per-element scale and shift fitted before
            training (off: they stay fixed, as in MACE and NequIP).
        ema_decay: decay of the exponential moving average of the weights used for validation
            and export (``0`` disables: the EMA equals the weights).
    """

    optimizer: str = "adamw"
    lr: float = 5e-3
    warmup_steps: int = 100
    schedule: str = "cosine"
    decay_steps: int = 0
    final_lr_factor: float = 0.01
    weight_decay: float = 1e-6
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    clip_norm: float = 100.0
    ema_decay: float = 0.99
    train_scale_shift: bool = False


@dataclass(frozen=True)
class LossSection:
    """Weights and kinds of the loss terms (see :mod:`facet.train.loss`).

    Attributes:
        energy_weight, forces_weight, stress_weight: weights of the energy-per-atom, force and
            stress terms.
        energy_kind, forces_kind, stress_kind: names in ``facet.train.loss.LOSS_KINDS``
            (``mse``, ``mae``, ``huber``).
        huber_delta: transition point of the Huber loss (in the term's units).
    """

    energy_weight: float = 1.0
    forces_weight: float = 1.0
    stress_weight: float = 0.1
    energy_kind: str = "huber"
    forces_kind: str = "huber"
    stress_kind: str = "huber"
    huber_delta: float = 0.01


@dataclass(frozen=True)
class RunSection:
    """Length, outputs and bookkeeping of a run.

    Attributes:
        out_dir: run directory (checkpoints, ``config.yaml``, ``log.csv``, TensorBoard events).
        epochs: number of passes over the training split (ignored when ``max_steps > 0``).
        max_steps: total optimiser steps; ``0`` derives it from ``epochs``.
        eval_every: validate every N steps (``0``: at the end of every epoch).
        checkpoint_every: save a checkpoint every N steps (``0``: at every validation).
        keep_checkpoints: how many step checkpoints to keep (the best one is always kept).
        log_every: write training metrics every N steps.
        progress: show a tqdm progress bar.
        distributed: call ``jax.distributed.initialize()``: ``auto`` when a SLURM / Open MPI /
            JAX coordinator environment is detected, ``true`` / ``false`` force it.
        compile_cache: keep the compiled training and evaluation steps in JAX's persistent
            compilation cache in the user's cache folder, so that a rerun or a resumed run with
            the same shapes loads them instead of compiling (:mod:`facet.compile_cache`;
            ``FACET_COMPILE_CACHE=0`` also turns it off).
    """

    out_dir: str = "runs/facet"
    epochs: int = 10
    max_steps: int = 0
    eval_every: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int = 3
    log_every: int = 10
    progress: bool = True
    distributed: bool | str = "auto"
    compile_cache: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)
    run: RunSection = field(default_factory=RunSection)

    def to_dict(self) -> dict:
        """Plain YAML/JSON types, the inverse of :func:`config_from_dict`."""
        return dataclasses.asdict(self)

    def replace(self, **sections: Any) -> TrainConfig:
        return dataclasses.replace(self, **sections)


def _check_value(key: str, value: Any, tp: Any) -> Any:
    """Return ``value`` converted to the annotated type ``tp`` or raise naming ``key``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_value(key, value, a)
            except ConfigError:
                pass
        raise ConfigError(f"config key '{key}': expected {tp}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is list or origin is list:
        if isinstance(value, (list, tuple)):
            return list(value)
        if isinstance(value, str):  # one path given where a list is expected
            return [value]
    elif tp is dict or origin is dict:
        if isinstance(value, dict):
            return dict(value)
    raise ConfigError(
        f"config key '{key}': expected {getattr(tp, '__name__', tp)}, got {value!r} "
        f"({type(value).__name__})"
    )


def _build(cls: type, d: Any, prefix: str) -> Any:
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise ConfigError(f"config section '{prefix or 'root'}' must be a mapping, got {d!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        k = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise ConfigError(f"unknown config key '{k}' (valid keys here: {', '.join(sorted(names))})")
    kwargs = {}
    for name, value in d.items():
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, key)
        else:
            kwargs[name] = _check_value(key, value, tp)
    return cls(**kwargs)


def config_from_dict(d: dict) -> TrainConfig:
    """Build a :class:`TrainConfig` from nested plain types, checking every key and type."""
    cfg = _build(TrainConfig, d, "")
    _check_semantics(cfg)
    return cfg


def _parse_scalar(text: str) -> Any:
    """Parse an override value with YAML rules (``1e-3`` stays a string here and becomes a float
    where the field is declared float; ``[a,b]`` is a list; ``null`` is None)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_override(item: str) -> tuple[str, Any]:
    """Split one ``key=value`` string into the stripped key and the value read as a YAML scalar
    (``"pseudo=False"`` -> ``("pseudo", False)``); :class:`ConfigError` without ``=``."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' is not of the form section.key=value")
    key, text = item.split("=", 1)
    return key.strip(), _parse_scalar(text)


def apply_overrides(d: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` strings to a nested dict (a new dict is returned)."""
    import copy

    out = copy.deepcopy(d)
    for item in overrides:
        key, value = parse_override(item)
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{key}': '{p}' is not a section")
        node[parts[-1]] = value
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Load a YAML file (or the defaults when ``path`` is None) and apply overrides."""
    d: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        with open(p) as fh:
            try:
                d = yaml.safe_load(fh) or {}
            except yaml.YAMLError as err:
                where = getattr(err, "problem_mark", None)
                at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
                what = getattr(err, "problem", None) or type(err).__name__
                raise ConfigError(f"config file {p} is not valid YAML{at}: {what}") from None
        if not isinstance(d, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
    if overrides:
        d = apply_overrides(d, overrides)
    return config_from_dict(d)


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    """Write ``cfg`` as YAML (the file :func:`load_config` reads back to an equal config)."""
    with open(path, "w") as fh:
        yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)


def _check_semantics(cfg: TrainConfig) -> None:
    """Value checks that types alone cannot express (ranges, registry names)."""
    from .loss import LOSS_KINDS
    from .optim import OPTIMIZERS, SCHEDULES

    def need(cond: bool, key: str, msg: str) -> None:
        if not cond:
            raise ConfigError(f"config key '{key}': {msg}")

    need(cfg.model.dtype in DTYPES, "model.dtype", f"must be one of {', '.join(DTYPES)}")
    _check_finite_numbers(cfg)
    _check_model_overrides(cfg.model.overrides)
    from facet.data.mptrj import ENERGY_LABELS

    need(cfg.data.energy_label in ENERGY_LABELS, "data.energy_label",
         f"must be one of {list(ENERGY_LABELS)}")
    need(cfg.optim.final_lr_factor >= 0, "optim.final_lr_factor", "must be >= 0")
    need(cfg.optim.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
    need(0.0 <= cfg.optim.b1 < 1.0, "optim.b1", "must be in [0, 1)")
    need(0.0 <= cfg.optim.b2 < 1.0, "optim.b2", "must be in [0, 1)")
    need(cfg.optim.eps > 0, "optim.eps", "must be positive")
    need(cfg.optim.optimizer in OPTIMIZERS, "optim.optimizer", f"must be one of {list(OPTIMIZERS)}")
    need(cfg.optim.schedule in SCHEDULES, "optim.schedule", f"must be one of {list(SCHEDULES)}")
    need(cfg.optim.lr > 0, "optim.lr", "must be positive")
    need(cfg.optim.warmup_steps >= 0, "optim.warmup_steps", "must be >= 0")
    need(cfg.optim.decay_steps >= 0, "optim.decay_steps", "must be >= 0")
    need(0.0 <= cfg.optim.ema_decay < 1.0, "optim.ema_decay", "must be in [0, 1)")
    for term in ("energy", "forces", "stress"):
        kind = getattr(cfg.loss, f"{term}_kind")
        need(kind in LOSS_KINDS, f"loss.{term}_kind", f"must be one of {list(LOSS_KINDS)}")
        need(getattr(cfg.loss, f"{term}_weight") >= 0, f"loss.{term}_weight", "must be >= 0")
    need(cfg.loss.huber_delta > 0, "loss.huber_delta", "must be positive")
    need(0.0 <= cfg.data.val_fraction < 1.0, "data.val_fraction", "must be in [0, 1)")
    need(cfg.data.split_by in ("material", "frame"), "data.split_by", "must be material or frame")
    need(cfg.data.max_graphs >= 2, "data.max_graphs", "must be >= 2 (one slot is padding)")
    need(1 <= cfg.data.edge_buckets <= 16, "data.edge_buckets", "must be in 1..16")
    need(cfg.data.max_nodes >= 2, "data.max_nodes", "must be >= 2 (one node is padding)")
    need(cfg.data.max_edges >= 1, "data.max_edges", "must be >= 1")
    need(cfg.data.cutoff is None or cfg.data.cutoff > 0, "data.cutoff", "must be positive")
    need(cfg.run.epochs >= 1 or cfg.run.max_steps > 0, "run.epochs", "must be >= 1")
    need(cfg.run.max_steps >= 0, "run.max_steps", "must be >= 0")
    for k in ("eval_every", "checkpoint_every", "log_every", "keep_checkpoints"):
        need(getattr(cfg.run, k) >= 0, f"run.{k}", "must be >= 0")
    need(cfg.run.distributed in (True, False, "auto"), "run.distributed",
         "must be auto, true or false")
    for i, p in enumerate(cfg.data.train):
        need(isinstance(p, str), f"data.train[{i}]", "must be a path string")
    for i, p in enumerate(cfg.data.val):
        need(isinstance(p, str), f"data.val[{i}]", "must be a path string")


def _check_finite_numbers(cfg: TrainConfig) -> None:
    """Every float field of every section is a finite number (NaN and inf are refused)."""
    import math

    for section in dataclasses.fields(cfg):
        sec = getattr(cfg, section.name)
        for f in dataclasses.fields(sec):
            v = getattr(sec, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"config key '{section.name}.{f.name}': {v} is not a finite "
                                  "number")


def _check_model_overrides(overrides: dict) -> None:
    """``model.overrides`` names fields of :class:`facet.nn.ModelConfig` with values of their
    type (checked before any model is built)."""
    if not overrides:
        return
    from facet.nn.config import ModelConfig

    hints = typing.get_type_hints(ModelConfig)
    for key, value in overrides.items():
        if key not in hints:
            raise ConfigError(
                f"unknown config key 'model.overrides.{key}' (ModelConfig fields: "
                f"{', '.join(sorted(hints))})"
            )
        _check_value(f"model.overrides.{key}", value, hints[key])


def check_data_paths(cfg: TrainConfig, base: Path | None = None) -> None:
    """Raise :class:`ConfigError` naming the key when a data path does not exist."""
    if not cfg.data.train:
        raise ConfigError("config key 'data.train': no training data given")
    for section in ("train", "val"):
        for i, p in enumerate(getattr(cfg.data, section)):
            path = Path(p) if base is None or Path(p).is_absolute() else base / p
            if not path.exists():
                raise ConfigError(f"config key 'data.{section}[{i}]': {p} does not exist")
    if cfg.model.atomic_energies != "fit":
        path = Path(cfg.model.atomic_energies)
        if base is not None and not path.is_absolute():
            path = base / path
        if not path.is_file():
            raise ConfigError(f"config key 'model.atomic_energies': {cfg.model.atomic_energies} "
                              "is neither 'fit' nor an existing JSON file")
        if cfg.model.init_from is not None:
            raise ConfigError("config key 'model.atomic_energies': a fixed E0 table is for "
                              "training from scratch; fine-tuning ('model.init_from') refits "
                              "the pretrained model's E0s")
    if cfg.model.init_from is not None:
        from ..model_io import model_path  # lazy: it imports JAX and the network (25-30 s here)

        try:
            model_path(cfg.model.init_from)  # a registered name ("default") or a folder
        except (FileNotFoundError, ValueError) as err:
            raise ConfigError(f"config key 'model.init_from': {err}") from None
