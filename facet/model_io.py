"""Models for inference: build one, split it, load trained weights, resolve a name or a path.

This is the inference side of the model format; the training package (:mod:`facet.train`)
imports it, never the other way round.

* :class:`~facet.model_spec.ModelSpec` says which network to build (``preset``,
  ``overrides``, ``dtype``, ``seed``; the one owner of the ``dtype`` and ``seed`` defaults, in
  the light module :mod:`facet.model_spec`) and :func:`build_model` builds it.
* :func:`split_model` is the one split of a model into ``(graphdef, params, rest)``
  (``params`` the ``nnx.Param`` leaves the optimiser trains, ``rest`` the E0s), used by
  training, by the compiled dynamics loops and by the checkpoint reader.
* A trained model is a checkpoint directory (:mod:`facet.checkpoint`) or a run directory (its
  best checkpoint, else its latest): :func:`read_trained` rebuilds its network from the
  ``model`` section of its ``config.yaml`` and fills it with the EMA of the parameters
  (``ema``) and the non-trainable state (``rest``).
* :func:`load_model` resolves anything a user may name a model by (a model object, a registered
  name of :data:`MODELS`, a checkpoint or run folder, a preset) to a model in a given dtype;
  :func:`checkpoint_source` says which checkpoint folder it would read, without building it.

Flax and the network (e3nn-jax, SymPy, SciPy: about 1.5 s of CPU) are imported inside the
functions that build a model, so that the calculator's start-up from stored programs
(:mod:`facet.program_cache`) never imports them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from .checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, step_dir
from .elements import attach_supported
from .errors import InputError
from .model_spec import DTYPES, ModelSpec, check_dtype

__all__ = [
    "DTYPES",
    "check_dtype",
    "ModelSpec",
    "spec_from_config",
    "build_model",
    "split_model",
    "x64",
    "cast_model",
    "resolve_checkpoint",
    "load_weights_into",
    "read_trained",
    "MODELS",
    "MODEL_PATHS",
    "register_model",
    "model_path",
    "load_model",
    "checkpoint_source",
]

#: ``factory(spec) -> nnx.Module`` (tests' small models).
ModelFactory = Callable[[Any], Any]


def _presets():
    from .nn.presets import PRESETS

    return PRESETS


def build_model(spec: ModelSpec, factory: ModelFactory | None = None):
    """A freshly initialised model of ``spec`` (random weights drawn from ``spec.seed``), or
    ``factory(spec)`` when a factory is given (tests' small models)."""
    if factory is not None:
        return factory(spec)
    from .nn.presets import create_model

    return create_model(spec.preset, seed=spec.seed, dtype=spec.dtype, **spec.overrides)


def split_model(model):
    """``(graphdef, params, rest)`` with ``params`` the ``nnx.Param`` leaves and ``rest``
    everything else (the E0s); ``nnx.merge(graphdef, params, rest)`` rebuilds the model."""
    from flax import nnx

    return nnx.split(model, nnx.Param, ...)


def x64(dtype: Any):
    """A context enabling 64-bit JAX types for float64 (a no-op for float32)."""
    if np.dtype(dtype) == np.float64:
        return jax.enable_x64(True)
    return contextlib.nullcontext()


def cast_model(model, dtype: str | None):
    """``model`` in ``dtype`` (a new FacetModel with cast weights when they differ)."""
    if dtype is None or np.dtype(model.dtype) == np.dtype(dtype):
        return model
    from flax import nnx

    from .nn.model import FacetModel
    from .nn.presets import create_model

    if not isinstance(model, FacetModel):
        raise ValueError(
            f"the model is {np.dtype(model.dtype).name}; build it in {dtype} or pass dtype=None"
        )
    with x64(dtype):
        # Shapes only (no random weights drawn, nothing compiled): every Variable is replaced.
        new = nnx.eval_shape(lambda: create_model(model.config, dtype=dtype))
        cast = jax.tree_util.tree_map(
            lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x,
            nnx.state(model),
        )
        nnx.update(new, cast)
    return new


# -- trained models ----------------------------------------------------------------------------
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


def load_weights_into(model, ckpt: str | Path, *, trees=("ema", "rest")) -> dict:
    """Overwrite ``model``'s parameters (from the EMA) and E0s with the checkpoint's; returns
    the checkpoint's meta. Shapes must match (same architecture)."""
    from flax import nnx

    _, params, rest = split_model(model)
    loaded, meta = load_checkpoint(ckpt, {"ema": params, "rest": rest})
    nnx.update(model, loaded[trees[0]])
    if len(trees) > 1:
        nnx.update(model, loaded[trees[1]])
    return meta


def spec_from_config(config: dict, where: str = "config.yaml") -> ModelSpec:
    """The :class:`ModelSpec` of a run configuration's ``model`` section (keys of the training
    config that do not say which network to build, such as ``init_from``, are not needed here)."""
    section = (config or {}).get("model") or {}
    if not isinstance(section, dict):
        raise ValueError(f"{where}: 'model' must be a mapping, got {section!r}")
    spec = ModelSpec(**{f.name: section[f.name] for f in dataclasses.fields(ModelSpec)
                        if f.name in section})
    checks = {"preset": str, "overrides": dict, "seed": int}
    for key, tp in checks.items():
        if not isinstance(getattr(spec, key), tp):
            raise ValueError(f"{where}: 'model.{key}' must be a {tp.__name__}, got "
                             f"{getattr(spec, key)!r}")
    check_dtype(spec.dtype, f"{where}: 'model.dtype'")
    return spec


def read_trained(path: str | Path, *, factory: ModelFactory | None = None, report=print):
    """``(model, config, checkpoint_dir)`` of a trained model (EMA weights); ``config`` is the
    checkpoint's ``config.yaml`` as plain types, ``path`` a checkpoint or run folder or a
    registered name.

    The model is built abstractly (``nnx.eval_shape``: shapes only, no random weights drawn and
    nothing compiled) and every Variable is then filled from the checkpoint, which must hold
    them all (``ema`` for the parameters, ``rest`` for everything else). Drawing the random
    initialisation that the checkpoint overwrites cost 3.8 s of XLA compilations for facet-s.
    """
    ckpt = resolve_checkpoint(model_path(path), report=report)
    config = yaml.safe_load((ckpt / "config.yaml").read_text())
    spec = spec_from_config(config, str(ckpt / "config.yaml"))
    from flax import nnx

    model = nnx.eval_shape(lambda: build_model(spec, factory))
    load_weights_into(model, ckpt)
    return model, config, ckpt


# -- names -------------------------------------------------------------------------------------
def _shipped_dir() -> Path:
    return Path(__file__).resolve().parent / "models" / "default"


def _load_path(path: Path, dtype: str | None):
    try:
        with x64(dtype or "float32"):
            model, _, ckpt = read_trained(path, report=lambda msg: warnings.warn(msg, stacklevel=3))
    except (CheckpointError, OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as err:
        msg = " ".join(str(err).split())
        raise InputError(f"cannot load a Facet model from {path}: {msg}") from err
    # The elements it was trained on (meta.json, else its non-zero E0s: facet.elements).
    return attach_supported(cast_model(model, dtype), ckpt)


def _load_default(dtype: str):
    path = _shipped_dir()
    if not path.exists():
        others = ", ".join(sorted(set(MODELS) - {"default"})) or "none"
        raise FileNotFoundError(
            f"no default Facet model is shipped in this installation ({path} is missing; "
            "it comes with the package: reinstall facet). Use instead: a checkpoint or run "
            "directory written by `facet train` (FacetCalculator(model='runs/my_run')), a model "
            f"object, another registered name ({others}), "
            f"or a preset with random weights ({', '.join(_presets())})."
        )
    return _load_path(path, dtype)


#: Registered model names -> ``loader(dtype) -> model`` (:func:`register_model` adds more).
MODELS: dict[str, Callable[[str], Any]] = {"default": _load_default}

#: Registered names whose model is a checkpoint folder -> that folder (for fine-tuning and
#: evaluation, which need the checkpoint itself: ``model.init_from=default``).
MODEL_PATHS: dict[str, Path] = {"default": _shipped_dir()}


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


def load_model(spec: Any, dtype: str | None = None):
    """A model from ``spec``: a model object (cast to ``dtype``), a registered name, a
    checkpoint or run folder (EMA weights), or a preset name (random weights, with a warning).
    ``dtype`` None keeps a model object's own dtype (float32 otherwise)."""
    if hasattr(spec, "node_energies") and hasattr(spec, "cutoff"):
        return cast_model(spec, dtype)
    if not isinstance(spec, str | os.PathLike):
        raise TypeError(
            f"model must be a model object, a registered name, a path or a preset; got "
            f"{type(spec).__name__}"
        )
    name = os.fspath(spec)
    if name in MODELS:
        with x64(dtype or "float32"):  # a float64 loader's weights stay float64
            return cast_model(MODELS[name](dtype or "float32"), dtype)
    if name in _presets():
        from .nn.presets import create_model

        warnings.warn(
            f"model {name!r} is a preset: its weights are random (for timing and tests only)",
            stacklevel=3,
        )
        with x64(dtype or "float32"):
            return create_model(name, dtype=dtype or "float32")
    path = Path(name)
    if path.exists():
        return _load_path(path, dtype)
    if os.sep in name or path.suffix:
        raise FileNotFoundError(f"model file or directory {name} does not exist")
    raise InputError(
        f"unknown model {name!r}: not a registered name ({', '.join(sorted(MODELS))}), a preset "
        f"({', '.join(_presets())}) or an existing path"
    )


def checkpoint_source(spec: Any) -> Path | None:
    """The checkpoint or run folder that :func:`load_model` would read ``spec`` from with
    nothing done to it but a dtype cast (the shipped ``"default"``, or a path), else None (a
    model object, a preset, a name registered with its own loader); builds nothing."""
    if not isinstance(spec, str | os.PathLike):
        return None
    name = os.fspath(spec)
    if name in MODELS:
        shipped = _shipped_dir()
        return shipped if MODELS[name] is _load_default and shipped.exists() else None
    path = Path(name)
    # A bare name may also be a preset, which load_model takes first (importing the presets
    # imports the network: only then).
    if not path.exists() or (os.sep not in name and name in _presets()):
        return None
    return path
