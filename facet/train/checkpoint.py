"""Checkpoints of a training run. The format, its writer and its reader live in
:mod:`facet.checkpoint`, beside the inference code that reads them (:mod:`facet.model_io`); the
training package uses them under this name (every public name of :mod:`facet.checkpoint`)."""

from .. import checkpoint as _checkpoint
from ..checkpoint import *  # noqa: F403 (the same names, by design)

__all__ = list(_checkpoint.__all__)
