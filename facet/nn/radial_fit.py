"""Convert a radial MLP into a linear map on its radial basis (NumPy only, no JAX).

Equivariant potentials of the NequIP family (NequIP, SevenNet, MACE, Facet's radial-MLP option)
compute the per-edge weights of each tensor product with a small MLP of the envelope-weighted
radial basis,

.. math::  w(r) = \\mathrm{MLP}\\big(u(r) \\, \\mathbf b(r)\\big) \\in \\mathbb R^{n_\\mathrm{out}},
           \\qquad \\mathbf b(r) \\in \\mathbb R^{n_\\mathrm{basis}},

with ``b`` e.g. ``n_basis`` Bessel functions :math:`\\sqrt{2/r_c}\\,\\sin(n\\pi r/r_c)/r` and
``u`` a smooth cutoff envelope. The Facet paper (Miklaucic et al., arXiv 2509.08418, 2025)
replaces that MLP by a bias-free linear map ("spline"),

.. math::  w(r) \\approx \\big(u(r)\\,\\mathbf b(r)\\big)^{\\!\\top} W ,
           \\qquad W \\in \\mathbb R^{n_\\mathrm{basis} \\times n_\\mathrm{out}},

which keeps the smooth decay to zero at the cutoff (``u(r_c) = 0``) and removes the hidden
layers' parameters and FLOPs. An already trained MLP is converted by sampling it on the
distances the model actually sees and solving the (optionally weighted, optionally ridge-
regularised) least-squares problem

.. math::  W^\\star = \\arg\\min_W \\sum_i \\omega_i \\lVert \\mathbf f_i^{\\top} W -
           \\mathbf y_i \\rVert^2 + \\lambda \\lVert W \\rVert_F^2 ,

whose normal equations are :math:`(F^\\top \\Omega F + \\lambda I) W = F^\\top \\Omega Y`. This
module is framework-free on purpose: the SevenNet-0 trimming script (torch) and Facet's own
conversion (JAX) both call :func:`fit_linear_radial`, so the fitted maps and their quality
figures mean the same thing everywhere.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> F = rng.normal(size=(200, 8))
    >>> W_true = rng.normal(size=(8, 3))
    >>> W, rep = fit_linear_radial(F, F @ W_true)
    >>> bool(np.allclose(W, W_true, atol=1e-10)), rep.r2_overall > 1 - 1e-12
    (True, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["LinearFitReport", "fit_linear_radial", "linear_map_quality", "mixture_distances"]


@dataclass(frozen=True)
class LinearFitReport:
    """Quality of a linear fit ``Y ~ F @ W`` on the samples it was fitted to.

    All figures use the sample weights ``omega`` (uniform when none were given). With
    :math:`\\bar y_k` the weighted mean of output ``k``,
    :math:`\\mathrm{SS}_{\\mathrm{res},k} = \\sum_i \\omega_i (\\hat y_{ik} - y_{ik})^2` and
    :math:`\\mathrm{SS}_{\\mathrm{tot},k} = \\sum_i \\omega_i (y_{ik} - \\bar y_k)^2`:

    Attributes:
        r2_per_output: ``(n_out,)`` :math:`1 - \\mathrm{SS}_{\\mathrm{res},k}/
            \\mathrm{SS}_{\\mathrm{tot},k}` (NaN for a constant output).
        r2_mean: unweighted mean of ``r2_per_output`` over non-constant outputs (what
            ``sklearn.metrics.r2_score`` calls ``"uniform_average"``).
        r2_overall: pooled :math:`1 - \\sum_k \\mathrm{SS}_{\\mathrm{res},k} / \\sum_k
            \\mathrm{SS}_{\\mathrm{tot},k}` (sklearn's ``"variance_weighted"``).
        max_abs_error_per_output: ``(n_out,)`` largest :math:`|\\hat y_{ik} - y_{ik}|` over
            samples with nonzero weight.
        max_abs_error: the largest of those.
        rmse: weighted root-mean-square error over all samples and outputs.
        target_rms: weighted root-mean-square of the targets (to put ``rmse`` in scale).
        n_samples, n_basis, n_out: problem size.
        rank: numerical rank of the (weighted) feature matrix.
        condition_number: ratio of its largest to smallest singular value.
        ridge: the regularisation :math:`\\lambda` used.
    """

    r2_per_output: np.ndarray
    r2_mean: float
    r2_overall: float
    max_abs_error_per_output: np.ndarray
    max_abs_error: float
    rmse: float
    target_rms: float
    n_samples: int
    n_basis: int
    n_out: int
    rank: int
    condition_number: float
    ridge: float

    def to_dict(self) -> dict:
        """JSON-ready dictionary (arrays become lists)."""
        out = asdict(self)
        for key, val in out.items():
            if isinstance(val, np.ndarray):
                out[key] = val.tolist()
        return out


def _as_2d_float(name: str, arr, n_rows: int | None) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 2:
        raise ValueError(
            f"fit_linear_radial: {name} must be a 2-D array (n_samples, n_columns); got shape "
            f"{a.shape}. Reshape a single output to (n_samples, 1)."
        )
    if n_rows is not None and a.shape[0] != n_rows:
        raise ValueError(
            f"fit_linear_radial: {name} has {a.shape[0]} rows but features has {n_rows} "
            "samples; every sample needs one row in each."
        )
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise TypeError(f"fit_linear_radial: {name} must be real numbers; got dtype {a.dtype}.")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(
            f"fit_linear_radial: {name} contains NaN or inf (first at row {bad[0]}, column "
            f"{bad[1]}); remove or fix those samples."
        )
    return a


def _check_weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(
            f"fit_linear_radial: weights must have shape ({n},) (one per sample); got {w.shape}."
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError("fit_linear_radial: weights must be finite and non-negative.")
    if not np.any(w > 0):
        raise ValueError("fit_linear_radial: all weights are zero; nothing to fit.")
    return w


def fit_linear_radial(
    features,
    targets,
    *,
    weights=None,
    ridge: float = 0.0,
) -> tuple[np.ndarray, LinearFitReport]:
    """Least-squares linear map from radial features to radial-MLP outputs, in float64.

    Args:
        features: ``(n_samples, n_basis)`` the MLP's inputs, i.e. the envelope-weighted radial
            basis ``u(r) b(r)`` evaluated on sampled distances.
        targets: ``(n_samples, n_out)`` the MLP's outputs on the same samples.
        weights: optional ``(n_samples,)`` non-negative sample weights :math:`\\omega_i`
            (e.g. inverse sampling density to emphasise rare distances). Default: all ones.
        ridge: :math:`\\lambda \\ge 0`, Tikhonov regularisation on ``W`` (0 = ordinary least
            squares). Needed only when the features are rank deficient.

    Returns:
        ``(W, report)``: ``W`` of shape ``(n_basis, n_out)`` (float64) such that
        ``features @ W`` approximates ``targets``; ``report`` a :class:`LinearFitReport`.

    Raises:
        ValueError: wrong ranks or row counts, non-finite values, negative weights or ridge, or
            a rank-deficient problem without ridge (fewer informative samples than basis
            functions); the message says which argument and what to change.

    The solution is computed with an SVD-based ``numpy.linalg.lstsq`` on the row-scaled system
    :math:`[\\sqrt{\\Omega} F; \\sqrt{\\lambda} I] W = [\\sqrt{\\Omega} Y; 0]`, which is
    better conditioned than forming the normal equations.
    """
    F = _as_2d_float("features", features, None)
    n, nb = F.shape
    Y = _as_2d_float("targets", targets, n)
    n_out = Y.shape[1]
    if n == 0 or nb == 0 or n_out == 0:
        raise ValueError(
            f"fit_linear_radial: empty problem (features {F.shape}, targets {Y.shape})."
        )
    w = _check_weights(weights, n)
    ridge = float(ridge)
    if not np.isfinite(ridge) or ridge < 0:
        raise ValueError(f"fit_linear_radial: ridge must be a finite number >= 0; got {ridge}.")

    sw = np.sqrt(w)[:, None]
    A, B = sw * F, sw * Y
    sv = np.linalg.svd(A, compute_uv=False)
    tol = sv[0] * max(A.shape) * np.finfo(np.float64).eps if sv.size else 0.0
    rank = int(np.sum(sv > tol))
    if rank < nb and ridge == 0.0:
        raise ValueError(
            f"fit_linear_radial: the features have rank {rank} < n_basis = {nb} on these "
            f"{int(np.sum(w > 0))} weighted samples, so W is not unique. Sample more distinct "
            "distances (covering the whole range up to the cutoff) or pass ridge > 0."
        )
    if ridge > 0:
        A = np.vstack([A, np.sqrt(ridge) * np.eye(nb)])
        B = np.vstack([B, np.zeros((nb, n_out))])
    W = np.linalg.lstsq(A, B, rcond=None)[0]

    report = _quality(F, Y, W, w, rank, sv, ridge)
    return W, report


def _quality(F, Y, W, w, rank, sv, ridge) -> LinearFitReport:
    resid = F @ W - Y
    wsum = w.sum()
    n_out = Y.shape[1]
    mean = (w[:, None] * Y).sum(0) / wsum
    ss_res = (w[:, None] * resid**2).sum(0)
    ss_tot = (w[:, None] * (Y - mean) ** 2).sum(0)
    # An output constant over the samples has no variance to explain: R^2 is undefined (NaN)
    # rather than a misleading 1 or -inf.
    scale = np.maximum(np.abs(Y).max(0), 1e-300)
    const = ss_tot <= (1e-24 * scale**2 * wsum)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(const, np.nan, 1.0 - ss_res / np.where(const, 1.0, ss_tot))
    live = ~const
    r2_mean = float(np.mean(r2[live])) if np.any(live) else float("nan")
    r2_overall = (
        float(1.0 - ss_res[live].sum() / ss_tot[live].sum()) if np.any(live) else float("nan")
    )
    max_err = np.abs(resid[w > 0]).max(0)
    return LinearFitReport(
        r2_per_output=r2,
        r2_mean=r2_mean,
        r2_overall=r2_overall,
        max_abs_error_per_output=max_err,
        max_abs_error=float(max_err.max()),
        rmse=float(np.sqrt(ss_res.sum() / (wsum * n_out))),
        target_rms=float(np.sqrt((w[:, None] * Y**2).sum() / (wsum * n_out))),
        n_samples=F.shape[0],
        n_basis=F.shape[1],
        n_out=n_out,
        rank=rank,
        condition_number=float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf"),
        ridge=ridge,
    )


def linear_map_quality(features, targets, W, *, weights=None) -> LinearFitReport:
    """Quality of a given linear map ``W`` (fitted elsewhere, e.g. to a layer's outputs or
    fine-tuned) on ``features -> targets`` samples: the same :class:`LinearFitReport` figures as
    :func:`fit_linear_radial` reports for its own solution (``ridge`` is reported as 0).

    Args:
        features: ``(n_samples, n_basis)``; targets: ``(n_samples, n_out)``;
        W: ``(n_basis, n_out)``; weights: optional ``(n_samples,)`` non-negative.
    """
    F = _as_2d_float("features", features, None)
    Y = _as_2d_float("targets", targets, F.shape[0])
    Wm = _as_2d_float("W", W, None)
    if Wm.shape != (F.shape[1], Y.shape[1]):
        raise ValueError(
            f"linear_map_quality: W has shape {Wm.shape} but features have {F.shape[1]} "
            f"columns and targets {Y.shape[1]}: W must be (n_basis, n_out) = "
            f"({F.shape[1]}, {Y.shape[1]})."
        )
    w = _check_weights(weights, F.shape[0])
    sw = np.sqrt(w)[:, None]
    sv = np.linalg.svd(sw * F, compute_uv=False)
    tol = sv[0] * max(F.shape) * np.finfo(np.float64).eps if sv.size else 0.0
    return _quality(F, Y, Wm, w, int(np.sum(sv > tol)), sv, 0.0)


def mixture_distances(
    observed,
    n_samples: int,
    *,
    r_min: float,
    r_max: float,
    uniform_fraction: float = 0.25,
    seed: int = 0,
) -> np.ndarray:
    """Sample fitting distances: mostly the model's own distance distribution, plus a uniform part.

    A fit on observed neighbour distances alone is accurate where the model works but may be
    unconstrained at rare distances (compressed cells, the cutoff tail); mixing in a uniform
    component on ``[r_min, r_max]`` keeps the whole range covered.

    Args:
        observed: 1-D array of neighbour distances (Angstrom) from real structures; only those in
            ``[r_min, r_max]`` are used.
        n_samples: total number of distances returned.
        r_min, r_max: range in Angstrom (``r_max`` = the model's cutoff).
        uniform_fraction: share of samples drawn uniformly on ``[r_min, r_max]`` (0..1).
        seed: NumPy random seed (the result is reproducible).

    Returns:
        ``(n_samples,)`` float64 distances, sorted.
    """
    d = np.asarray(observed, dtype=np.float64).ravel()
    if not 0.0 <= uniform_fraction <= 1.0:
        raise ValueError(
            f"mixture_distances: uniform_fraction must be in [0, 1]; got {uniform_fraction}."
        )
    if not 0.0 <= r_min < r_max:
        raise ValueError(f"mixture_distances: need 0 <= r_min < r_max; got {r_min}, {r_max}.")
    d = d[np.isfinite(d) & (d >= r_min) & (d <= r_max)]
    n_uni = int(round(n_samples * uniform_fraction))
    n_obs = n_samples - n_uni
    if n_obs > 0 and d.size == 0:
        raise ValueError(
            f"mixture_distances: no observed distance lies in [{r_min}, {r_max}] A; pass "
            "neighbour distances of real structures or set uniform_fraction=1."
        )
    rng = np.random.default_rng(seed)
    parts = [rng.uniform(r_min, r_max, size=n_uni)]
    if n_obs > 0:
        parts.append(rng.choice(d, size=n_obs, replace=True))
    return np.sort(np.concatenate(parts))
