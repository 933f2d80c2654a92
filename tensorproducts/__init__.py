"""Tensor-product variants behind one contract (see :mod:`tensorproducts.registry`)."""

from .registry import REGISTRY, TensorProductSpec, get, register

__all__ = ["REGISTRY", "TensorProductSpec", "get", "register"]
