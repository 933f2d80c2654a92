"""DFT-D3 dispersion added to a Facet model, through the ``dftd3`` package (simple-dftd3).

Machine-learned potentials trained on PBE data (MPTrj, and the data of the shipped model) lack
the long-range London dispersion that PBE itself lacks. :class:`D3` evaluates Grimme's DFT-D3
correction with the damping parameters fitted for an exchange-correlation functional (PBE by
default) so that ``Facet + D3`` approximates ``PBE-D3``. The numbers come from simple-dftd3's
own library (its Python API, :mod:`dftd3.interface`); this module only converts units (Hartree,
Bohr -> eV, Angstrom) and keeps one library object per structure so that an MD run or a
relaxation updates positions instead of rebuilding it.

Conventions as in :mod:`facet.calculator`: energy eV, forces eV/A, stress eV/A^3 with ASE's
sign in Voigt order ``xx yy zz yz xz xy`` (only for cells periodic in all three directions),
per-atom energies that sum to the energy (the library's pairwise energies, each pair split
evenly between its two atoms).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DAMPINGS", "D3", "make_dispersion"]

#: ``dispersion=`` names -> the damping parameter class name in :mod:`dftd3.interface`.
DAMPINGS = {
    "d3bj": "RationalDampingParam",
    "d3zero": "ZeroDampingParam",
    "d3bjm": "ModifiedRationalDampingParam",
    "d3zerom": "ModifiedZeroDampingParam",
    "d3op": "OptimizedPowerDampingParam",
}


def _import_dftd3():
    try:
        from dftd3 import interface
    except ImportError as err:  # pragma: no cover - dftd3 is a dependency
        raise ImportError(
            "dispersion needs the dftd3 package (simple-dftd3): pip install dftd3"
        ) from err
    return interface


class D3:
    """DFT-D3 dispersion for one damping scheme and functional.

    Args:
        damping: one of :data:`DAMPINGS` (``"d3bj"``: Becke-Johnson rational damping).
        xc: the functional whose damping parameters are used (``"pbe"``).

    Raises ``ValueError`` naming the damping or functional that simple-dftd3 does not know.
    """

    def __init__(self, damping: str = "d3bj", xc: str = "pbe"):
        interface = _import_dftd3()
        if damping not in DAMPINGS:
            raise ValueError(
                f"unknown dispersion {damping!r}: expected one of {', '.join(DAMPINGS)} or None"
            )
        self.damping = damping
        self.xc = str(xc)
        try:
            self._param = getattr(interface, DAMPINGS[damping])(method=self.xc)
        except RuntimeError as err:
            raise ValueError(
                f"dispersion {damping!r}: simple-dftd3 has no parameters for the functional "
                f"{self.xc!r} ({err})"
            ) from err
        self._interface = interface
        self._model = None
        self._key: tuple | None = None

    def __repr__(self) -> str:
        return f"D3(damping={self.damping!r}, xc={self.xc!r})"

    def _model_for(self, atoms):
        from ase.units import Bohr

        numbers = np.asarray(atoms.numbers)
        pbc = np.asarray(atoms.pbc, bool)
        key = (numbers.tobytes(), pbc.tobytes())
        pos = np.asarray(atoms.positions, np.float64) / Bohr
        cell = np.asarray(atoms.cell[:], np.float64) / Bohr
        if self._model is not None and key == self._key:
            self._model.update(pos, cell if pbc.any() else None)
        else:
            self._model = self._interface.DispersionModel(
                numbers, pos, cell if pbc.any() else None, pbc if pbc.any() else None
            )
            self._key = key
        return self._model

    def compute(self, atoms, *, energies: bool = False) -> dict[str, Any]:
        """``energy``, ``forces``, ``stress`` (3D-periodic cells) and, on request, ``energies``
        of ``atoms`` in ASE units."""
        from ase.units import Bohr, Hartree

        try:
            model = self._model_for(atoms)
            res = model.get_dispersion(self._param, grad=True)
        except RuntimeError as err:
            self._model = None
            raise ValueError(
                f"dftd3 could not evaluate {atoms.get_chemical_formula()}: {err}"
            ) from err
        out: dict[str, Any] = {
            "energy": float(res["energy"]) * Hartree,
            "forces": -np.asarray(res["gradient"], np.float64) * (Hartree / Bohr),
        }
        if np.all(atoms.pbc):
            sigma = np.asarray(res["virial"], np.float64) * (Hartree / atoms.get_volume())
            out["stress"] = sigma.flat[[0, 4, 8, 5, 2, 1]].copy()
        if energies:
            pair = model.get_pairwise_dispersion(self._param)
            total = pair["additive pairwise energy"] + pair["non-additive pairwise energy"]
            out["energies"] = np.asarray(total, np.float64).sum(axis=1) * Hartree
        return out


def make_dispersion(spec: Any, xc: str = "pbe") -> D3 | None:
    """``None`` -> None; a name in :data:`DAMPINGS` -> :class:`D3`; a :class:`D3` as is."""
    if spec is None or isinstance(spec, D3):
        return spec
    if isinstance(spec, str):
        return D3(spec.lower(), xc)
    raise TypeError(f"dispersion must be None, a name ({', '.join(DAMPINGS)}) or a D3 object; "
                    f"got {type(spec).__name__}")
