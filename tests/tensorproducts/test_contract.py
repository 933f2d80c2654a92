"""The tensor-product contract, checked for every entry of ``tensorproducts.REGISTRY``.

For each variant and two input settings (ordinary parities, and pseudo-parity inputs):

* O(3) equivariance in float64: a proper rotation and an improper one (rotation times inversion),
  to ``spec.tolerance`` relative to the output scale;
* agreement with ``cg-dense`` weighted per path by the variant's declared normalisation
  (``spec.extra["cg_weights"](irreps1, irreps2, irreps_out)`` if given, else
  ``spec.extra["normalisation"](l1, l2, l3)`` per path); for per-path-weighted variants also with
  random weights; the declared ``paths`` cover exactly the paths with non-zero normalisation;
* finite, non-zero gradients under ``jax.jit``;
* float32 in -> float32 out, float64 in -> float64 out;
* broadcasting of leading shapes: ``(2, 1) x (1, 3) -> (2, 3)`` equals the element-by-element
  products.

Variants with ``requires_sh_input`` get ``y`` = spherical harmonics of random unit vectors.
"""

from __future__ import annotations

import functools

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tensorproducts
from tensorproducts import _irreps

CASES = {
    # ordinary parities p = (-1)^l: both symmetric (even l1+l2+l3) and antisymmetric paths
    "s2": ("0e + 1o + 2e", "0e + 1o + 2e", "0e + 0o + 1o + 1e + 2e + 2o + 3o + 3e + 4e"),
    # pseudo-parity irreps in both inputs: classes mix
    "pseudo": ("0o + 1e + 1o + 2o", "0e + 1o + 1e", "0e + 0o + 1e + 1o + 2e + 2o + 3e + 3o"),
}
SH_IRREPS = "0e + 1o + 2e"  # y for variants that need spherical-harmonic input

VARIANTS = sorted(tensorproducts.REGISTRY)


def _inputs(spec, case, key, lead1=(3,), lead2=(3,), dtype=jnp.float64):
    ir1, ir2, out = CASES[case]
    k1, k2 = jax.random.split(key)
    x = e3nn.normal(ir1, k1, lead1, dtype=dtype)
    if spec.requires_sh_input:
        vec = jax.random.normal(k2, lead2 + (3,), dtype=dtype)
        y = e3nn.spherical_harmonics(SH_IRREPS, vec, normalize=True)
    else:
        y = e3nn.normal(ir2, k2, lead2, dtype=dtype)
    return x, y, e3nn.Irreps(out)


def _random_weights(spec, x, y, out, key, lead=()):
    n = spec.num_weights(x.irreps, y.irreps, out)
    if n == 0:
        return None
    return jax.random.normal(key, lead + (n,), dtype=x.dtype)


@functools.cache
def _jitted(name: str, out: str):
    spec = tensorproducts.REGISTRY[name]
    return jax.jit(lambda x, y, w=None: spec.apply(x, y, e3nn.Irreps(out), w))


def _cg_reference_weights(spec, x, y, out) -> np.ndarray:
    if "cg_weights" in spec.extra:
        return np.asarray(spec.extra["cg_weights"](x.irreps, y.irreps, out))
    norm = spec.extra.get("normalisation")
    assert norm is not None, (
        f"{spec.name}: declare extra['normalisation'](l1, l2, l3) or extra['cg_weights'] so the "
        "contract test can compare it with cg-dense"
    )
    return np.array([norm(p[0], p[2], p[4]) for p in _irreps.cg_paths(x.irreps, y.irreps, out)])


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", VARIANTS)
def test_equivariance_rotation_and_inversion(name, case, x64):
    spec = tensorproducts.REGISTRY[name]
    x, y, out = _inputs(spec, case, jax.random.PRNGKey(1))
    w = _random_weights(spec, x, y, out, jax.random.PRNGKey(2), (3,))
    f = _jitted(name, str(out))
    z = f(x, y, w)
    assert z.irreps == out and z.dtype == jnp.float64
    scale = float(jnp.max(jnp.abs(z.array)))
    assert scale > 1e-3, f"{name}: output is (almost) zero on case {case}"
    rot = e3nn.rand_matrix(jax.random.PRNGKey(3), (), dtype=jnp.float64)
    for r in (rot, -rot):  # proper rotation, then rotation composed with inversion
        zr = f(x.transform_by_matrix(r), y.transform_by_matrix(r), w)
        err = float(jnp.max(jnp.abs(zr.array - z.transform_by_matrix(r).array))) / scale
        assert err < spec.tolerance, f"{name} {case} det={np.linalg.det(r):+.0f}: error {err:.2e}"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", VARIANTS)
