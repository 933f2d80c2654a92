"""Fit SevenNet's linear radial maps to each convolution's *output* on real graphs.

Used by :mod:`.trim` (``--fit output``). A SevenNet/NequIP convolution is

.. math::  m_{i,c} = \\frac{1}{\\nu} \\sum_{j \\in N(i)} w_{k(c)}(r_{ij})\\,
           T_{ij,c},  \\qquad T_{ij} = \\mathrm{TP}(x_j, Y(\\hat r_{ij}); \\mathbf 1),

with ``c`` an output component, ``k(c)`` the one weight that multiplies it (e3nn ``uvu``
instructions, one output slot per instruction: each weight scales a single channel of a single
path) and ``T`` the tensor product evaluated with all weights set to one (the product is linear in
its weights). With ``w(r) = f(r) W`` (``f`` = envelope x Bessel basis, 8 functions), the
convolution output is linear in ``W``:

.. math::  m_{i,c} = \\sum_b W_{b,k(c)}\\, G_{i,c,b},  \\qquad
           G_{i,c,b} = \\frac{1}{\\nu}\\sum_{j} f_b(r_{ij})\\, T_{ij,c},

so for every weight ``k`` an 8-unknown least-squares problem over all nodes ``i`` and its output
components ``c`` gives the ``W`` that best reproduces what the next layer actually receives,
rather than the radial function itself (whose errors partly cancel in the neighbour sum, and
matter only where the tensor product is large). Fitting the layers in order, with the inputs
``x_j`` taken from the model whose earlier layers are already linear and the targets from the
original model, lets each layer compensate the errors of the earlier ones. A small multiple of
the per-edge fit (the radial functions on sampled distances) is added to the normal equations so
that distances rare in the fitting graphs stay close to the original radial function.
"""

from __future__ import annotations

import copy
import types

import numpy as np

from . import evaluate as ev
from .radial import convolution_keys, linear_radial, mlp_outputs


def weight_index_of_outputs(tp) -> np.ndarray:
    """For an e3nn ``TensorProduct`` with ``uvu`` instructions and one instruction per output
    slot, the index of the weight multiplying each output component (``(irreps_out.dim,)``)."""
    idx = np.full(tp.irreps_out.dim, -1, dtype=np.int64)
    slices = tp.irreps_out.slices()
    offset = 0
    for ins in tp.instructions:
        if ins.connection_mode != "uvu" or not ins.has_weight:
            raise ValueError(f"unsupported instruction {ins}: need weighted 'uvu'")
        mul, ir = tp.irreps_out[ins.i_out]
        if ins.path_shape != (mul, 1) and ins.path_shape != (mul,):
            raise ValueError(f"instruction {ins}: path shape {ins.path_shape} != ({mul}, 1)")
        sl = slices[ins.i_out]
        if np.any(idx[sl] >= 0):
            raise ValueError(f"output slot {ins.i_out} fed by several instructions")
        # e3nn layout of a ``mul x ir`` slot: component u * (2l + 1) + m
        idx[sl] = offset + np.repeat(np.arange(mul), ir.dim)
        offset += mul
    if offset != tp.weight_numel or np.any(idx < 0):
        raise ValueError("tensor product weights do not map one-to-one onto output slots")
    return idx


class _Capture:
    """Replaces a convolution's ``forward`` to record its inputs (float64 copies)."""

    def __init__(self, conv):
        self.conv, self.records = conv, []
        self._orig = conv.forward

        def fwd(mod, data):
            src, dst = data[mod.key_edge_idx][1], data[mod.key_edge_idx][0]
            self.records.append(
                {
                    "x_src": data[mod.key_x][src].detach().double(),
                    "filter": data[mod.key_filter].detach().double(),
                    "emb": data[mod.key_weight_input].detach().double(),
                    "dst": dst.detach(),
                    "n": int(data[mod.key_x].shape[0]),
                }
            )
            return self._orig(data)

        conv.forward = types.MethodType(fwd, conv)

    def close(self):
        self.conv.forward = self._orig


def capture_inputs(model, keys: list[str], structures) -> dict[str, list[dict]]:
    """Inputs of the convolutions ``keys`` on each structure (one eval-mode forward each)."""

    caps = {k: _Capture(model._modules[k]) for k in keys}
    try:
        model.eval()
        for atoms in structures:
            model(ev.to_graph(atoms, model.cutoff))
    finally:
        for c in caps.values():
            c.close()
    return {k: c.records for k, c in caps.items()}


def _unit_messages(tp64, rec):
    import torch

    ones = torch.ones(rec["filter"].shape[0], tp64.weight_numel, dtype=torch.float64)
    with torch.no_grad():
        return tp64(rec["x_src"], rec["filter"], ones)


