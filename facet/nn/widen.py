"""Widen a trained Facet model without changing what it computes (function-preserving growth).

Net2Net (Chen, Goodfellow and Shlens, ICLR 2016) grows a trained network into a wider one that
computes the same function, so training can go on with more capacity instead of starting again.
Facet's layers need their own rules, because every channel mixing is normalised by the fan-in
(``1/sqrt(C_in)``, :func:`facet.nn.linear.channel_linear`) and the grid mixer reads an RMS norm
over all channels (:func:`facet.nn.interaction.rms_norm`). With ``C -> C'`` channels and
``H -> H'`` mixer fields, ``g_C = sqrt(C'/C)`` and ``g_H = sqrt(H'/H)``:

* **New channels start at zero everywhere they are written**: embedding columns, the output
  columns of ``pre`` (so their messages vanish), of ``post`` and of the mixer's ``out_a``/``out_b``.
  The residual stream ``h`` therefore holds exactly the old channels plus zeros.
* **New channels are read with fresh random weights** (the rows of ``pre``, ``post``, ``lin_a``,
  ``lin_b`` and the readout that take them, and their radial weights). They multiply zeros now,
  so the function is unchanged, but their gradients are not zero: training moves the new
  channels off zero from the first step.
* **New mixer fields** (``H' > H``) are computed with random weights and read with zero rows of
  ``out_a``/``out_b``.
* **Old weights are rescaled** where the fan-in normalisation changed: by ``g_C`` in ``pre``,
  ``post`` and the readout, by ``g_H`` in ``out_a``/``out_b``. ``lin_a``/``lin_b`` keep theirs:
  the zero channels dilute the RMS norm by ``1/g_C``, which scales its output by ``g_C``, and the
  wider fan-in divides it out again.

The only difference left is the ``eps`` inside the RMS norm (``1e-6`` against the mean square of
the messages): relative changes of order ``1e-6`` and below, which the test measures in float64.
"""

from __future__ import annotations

import numpy as np

__all__ = ["widen_model"]