def test_agrees_with_cg_dense(name, case, x64):
    spec = tensorproducts.REGISTRY[name]
    x, y, out = _inputs(spec, case, jax.random.PRNGKey(4))
    ref_w = _cg_reference_weights(spec, x, y, out)
    paths = _irreps.cg_paths(x.irreps, y.irreps, out)
    declared = set(spec.paths(x.irreps, y.irreps, out))
    assert declared <= set(paths), f"{name}: declares paths that violate CG selection rules"
    used = {p for p, v in zip(paths, ref_w, strict=True) if abs(v) > 1e-12}
    assert used <= declared, f"{name}: normalisation non-zero on undeclared paths {used - declared}"
    assert used, f"{name}: shares no path with cg-dense on case {case}"
    z = _jitted(name, str(out))(x, y)
    ref = _jitted("cg-dense", str(out))(x, y, jnp.asarray(ref_w))
    scale = float(jnp.max(jnp.abs(ref.array)))
    err = float(jnp.max(jnp.abs(z.array - ref.array))) / scale
    assert err < max(spec.tolerance, 1e-12), f"{name} vs cg-dense on {case}: {err:.2e}"
    if spec.weight_structure == "path":
        w = _random_weights(spec, x, y, out, jax.random.PRNGKey(5), (3,))
        zw = _jitted(name, str(out))(x, y, w)
        refw = _jitted("cg-dense", str(out))(x, y, w * jnp.asarray(ref_w))
        err = float(jnp.max(jnp.abs(zw.array - refw.array))) / scale
        assert err < max(spec.tolerance, 1e-12), f"{name} weighted vs cg-dense: {err:.2e}"


@pytest.mark.parametrize("name", VARIANTS)
def test_jit_gradients_are_finite(name, x64):
    spec = tensorproducts.REGISTRY[name]
    x, y, out = _inputs(spec, "pseudo", jax.random.PRNGKey(6))
    w = _random_weights(spec, x, y, out, jax.random.PRNGKey(7), (3,))

    def loss(xa, ya, w):
        z = spec.apply(e3nn.IrrepsArray(x.irreps, xa), e3nn.IrrepsArray(y.irreps, ya), out, w)
        return jnp.sum(jnp.sin(z.array))

    argnums = (0,) if spec.requires_sh_input else (0, 1)
    grads = jax.jit(jax.grad(loss, argnums=argnums))(x.array, y.array, w)
    for g in grads:
        assert bool(jnp.all(jnp.isfinite(g))), f"{name}: non-finite gradient"
        assert float(jnp.max(jnp.abs(g))) > 1e-6, f"{name}: zero gradient"


@pytest.mark.parametrize("name", VARIANTS)
def test_float32_stays_float32(name):
    spec = tensorproducts.REGISTRY[name]
    x, y, out = _inputs(spec, "s2", jax.random.PRNGKey(8), dtype=jnp.float32)
    w = _random_weights(spec, x, y, out, jax.random.PRNGKey(9), (3,))
    z = _jitted(name, str(out))(x, y, w)
    assert z.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(z.array)))


@pytest.mark.parametrize("name", VARIANTS)
def test_float64_stays_float64(name, x64):
    spec = tensorproducts.REGISTRY[name]
    x, y, out = _inputs(spec, "s2", jax.random.PRNGKey(8), dtype=jnp.float64)
    w = _random_weights(spec, x, y, out, jax.random.PRNGKey(9), (3,))
    assert _jitted(name, str(out))(x, y, w).dtype == jnp.float64


@pytest.mark.parametrize("name", VARIANTS)
def test_broadcasting_over_leading_shapes(name, x64):
    spec = tensorproducts.REGISTRY[name]
    x, y, out = _inputs(spec, "pseudo", jax.random.PRNGKey(10), lead1=(2, 1), lead2=(1, 3))
    w = _random_weights(spec, x, y, out, jax.random.PRNGKey(11), (3,))  # broadcasts to (2, 3)
    f = _jitted(name, str(out))
    z = f(x, y, w)
    assert z.shape == (2, 3, out.dim)
    for i in range(2):
        for j in range(3):
            wij = None if w is None else w[j]
            zij = f(x[i, 0], y[0, j], wij)
            np.testing.assert_allclose(z.array[i, j], zij.array, rtol=1e-10, atol=1e-12)
