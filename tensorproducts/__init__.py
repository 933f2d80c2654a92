"""Tensor-product variants behind one contract (see :mod:`tensorproducts.registry`)."""
# ruff: noqa: I001, F401  (a flat list of variant modules; importing one registers it)

from .registry import REGISTRY, TensorProductSpec, get, register

from . import cg_dense  # "cg-dense"
from . import cg_sparse  # "cg-sparse"
from . import gaunt_fourier  # "gaunt-fourier"
from . import gaunt_grid  # "gaunt-grid"
from . import matrix  # "matrix"
from . import so2  # "so2"
from . import vector_gaunt_grid  # "vector-gaunt-grid"
from .cg_dense_edge import cg_edge_rule
from .edge import EdgeProduct, edge_blocking, edge_vjp

__all__ = ["REGISTRY", "EdgeProduct", "TensorProductSpec", "cg_edge_rule", "edge_blocking",
           "edge_vjp", "get", "register"]
