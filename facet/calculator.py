"""A minimal ASE calculator for Facet models (energy, free_energy, forces, stress, energies).

Structures are turned into graphs at ``model.cutoff``
(:func:`facet.data.neighbors.graph_from_atoms`) and padded to bucketed sizes with headroom
(:func:`facet.data.pad_sizes`), so MD or relaxation steps reuse one compiled program until the
neighbour count outgrows its bucket. Stress is returned in Voigt order ``xx yy zz yz xz xy``
(eV/A^3, positive = tensile) for fully periodic cells only.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes

__all__ = ["FacetCalculator"]


def _resolve_model(model, dtype: str):
    from .nn import FacetModel
    from .nn.presets import PRESETS, create_model

    if isinstance(model, FacetModel):
        return model
    if isinstance(model, str) and model in PRESETS:
        return create_model(model, dtype=dtype)
    raise ValueError(
        f"model must be a FacetModel or a preset name ({', '.join(PRESETS)}); got {model!r}. "
        "(Checkpoint paths and trained 'default' weights are handled by the full calculator.)"
    )


class FacetCalculator(Calculator):
    """ASE calculator around a :class:`facet.nn.FacetModel`.

    Args:
        model: a model object or a preset name (random weights).
        dtype: ``"float32"`` or ``"float64"`` (the latter needs JAX's x64 mode).
        headroom: extra fraction of nodes/edges before bucketing (default 10 %).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model="facet-s", *, dtype: str = "float32", headroom: float = 0.1, **kw):
        super().__init__(**kw)
        import jax
        from flax import nnx

        from .physics import predict

        self.model = _resolve_model(model, dtype)
        self.headroom = float(headroom)
        graphdef, _ = nnx.split(self.model)

        @jax.jit
        def _predict(state, batch):
            return predict(nnx.merge(graphdef, state), batch, forces=True, stress=True)

        self._predict = _predict
        self._shape: tuple[int, int, int] | None = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        from .data import collate, pad_sizes
        from .data.neighbors import graph_from_atoms
        from .nn import check_atomic_numbers

        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        check_atomic_numbers(atoms.numbers, where=f"Atoms {atoms.get_chemical_formula()}")
        graph = graph_from_atoms(atoms, self.model.cutoff, labels_from_calc=False)
        n, e, g = pad_sizes([graph], headroom=self.headroom)
        if self._shape is not None:
            n0, e0, _ = self._shape
            # Keep the current (larger) bucket while it still fits: no recompilation.
            if graph.n_node + 1 <= n0 and graph.n_edge <= e0:
                n, e = n0, e0
        self._shape = (n, e, g)
        batch = collate([graph], n, e, g, dtype=np.dtype(self.model.config.dtype))
        from flax import nnx

        out = self._predict(nnx.state(self.model), batch)  # current weights
        nat = len(atoms)
        energy = float(out.energy[0])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": np.asarray(out.node_energies[:nat], dtype=np.float64),
            "forces": np.asarray(out.forces[:nat], dtype=np.float64),
        }
        if atoms.pbc.all():
            from .physics import full_to_voigt

            self.results["stress"] = np.asarray(full_to_voigt(out.stress[0]), dtype=np.float64)
        elif "stress" in properties:
            raise PropertyNotImplementedError(
                "stress is only defined for cells periodic in all three directions"
            )
