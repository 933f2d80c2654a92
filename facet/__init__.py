"""Facet: E(3)-equivariant interatomic potentials with spline radial functions and
spherical-grid mixing (Miklaucic et al., arXiv 2509.08418), in JAX.

``facet.create_model`` and ``facet.FacetCalculator`` are imported lazily, so ``import facet``
stays cheap (no JAX import) for the CLI and the data tools: ``python -X importtime -c "import
facet"`` took 2 ms on one loaded core of the development machine, ``import facet.calculator``
1.6-1.8 CPU s (JAX and ASE; Flax and e3nn-jax only when a network is built). Every ``facet``
command imports this package first.
"""

from .version import __version__

__all__ = ["create_model", "FacetCalculator", "__version__"]


def __getattr__(name):
    if name == "create_model":
        from .nn.presets import create_model

        return create_model
    if name == "FacetCalculator":
        from .calculator import FacetCalculator

        return FacetCalculator
    raise AttributeError(f"module 'facet' has no attribute {name!r}")
