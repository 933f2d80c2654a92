"""Deprecated: ``facet.relax`` moved to :mod:`facet.dynamics.relax`
(re-exported for one release)."""

from facet.deprecation import warn_moved
from facet.dynamics.relax import (
    RelaxResult,
    output_format,
    read_structures,
    relax,
    relax_many,
    to_atoms,
    write_relaxed,
)

__all__ = [
    "RelaxResult",
    "output_format",
    "read_structures",
    "relax",
    "relax_many",
    "to_atoms",
    "write_relaxed",
]

warn_moved(__name__, "facet.dynamics.relax")
