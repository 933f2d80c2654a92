"""Facet: E(3)-equivariant interatomic potentials with spline radial functions and
spherical-grid mixing (Miklaucic et al., arXiv 2509.08418), in JAX."""

__version__ = "0.1.0"