def _normal(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _grow(old, shape, rng, *, fill: str):
    """An array of ``shape`` with ``old`` in its leading corner and ``fill`` ("zero" or
    "normal") elsewhere."""
    new = np.zeros(shape, old.dtype) if fill == "zero" else _normal(rng, shape, old.dtype)
    new[tuple(slice(0, n) for n in old.shape)] = old
    return new


def _channel_linear(old, c_in, c_out, *, scale, rng, zero_cols=True):
    """``w[P, C_in, C_out]`` grown to ``(P, c_in, c_out)``: old block times ``scale``; new rows
    (inputs, zero at the start) random; new columns (outputs) zero unless ``zero_cols`` is
    False (then random)."""
    p, a, b = old.shape
    new = _normal(rng, (p, c_in, c_out), old.dtype)
    if zero_cols:
        new[:, :, b:] = 0
    new[:, :a, :b] = old * scale
    return new


def _fields(old, n_fields, h_old, h_new, c_out, *, scale, rng):
    """``out_a``/``out_b`` weights ``[P, n_fields * H, C]`` grown to ``[P, n_fields * H', C']``:
    the activation concatenates ``n_fields`` groups of ``H`` fields, so row ``f*H + k`` moves to
    ``f*H' + k``; rows of new fields and columns of new channels are zero."""
    p, _, c = old.shape
    new = np.zeros((p, n_fields * h_new, c_out), old.dtype)
    for f in range(n_fields):
        new[:, f * h_new:f * h_new + h_old, :c] = old[:, f * h_old:(f + 1) * h_old, :] * scale
    return new


def widen_model(model, channels: int, mixer_hidden: int | None = None, *, seed: int = 0):
    """A :class:`facet.nn.FacetModel` with ``channels`` channels and ``mixer_hidden`` grid fields
    (default: unchanged) that computes the same energies, forces and stress as ``model`` (see
    the module docstring for the rules and the one ``eps`` they leave). New weights that read the
    zero channels are drawn from ``seed``. Widths can only grow."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from .grid_mixing import GRID_ACTIVATIONS
    from .model import FacetModel

    cfg = model.config
    c, h = cfg.channels, cfg.mixer_hidden
    c2 = int(channels)
    h2 = int(mixer_hidden) if mixer_hidden is not None else h
    if c2 < c or h2 < h:
        raise ValueError(f"widen_model grows widths only: channels {c} -> {c2}, "
                         f"mixer_hidden {h} -> {h2}")
    new_cfg = cfg.replace(channels=c2, mixer_hidden=h2)
    target = nnx.eval_shape(lambda: FacetModel(new_cfg, rngs=nnx.Rngs(0)))
    old = jax.tree_util.tree_map(np.asarray, nnx.to_pure_dict(nnx.state(model)))
    rng = np.random.default_rng(seed)
    g_c = np.sqrt(c2 / c)
    g_h = np.sqrt(h2 / h)
    act = GRID_ACTIVATIONS[cfg.mixer_activation]
    u0 = jnp.zeros((1, 1))
    v0 = jnp.zeros((1, 1)) if cfg.pseudo else None
    n_nat = len(act.natural(u0, v0))
    n_pse = len(act.pseudo(u0, v0)) if cfg.pseudo else 0

    new = {
        "atomic_energies": old["atomic_energies"],
        "scale": old["scale"],
        "shift": old["shift"],
        "embedding": _grow(old["embedding"], (old["embedding"].shape[0], c2), rng, fill="zero"),
        "readout_w1": _grow(old["readout_w1"] * g_c, (c2, old["readout_w1"].shape[1]), rng,
                            fill="normal"),
        "readout_w2": old["readout_w2"],
        "blocks": {},
    }
    for i, blk in old["blocks"].items():
        radial = dict(blk["radial"]["layers"])
        last = max(radial)
        k, n = radial[last].shape
        per = n // c
        grown = _grow(radial[last].reshape(k, c, per), (k, c2, per), rng, fill="normal")
        radial[last] = grown.reshape(k, c2 * per)
        mixer = {
            "lin_a": {"w": _channel_linear(blk["mixer"]["lin_a"]["w"], c2, h2, scale=1.0,
                                           rng=rng, zero_cols=False)},
            "out_a": {"w": _fields(blk["mixer"]["out_a"]["w"], n_nat, h, h2, c2, scale=g_h,
                                   rng=rng)},
        }
        if "lin_b" in blk["mixer"] and blk["mixer"]["lin_b"] is not None:
            mixer["lin_b"] = {"w": _channel_linear(blk["mixer"]["lin_b"]["w"], c2, h2,
                                                   scale=1.0, rng=rng, zero_cols=False)}
            mixer["out_b"] = {"w": _fields(blk["mixer"]["out_b"]["w"], n_pse, h, h2, c2,
                                           scale=g_h, rng=rng)}
        new["blocks"][i] = {
            "alpha": blk["alpha"],
            "pre": {"w": _channel_linear(blk["pre"]["w"], c2, c2, scale=g_c, rng=rng)},
            "post": {"w": _channel_linear(blk["post"]["w"], c2, c2, scale=g_c, rng=rng)},
            "radial": {"layers": radial},
            "mixer": mixer,
        }
    state = nnx.state(target)
    want_shapes = jax.tree_util.tree_map(lambda x: tuple(x.shape), nnx.to_pure_dict(state))
    got_shapes = jax.tree_util.tree_map(lambda x: tuple(x.shape), new)
    if want_shapes != got_shapes:  # a layer this function does not know: fail, never guess
        raise ValueError(f"widen_model does not know every weight of this model: built "
                         f"{got_shapes}, the wider model has {want_shapes}")
    nnx.replace_by_pure_dict(
        state, jax.tree_util.tree_map(lambda a: jnp.asarray(a, new_cfg.dtype), new))
    nnx.update(target, state)
    return target
