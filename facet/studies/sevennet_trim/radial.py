"""SevenNet-0's radial MLPs as this study sees them, and the linear map that replaces them.

Shared by :mod:`.trim` (the fit and the trimmed model) and :mod:`.outfit` (the output fit), so
neither imports the other. Torch is imported inside the functions: the module imports without
it (the pure logic of the study is tested in the default environment).
"""

from __future__ import annotations

import copy
import functools

import numpy as np


def linear_radial(weight):
    """A bias-free linear radial map ``w = x @ W`` replacing a ``FullyConnectedNet`` weight_nn.

    ``x`` is SevenNet's edge embedding (envelope-weighted Bessel basis, shape ``(n_edge, 8)``);
    ``W`` has shape ``(n_basis, n_weights)``. No bias, so ``w`` vanishes at the cutoff with the
    envelope, like the MLP it replaces (its activation satisfies f(0) = 0 and it has no biases).
    A ``torch.nn.Module`` whose only parameter is ``weight`` (float32).
    """
    return _linear_radial_class()(weight)


@functools.cache
def _linear_radial_class():
    import torch

    class LinearRadial(torch.nn.Module):
        """See :func:`linear_radial`."""

        def __init__(self, weight) -> None:
            super().__init__()
            w = torch.as_tensor(np.asarray(weight), dtype=torch.float32)
            self.weight = torch.nn.Parameter(w)

        def forward(self, x):
            return x @ self.weight

    return LinearRadial


def convolution_keys(model) -> list[str]:
    """Names of the modules that own a radial MLP (``weight_nn``), in model order."""
    keys = [k for k, m in model._modules.items() if getattr(m, "weight_nn", None) is not None]
    if not keys:
        raise RuntimeError("no module with a weight_nn found: is this a SevenNet model?")
    return keys


def radial_features(model, r: np.ndarray) -> np.ndarray:
    """SevenNet's edge embedding ``b(r) * u(r)`` in float64, using the model's own modules (its
    trained Bessel frequencies and its envelope), shape ``(len(r), n_basis)``."""
    import torch

    emb = copy.deepcopy(model._modules["edge_embedding"]).double()
    with torch.no_grad():
        rt = torch.as_tensor(r, dtype=torch.float64)
        return (emb.basis_function(rt) * emb.cutoff_function(rt).unsqueeze(-1)).numpy()


def mlp_outputs(model, key: str, features: np.ndarray) -> np.ndarray:
    """The layer's radial MLP evaluated in float64 on the given features."""
    import torch

    net = copy.deepcopy(model._modules[key].weight_nn).double()
    with torch.no_grad():
        return net(torch.as_tensor(features, dtype=torch.float64)).numpy()


def count_parameters(model) -> dict:
    """Trainable (``requires_grad`` at load) and all parameters of a model."""
    params = list(model.parameters())
    return {
        "trainable": int(sum(p.numel() for p in params if p.requires_grad)),
        "all": int(sum(p.numel() for p in params)),
    }
