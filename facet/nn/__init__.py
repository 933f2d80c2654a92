"""The Facet network: radial bases, grid mixing, interaction blocks and the model.

Pure maths lives in :mod:`.radial`, :mod:`.grid`, :mod:`.linear`, :mod:`.zbl`; thin NNX modules in
:mod:`.grid_mixing`, :mod:`.interaction`, :mod:`.model`; named configs in :mod:`.presets`.
Names are imported lazily so that NumPy-only submodules (e.g. :mod:`.radial_fit`) do not pull
in JAX.
"""

import importlib

_EXPORTS = {
    "ModelConfig": ".config",
    "FacetModel": ".model",
    "AtomicEnergies": ".model",
    "NUM_Z": ".model",
    "check_atomic_numbers": ".model",
    "PRESETS": ".presets",
    "create_model": ".presets",
    "count_parameters": ".presets",
    "describe_presets": ".presets",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'facet.nn' has no attribute {name!r}")
