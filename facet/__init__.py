"""Facet: E(3)-equivariant interatomic potentials with spline radial functions and
spherical-grid mixing (Miklaucic et al., arXiv 2509.08418), in JAX.

``facet.create_model`` and ``facet.FacetCalculator`` are imported lazily, so ``import facet``
stays cheap (no JAX import) for the CLI and the data tools.
"""

__version__ = "0.1.0"

__all__ = ["create_model", "FacetCalculator", "__version__"]


def __getattr__(name):
    if name == "create_model":
        from .nn.presets import create_model

        return create_model
    if name == "FacetCalculator":
        from .calculator import FacetCalculator

        return FacetCalculator
    raise AttributeError(f"module 'facet' has no attribute {name!r}")
