"""Benchmark runner: MACE (mace-torch) at the MACE-MP-0 "small" / "medium" architecture sizes with
random weights (no MACE-MP weights can be downloaded here). Run with the MACE venv's python.

Architecture as in MACE-MP-0 (Batatia et al., arXiv 2401.00096): ScaleShiftMACE, r_max 6 A,
10 Bessel functions, polynomial cutoff p = 5, max_ell 3, correlation 3, 2 interactions
(RealAgnosticResidualInteractionBlock), MLP_irreps 16x0e, radial MLP [64, 64, 64], 89 elements
(Z 1-83 and 89-94, MPtrj), hidden irreps 128x0e (small) or 128x0e+128x1o (medium),
avg_num_neighbors 61.96; float32.
"""

from __future__ import annotations

import os

from _protocol import serve, torch_parameters, torch_versions

# e3nn 0.4 loads its own constants.pt with torch.load, which torch >= 2.6 refuses by default
# (weights_only=True); the file is part of the installed e3nn package.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

HIDDEN = {"mace-mp0-small": "128x0e", "mace-mp0-medium": "128x0e+128x1o"}
Z_MPTRJ = list(range(1, 84)) + list(range(89, 95))


def make(variant: str, options: dict):
    import numpy as np
    import torch
    from e3nn import o3
    from mace import modules
    from mace.calculators import MACECalculator

    torch.manual_seed(options.get("seed", 0))
    torch.set_default_dtype(torch.float32)
    model = modules.ScaleShiftMACE(
        r_max=6.0,
        num_bessel=10,
        num_polynomial_cutoff=5,
        max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=2,
        num_elements=len(Z_MPTRJ),
        hidden_irreps=o3.Irreps(HIDDEN[variant]),
        MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.zeros(len(Z_MPTRJ)),
        avg_num_neighbors=61.96,
        atomic_numbers=Z_MPTRJ,
        correlation=3,
        gate=torch.nn.functional.silu,
        radial_MLP=[64, 64, 64],
        atomic_inter_scale=1.0,
        atomic_inter_shift=0.0,
    )
    return MACECalculator(models=model, device="cpu", default_dtype="float32")


def versions() -> dict:
    return torch_versions("mace", "e3nn")


def count(calc) -> int:
    return torch_parameters(calc.models[0])


if __name__ == "__main__":
    serve(make, versions, count_parameters=count)
