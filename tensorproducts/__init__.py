"""Tensor-product variants behind one contract (see :mod:`tensorproducts.registry`)."""

from .registry import REGISTRY, TensorProductSpec, get, register

# Importing a variant module registers it (flat list, one line per module).
from . import gaunt_fourier  # noqa: E402,F401  (registers "gaunt-fourier")
from . import matrix  # noqa: E402,F401  (registers "matrix")
from . import so2  # noqa: E402,F401  (registers "so2")

__all__ = ["REGISTRY", "TensorProductSpec", "get", "register"]
