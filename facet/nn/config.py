"""The typed, frozen configuration of a Facet model (one source of truth for every option)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["ModelConfig"]

_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of :class:`facet.nn.FacetModel`. Lengths in Angstrom, energies in eV.

    Attributes:
        cutoff: neighbour-list and radial cutoff ``r_c``.
        num_layers: interaction blocks (message passing steps).
        channels: ``C``, channels of the node features; each holds irreps ``l <= lmax``.
        lmax: maximal degree of node features and edge spherical harmonics.
        pseudo: also carry pseudo-parity irreps ``0o + 1e + 2o + ...`` in every channel.
        product: tensor-product variant from :data:`tensorproducts.REGISTRY` for the messages.
        radial_basis: key of :data:`facet.nn.radial.RADIAL_BASES` (``"bspline"`` or ``"bessel"``).
        num_radial: ``K``, basis functions (B-spline knots).
        radial_mlp: hidden widths of an optional radial MLP (SevenNet style); ``()`` = the
            linear ("spline") map of the Facet paper.
        envelope_p: exponent ``p`` of the polynomial cutoff envelope.
        avg_num_neighbors: message normaliser: sums are divided by
            ``avg_num_neighbors ** neighbor_norm_exponent``.
        neighbor_norm_exponent: see above (1 as SevenNet, 0.5 as NequIP, 0.7 in early Facet).
        mixer_hidden: ``H``, hidden fields of the grid MLP.
        mixer_activation: key of :data:`facet.nn.grid_mixing.GRID_ACTIVATIONS`.
        grid_resolution: ``(n_beta, n_alpha)``; None = the exact rule of :mod:`facet.nn.grid`.
        residual_init: initial value of each block's residual scale (small: blocks start near
            the identity).
        readout_hidden: width of the per-atom energy MLP on the scalars.
        zbl: add the ZBL screened nuclear repulsion (short range, see :mod:`facet.nn.zbl`).
        zbl_cutoff_factor: ZBL pair term is switched off smoothly at this multiple of the sum of
            covalent radii.
        dtype: ``"float32"`` or ``"float64"`` (float64 needs JAX's x64 mode at construction
            and call time, e.g. ``with jax.enable_x64(True):``).
    """

    cutoff: float = 5.0
    num_layers: int = 3
    channels: int = 64
    lmax: int = 2
    pseudo: bool = False
    product: str = "cg-dense"
    radial_basis: str = "bspline"
    num_radial: int = 10
    radial_mlp: tuple[int, ...] = ()
    envelope_p: int = 6
    avg_num_neighbors: float = 30.0
    neighbor_norm_exponent: float = 1.0
    mixer_hidden: int = 64
    mixer_activation: str = "quadratic"
    grid_resolution: tuple[int, int] | None = None
    residual_init: float = 0.1
    readout_hidden: int = 32
    zbl: bool = True
    zbl_cutoff_factor: float = 1.0
    dtype: str = "float32"

    def __post_init__(self):
        # Normalise sequences from YAML/JSON (lists) to tuples so configs stay hashable.
        object.__setattr__(self, "radial_mlp", tuple(int(v) for v in self.radial_mlp))
        if self.grid_resolution is not None:
            object.__setattr__(self, "grid_resolution", tuple(int(v) for v in self.grid_resolution))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the offending option."""
        from .grid_mixing import GRID_ACTIVATIONS
        from .radial import RADIAL_BASES

        def bad(key, msg):
            raise ValueError(f"ModelConfig.{key}={getattr(self, key)!r}: {msg}")

        if not self.cutoff > 0:
            bad("cutoff", "must be positive")
        for key in ("num_layers", "channels", "mixer_hidden", "readout_hidden", "num_radial"):
            if int(getattr(self, key)) < 1:
                bad(key, "must be >= 1")
        if self.lmax < 1:
            bad("lmax", "must be >= 1 (l = 0 only would not be equivariant in any useful sense)")
        if self.radial_basis not in RADIAL_BASES:
            bad("radial_basis", f"known: {', '.join(RADIAL_BASES)}")
        if self.mixer_activation not in GRID_ACTIVATIONS:
            bad("mixer_activation", f"known: {', '.join(GRID_ACTIVATIONS)}")
        if self.grid_resolution is not None and (
            len(self.grid_resolution) != 2 or min(self.grid_resolution) < 1
        ):
            bad("grid_resolution", "must be None or (n_beta, n_alpha) with positive entries")
        if self.dtype not in _DTYPES:
            bad("dtype", f"must be one of {_DTYPES}")
        if not self.avg_num_neighbors > 0:
            bad("avg_num_neighbors", "must be positive")
        if self.envelope_p < 2:
            bad("envelope_p", "must be >= 2 for a C^2 cutoff")

    def replace(self, **changes) -> ModelConfig:
        """A copy with ``changes``; unknown keys raise ``KeyError`` naming them."""
        _check_keys(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML types only (tuples become lists)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``KeyError`` naming them."""
        _check_keys(d)
        return cls(**d)


def _check_keys(d: dict) -> None:
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise KeyError(
            f"unknown ModelConfig key(s) {', '.join(map(repr, unknown))}; known: "
            f"{', '.join(sorted(known))}"
        )