def normal_equations(conv, rec_fit, rec_ref, widx) -> tuple[np.ndarray, ...]:
    """Per-weight normal equations ``A (n_w, 8, 8)``, ``b (n_w, 8)``, ``y.y (n_w,)`` of one graph.

    ``rec_fit``: the inputs the fitted layer will see; ``rec_ref``: the original model's inputs,
    from which the target (original convolution output) is computed with the original MLP.
    """
    import torch

    tp64 = copy.deepcopy(conv.convolution).double()
    mlp64 = copy.deepcopy(conv.weight_nn).double()
    nu = float(conv.denominator)
    n_w = tp64.weight_numel
    widx_t = torch.as_tensor(widx)
    with torch.no_grad():
        t_ref = _unit_messages(tp64, rec_ref)
        w_ref = mlp64(rec_ref["emb"])[:, widx_t]
        y = torch.zeros(rec_ref["n"], t_ref.shape[1], dtype=torch.float64)
        y.index_add_(0, rec_ref["dst"], w_ref * t_ref / nu)
        t_fit = t_ref if rec_fit is rec_ref else _unit_messages(tp64, rec_fit)
        emb = rec_fit["emb"]
        G = torch.zeros(rec_fit["n"], t_fit.shape[1], emb.shape[1], dtype=torch.float64)
        for b in range(emb.shape[1]):
            G[:, :, b].index_add_(0, rec_fit["dst"], emb[:, b : b + 1] * t_fit / nu)
        A_c = torch.einsum("icb,icd->cbd", G, G)
        b_c = torch.einsum("icb,ic->cb", G, y)
        yy_c = (y * y).sum(0)
        A = torch.zeros(n_w, *A_c.shape[1:], dtype=torch.float64).index_add_(0, widx_t, A_c)
        bv = torch.zeros(n_w, b_c.shape[1], dtype=torch.float64).index_add_(0, widx_t, b_c)
        yy = torch.zeros(n_w, dtype=torch.float64).index_add_(0, widx_t, yy_c)
    return A.numpy(), bv.numpy(), yy.numpy()


def solve_output_fit(A, b, yy, A_edge, b_edge, edge_weight: float):
    """``W`` (8, n_w) minimising ``|G W_k - y_k|^2 + edge_weight * s_k |F W_k - y_edge_k|^2``
    for each weight ``k``, with ``s_k = tr A_k / tr A_edge_k`` so that ``edge_weight`` is the
    per-edge term's share of the curvature. Returns ``(W, r2)`` with the output-fit ``R^2`` per
    weight (against ``sum y^2``, i.e. uncentred: the outputs have no free offset)."""
    tr = np.trace(A, axis1=1, axis2=2)
    tr_e = np.trace(A_edge, axis1=1, axis2=2)
    s = edge_weight * tr / np.maximum(tr_e, 1e-300)
    M = A + s[:, None, None] * A_edge
    rhs = b + s[:, None] * b_edge
    W = np.linalg.solve(M, rhs[..., None])[..., 0]  # (n_w, 8)
    res = yy - 2 * np.einsum("kb,kb->k", W, b) + np.einsum("kb,kbd,kd->k", W, A, W)
    r2 = 1 - res / np.maximum(yy, 1e-300)
    return W.T.copy(), r2


def edge_normal_equations(F: np.ndarray, Y: np.ndarray):
    """Per-weight normal equations of the per-edge fit ``F W ~ Y`` (same for every weight)."""
    A = F.T @ F
    return np.broadcast_to(A, (Y.shape[1], *A.shape)).copy(), (F.T @ Y).T.copy()


def fit_outputs(
    model, structures, edge_features, *, edge_weight=0.05, sequential=True, log=print
) -> tuple[dict, dict]:
    """Linear maps for every radial MLP of ``model`` fitted to the convolution outputs on
    ``structures`` (ASE Atoms); ``edge_features`` are ``u(r) b(r)`` on sampled
    distances for the per-edge regulariser. Returns ``({key: W}, {key: report})``."""

    keys = convolution_keys(model)
    work = copy.deepcopy(model)
    maps, reports = {}, {}
    refs = capture_inputs(model, keys, structures)
    for i, key in enumerate(keys):
        conv = model._modules[key]
        widx = weight_index_of_outputs(conv.convolution)
        ref = refs.pop(key)
        # Layer 0 sees the same inputs in both models.
        fit = capture_inputs(work, [key], structures)[key] if sequential and i else ref
        n_w = conv.convolution.weight_numel
        nb = edge_features.shape[1]
        A, b, yy = np.zeros((n_w, nb, nb)), np.zeros((n_w, nb)), np.zeros(n_w)
        for r_fit, r_ref in zip(fit, ref, strict=True):
            dA, db, dy = normal_equations(conv, r_fit, r_ref, widx)
            A, b, yy = A + dA, b + db, yy + dy
        Ae, be = edge_normal_equations(edge_features, mlp_outputs(model, key, edge_features))
        W, r2 = solve_output_fit(A, b, yy, Ae, be, edge_weight)
        maps[key] = W
        work._modules[key].weight_nn = linear_radial(W)
        reports[key] = {
            "output_r2_mean": float(np.mean(r2)),
            "output_r2_pooled": float(1 - np.sum(yy * (1 - r2)) / np.sum(yy)),
            "output_r2_min": float(np.min(r2)),
            "n_structures": len(structures),
        }
        log(f"  {key}: output-fit R2 mean {100 * np.mean(r2):.3f} % (min {100 * r2.min():.2f})")
    return maps, reports
