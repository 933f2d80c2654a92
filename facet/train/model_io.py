"""Build models from a run configuration and load trained weights from checkpoints.

A trained model is a checkpoint directory (see :mod:`facet.train.checkpoint`) or a run directory
(its best checkpoint, else its latest). The exported weights are the EMA of the parameters
(``ema``) plus the non-trainable state (``rest``: the E0s), on the architecture recorded in the
checkpoint's ``config.yaml``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml
from flax import nnx

from .checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, step_dir
from .config import ConfigError, ModelSection, config_from_dict

__all__ = ["create_model_from_section", "resolve_checkpoint", "load_model", "load_weights_into",
           "resolve_model_dir", "finetune_section"]

ModelFactory = Callable[[ModelSection], nnx.Module]


def create_model_from_section(section: ModelSection, factory: ModelFactory | None = None):
    """A freshly initialised model (``facet.create_model`` unless ``factory`` is given)."""
    if factory is not None:
        return factory(section)
    import facet

    return facet.create_model(section.preset, seed=section.seed, dtype=section.dtype,
                              **section.overrides)


def resolve_checkpoint(path: str | Path, *, report=print) -> Path:
    """A checkpoint directory from a checkpoint or run directory (best, else latest)."""
    path = Path(path)
    if (path / "COMPLETE").exists() or (path / "meta.json").exists():
        return path
    root = path / "checkpoints"
    best = path / "best.json"
    if best.exists():
        p = step_dir(root, int(json.loads(best.read_text())["step"]))
        if p.exists():
            return p
    latest = latest_checkpoint(root, report=report)
    if latest is None:
        raise CheckpointError(f"{path} holds no complete checkpoint")
    return latest


def load_weights_into(model: nnx.Module, ckpt: str | Path, *, trees=("ema", "rest")) -> dict:
    """Overwrite ``model``'s parameters (from the EMA) and E0s with the checkpoint's; returns
    the checkpoint's meta. Shapes must match (same architecture)."""
    _, params, rest = nnx.split(model, nnx.Param, ...)
    loaded, meta = load_checkpoint(ckpt, {"ema": params, "rest": rest})
    nnx.update(model, loaded[trees[0]])
    if len(trees) > 1:
        nnx.update(model, loaded[trees[1]])
    return meta


def load_model(path: str | Path, *, factory: ModelFactory | None = None, report=print):
    """``(model, config, checkpoint_dir)`` of a trained model (EMA weights).

    The model is built abstractly (``nnx.eval_shape``: shapes only, no random weights drawn and
    nothing compiled) and every Variable is then filled from the checkpoint, which must hold
    them all (``ema`` for the parameters, ``rest`` for everything else). Drawing the random
    initialisation that the checkpoint overwrites cost 3.8 s of XLA compilations for facet-s.
    """
    ckpt = resolve_checkpoint(resolve_model_dir(path), report=report)  # or a registered name
    cfg = config_from_dict(yaml.safe_load((ckpt / "config.yaml").read_text()))
    model = nnx.eval_shape(lambda: create_model_from_section(cfg.model, factory))
    load_weights_into(model, ckpt)
    return model, cfg, ckpt


def resolve_model_dir(spec: str | Path) -> Path:
    """A registered model name (``"default"``: the shipped model) or a path -> its folder."""
    from facet.calculator import model_path

    return model_path(spec)


def _architecture(section: ModelSection):
    """The ``ModelConfig`` a section builds (dtype left out: it is not architecture)."""
    import dataclasses

    from facet.nn.presets import get_preset

    cfg = get_preset(section.preset)
    try:
        cfg = cfg.replace(**{k: v for k, v in section.overrides.items() if k != "dtype"})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config key 'model.overrides': {err}") from err
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "dtype"}


def finetune_section(section: ModelSection, *, report=print) -> tuple[ModelSection, Path]:
    """The model section to fine-tune from ``section.init_from`` and its checkpoint folder.

    The architecture (``preset`` and ``overrides``) comes from the checkpoint's ``config.yaml``,
    so a user's config needs to name only ``init_from``; ``dtype`` and ``seed`` stay the user's.
    A field the user set that the checkpoint's architecture contradicts (an override with a
    different value, or a preset other than the default ``facet-s`` that builds a different
    network) cannot be reconciled: ``ConfigError`` names it and both values.
    """
    import dataclasses

    spec = section.init_from
    try:
        src = resolve_checkpoint(resolve_model_dir(spec), report=report)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"config key 'model.init_from': {err}") from err
    try:
        theirs = config_from_dict(yaml.safe_load((src / "config.yaml").read_text())).model
    except (OSError, yaml.YAMLError, ValueError, TypeError) as err:
        raise ConfigError(f"config key 'model.init_from': cannot read the architecture of "
                          f"{src} ({err})") from err
    arch = _architecture(theirs)
    clashes = []
    for k, v in section.overrides.items():
        if k == "dtype":
            continue
        mine = _architecture(dataclasses.replace(theirs, overrides={**theirs.overrides, k: v}))
        if mine[k] != arch[k]:
            clashes.append(f"model.overrides.{k}={v!r} (the checkpoint has {arch[k]!r})")
    default_preset = ModelSection.__dataclass_fields__["preset"].default
    if (section.preset != default_preset and section.preset != theirs.preset
            and _architecture(dataclasses.replace(section, overrides={})) != _architecture(
                dataclasses.replace(theirs, overrides={}))):
        clashes.insert(0, f"model.preset={section.preset} (the checkpoint is {theirs.preset})")
    if clashes:
        one = len(clashes) == 1
        raise ConfigError(
            f"config key 'model.init_from': {spec} fixes the architecture, and "
            f"{'; '.join(clashes)} contradict{'s' if one else ''} it: remove "
            f"{'this key' if one else 'these keys'} to fine-tune the checkpoint's network"
        )
    return dataclasses.replace(section, preset=theirs.preset,
                               overrides={k: v for k, v in theirs.overrides.items()
                                          if k != "dtype"}), src
