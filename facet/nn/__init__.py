"""The Facet network: radial bases, grid mixing, interaction blocks and the model.

Pure maths lives in :mod:`.radial`, :mod:`.grid`, :mod:`.linear`, :mod:`.zbl`; thin NNX modules in
:mod:`.grid_mixing`, :mod:`.interaction`, :mod:`.model`; named configs in :mod:`.presets`.
"""

from .config import ModelConfig
from .model import NUM_Z, AtomicEnergies, FacetModel, check_atomic_numbers
from .presets import PRESETS, count_parameters, create_model, describe_presets

__all__ = [
    "ModelConfig",
    "FacetModel",
    "AtomicEnergies",
    "NUM_Z",
    "check_atomic_numbers",
    "PRESETS",
    "create_model",
    "count_parameters",
    "describe_presets",
]
