"""Which network to build: the one owner of a model's ``dtype`` and ``seed`` (a light module:
NumPy-free, no JAX import, so configs and command lines can check against it cheaply).

:class:`ModelSpec` names a preset, its overrides, the dtype and the seed, with their defaults;
:func:`facet.model_io.build_model` builds it, and the training config's ``model`` section
(:class:`facet.train.config.ModelSection`) extends it. The allowed dtypes are the model's own
(:data:`DTYPES`, those :class:`facet.nn.ModelConfig` accepts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .nn.config import _DTYPES

__all__ = ["DTYPES", "ModelSpec", "check_dtype"]

#: The floating dtypes a model can be built in (:class:`facet.nn.ModelConfig`'s list).
DTYPES: tuple[str, ...] = tuple(_DTYPES)


@dataclass(frozen=True)
class ModelSpec:
    """Which network to build.

    Attributes:
        preset: name in ``facet.nn.presets.PRESETS`` (e.g. ``facet-s``).
        overrides: fields of ``ModelConfig`` replacing the preset's (checked by the model).
        dtype: one of :data:`DTYPES`, for parameters and batches.
        seed: parameter initialisation seed.
    """

    preset: str = "facet-s"
    overrides: dict = field(default_factory=dict)
    dtype: str = "float32"
    seed: int = 0


def check_dtype(dtype: Any, where: str = "dtype") -> str:
    """``dtype``'s name when it is one of :data:`DTYPES`; ``ValueError`` naming ``where``."""
    name = dtype if isinstance(dtype, str) else getattr(dtype, "name", str(dtype))
    if name not in DTYPES:
        raise ValueError(f"{where}: must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return name
