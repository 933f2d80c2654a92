"""Models of a training run: build one from the run's ``model`` section, load a trained run's
weights with its :class:`~facet.train.config.TrainConfig`, and fine-tune from a checkpoint.

Building, splitting, checkpoint resolution and weight loading are the inference side's
(:mod:`facet.model_io`); this module adds what only training needs: the parsed training config
of a run, and the architecture checks of fine-tuning (:func:`finetune_section`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from ..model_io import (
    ModelFactory,
    build_model,
    load_weights_into,
    model_path,
    read_trained,
    resolve_checkpoint,
)
from ..nn.presets import get_preset
from .config import ConfigError, ModelSection, config_from_dict

__all__ = ["create_model_from_section", "resolve_checkpoint", "load_model", "load_weights_into",
           "resolve_model_dir", "finetune_section"]


def create_model_from_section(section: ModelSection, factory: ModelFactory | None = None):
    """A freshly initialised model of the run's ``model`` section
    (:func:`facet.model_io.build_model`)."""
    return build_model(section, factory)


def load_model(path: str | Path, *, factory: ModelFactory | None = None, report=print):
    """``(model, config, checkpoint_dir)`` of a trained run: :func:`facet.model_io.read_trained`
    with the checkpoint's ``config.yaml`` parsed and checked as a
    :class:`~facet.train.config.TrainConfig`."""
    model, raw, ckpt = read_trained(path, factory=factory, report=report)
    return model, config_from_dict(raw), ckpt


def resolve_model_dir(spec: str | Path) -> Path:
    """A registered model name (``"default"``: the shipped model) or a path -> its folder
    (:func:`facet.model_io.model_path`)."""
    return model_path(spec)


def _architecture(section: ModelSection):
    """The ``ModelConfig`` a section builds (dtype left out: it is not architecture)."""
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
