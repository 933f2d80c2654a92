"""Ziegler-Biersack-Littmark (ZBL) screened nuclear repulsion, smoothly switched off.

Universal ZBL potential (Ziegler, Biersack, Littmark, "The Stopping and Range of Ions in Solids",
Pergamon 1985, eq. 2-58):

.. math::  E_{ij}(r) = \\frac{e^2}{4\\pi\\varepsilon_0}\\frac{Z_i Z_j}{r}\\,\\phi(r/a)\\,
           u\\!\\left(\\frac{r}{r^{max}_{ij}}\\right), \\qquad
           a = \\frac{0.46850\\,\\text{A}}{Z_i^{0.23} + Z_j^{0.23}},

.. math::  \\phi(x) = 0.18175 e^{-3.19980x} + 0.50986 e^{-0.94229x} + 0.28022 e^{-0.40290x}
           + 0.02817 e^{-0.20162x},

``e^2/(4 pi eps0) = 14.3996454784 eV A``. ``u`` is the C^2 polynomial envelope of
:mod:`facet.nn.radial` with ``r_max_ij = factor * (r_cov,i + r_cov,j)`` (covalent radii of
Cordero et al., Dalton Trans. 2008, as tabulated by ASE), so the term acts only well inside
bonding distances, where training data are scarce and an untrained network could let atoms
fuse (the failure reported in mace issues #1260 and #499). Each unordered pair appears as two
directed edges; half of ``E_ij`` goes to each receiver, so node energies sum to the pair energy.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from .radial import polynomial_envelope

__all__ = ["KE", "zbl_pair_energy", "covalent_radii"]

KE = 14.3996454784  # e^2 / (4 pi eps0) in eV * Angstrom
_C = (0.18175, 0.50986, 0.28022, 0.02817)
_D = (3.19980, 0.94229, 0.40290, 0.20162)


@functools.lru_cache(maxsize=1)
def covalent_radii() -> np.ndarray:
    """``(119,)`` covalent radii in Angstrom indexed by atomic number (ASE's table)."""
    from ase.data import covalent_radii as radii

    out = np.asarray(radii[:119], dtype=np.float64).copy()
    out[0] = 0.0
    return out


def zbl_pair_energy(r, z_i, z_j, *, factor: float = 1.0, p: int = 6):
    """ZBL energy of each pair (eV), switched off at ``factor * (r_cov,i + r_cov,j)``.

    ``r`` must be positive where used (mask padding edges beforehand); ``z_i, z_j`` integer arrays
    broadcast with ``r``.
    """
    dtype = jnp.result_type(r)
    zi = z_i.astype(dtype)
    zj = z_j.astype(dtype)
    a = 0.46850 / (zi**0.23 + zj**0.23 + (zi + zj == 0))
    x = r / a
    phi = sum(c * jnp.exp(-d * x) for c, d in zip(_C, _D, strict=True))
    rc = jnp.asarray(covalent_radii(), dtype)
    r_max = factor * (rc[z_i] + rc[z_j])
    r_max = jnp.where(r_max > 0, r_max, 1.0)
    return KE * zi * zj / r * phi * polynomial_envelope(r, r_max, p)
