"""cg-dense and cg-sparse: path-by-path equality with e3nn.tensor_product, selection rule."""

from __future__ import annotations

import itertools

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tensorproducts import _irreps
from tensorproducts.cg_dense import cg_dense
from tensorproducts.cg_sparse import cg_sparse, nonzero_pattern

IR1, IR2 = "0e + 1o + 1e + 2e", "0o + 1o + 2e + 2o"
OUT = "0e + 0o + 1e + 1o + 2e + 2o + 3e + 3o + 4e + 4o"


@pytest.mark.parametrize("variant", [cg_dense, cg_sparse])
def test_each_path_equals_e3nn_tensor_product(variant, x64):
    """One-hot per-path weights isolate each path; it equals e3nn's block for that path."""
    x = e3nn.normal(IR1, jax.random.PRNGKey(0), (5,), dtype=jnp.float64)
    y = e3nn.normal(IR2, jax.random.PRNGKey(1), (5,), dtype=jnp.float64)
    out = e3nn.Irreps(OUT)
    paths = _irreps.cg_paths(x.irreps, y.irreps, out)
    ref = e3nn.tensor_product(x, y, filter_ir_out=out, regroup_output=False)
    # e3nn emits one block per path, looping over ir1, ir2 and ir1 * ir2, then sorts the blocks
    # stably by output irrep: rebuild that order to key its blocks by path.
    keys = [
        (ir1.l, ir1.p, ir2.l, ir2.p, ir3.l, ir3.p)
        for (_, ir1), (_, ir2) in itertools.product(x.irreps, y.irreps)
        for ir3 in ir1 * ir2
        if ir3 in out
    ]
    order = sorted(range(len(keys)), key=lambda i: (e3nn.Irrep(keys[i][4], keys[i][5]), i))
    ref_blocks = {keys[i]: ch[..., 0, :] for i, ch in zip(order, ref.chunks, strict=True)}
    assert set(ref_blocks) == set(paths)
    fn = jax.jit(lambda w: variant(x, y, out, w).array)
    for k, path in enumerate(paths):
        z = e3nn.IrrepsArray(out, fn(jnp.eye(len(paths))[k]))
        ir3 = e3nn.Irrep(path[4], path[5])
        got = z.chunks[[ir for _, ir in out].index(ir3)][..., 0, :]
        np.testing.assert_allclose(got, ref_blocks[path], atol=1e-13, err_msg=str(path))


def test_sparse_equals_dense_at_higher_degree(x64):
    ir = e3nn.s2_irreps(5) + e3nn.s2_irreps(2, p_val=-1)
    x = e3nn.normal(ir.sort().irreps, jax.random.PRNGKey(2), (3,), dtype=jnp.float64)
    y = e3nn.normal(e3nn.s2_irreps(3), jax.random.PRNGKey(3), (3,), dtype=jnp.float64)
    out = _irreps.reachable_irreps(x.irreps, y.irreps)
    n = len(_irreps.cg_paths(x.irreps, y.irreps, out))
    w = jax.random.normal(jax.random.PRNGKey(4), (3, n), dtype=jnp.float64)
    a = jax.jit(lambda x, y, w: cg_sparse(x, y, out, w).array)(x, y, w)
    b = jax.jit(lambda x, y, w: cg_dense(x, y, out, w).array)(x, y, w)
    np.testing.assert_allclose(a, b, atol=1e-12 * float(jnp.max(jnp.abs(b))))


def test_real_basis_selection_rule():
    """Non-zero real CG entries satisfy |m3| = |m1| + |m2| or ||m1| - |m2||, and the rule is sharp
    enough to cut the work: at (6, 6, 6) under 1/4 of the dense entries are non-zero."""
    for l1, l2 in itertools.product(range(6), range(6)):
        for l3 in range(abs(l1 - l2), l1 + l2 + 1):
            for i, j, k in nonzero_pattern(l1, l2, l3):
                a, b, c = abs(i - l1), abs(j - l2), abs(k - l3)
                assert c in (a + b, abs(a - b)), (l1, l2, l3, i, j, k)
    assert len(nonzero_pattern(6, 6, 6)) < 13**3 / 4


def test_bad_inputs_are_named():
    x = e3nn.zeros("2x1o", ())
    y = e3nn.zeros("1o", ())
    with pytest.raises(ValueError, match="cg-dense: x must have multiplicity 1"):
        cg_dense(x, y, "0e")
    with pytest.raises(ValueError, match=r"cg-sparse: weights must have shape batch \+ \(1,\)"):
        cg_sparse(e3nn.zeros("1o", ()), y, "0e", jnp.ones(3))


@pytest.mark.parametrize("variant", [cg_dense, cg_sparse])
def test_shared_edge_input_equals_materialised_broadcast(variant, x64):
    """The model's layout: x[E, C], y[E, 1] (edge harmonics shared by channels), weights[E, C].
    The shared-input contraction (y with the CG tensor first) equals the product on an
    explicitly broadcast y, and the result is equivariant under an improper rotation."""
    ir = e3nn.s2_irreps(3)
    x = e3nn.normal(ir, jax.random.PRNGKey(5), (4, 6), dtype=jnp.float64)
    vec = jax.random.normal(jax.random.PRNGKey(6), (4, 1, 3), dtype=jnp.float64)
    y = e3nn.spherical_harmonics(ir, vec, normalize=True)
    out = e3nn.s2_irreps(3) + e3nn.s2_irreps(3, p_val=-1)
    out = out.sort().irreps
    n = len(_irreps.cg_paths(ir, ir, out))
    w = jax.random.normal(jax.random.PRNGKey(7), (4, 6, n), dtype=jnp.float64)
    f = jax.jit(lambda x, y, w: variant(x, y, out, w).array)
    z = f(x, y, w)
    ref = f(x, y.broadcast_to((4, 6, ir.dim)), w)  # no shared axis left: the plain path
    np.testing.assert_allclose(z, ref, atol=1e-13 * float(jnp.max(jnp.abs(ref))))
    rot = -e3nn.rand_matrix(jax.random.PRNGKey(8), (), dtype=jnp.float64)
    zr = f(x.transform_by_matrix(rot), y.transform_by_matrix(rot), w)
    expect = e3nn.IrrepsArray(out, z).transform_by_matrix(rot).array
    np.testing.assert_allclose(zr, expect, atol=1e-12 * float(jnp.max(jnp.abs(z))))


@pytest.mark.parametrize(
    "ir1, ir2, out",
    [
        ("1o", "1o", "1e"),  # feature-major (tensorproducts.cg_dense.feature_major)
        ("1o", "1o", "0e + 1e + 2e"),  # feature-major, not narrow
        ("2e", "2e", "2e"),  # feature-major
        ("3o", "3o", "3e"),
        ("3o", "2e + 1o", "3o"),
        ("4e", "4e", "0e + 2e"),
    ],
)
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
def test_cg_dense_x_first_branch_equals_e3nn(ir1, ir2, out, weighted, x64):
    """Narrow outputs take the x-first contraction (tensorproducts.cg_dense.x_first), tiny ones
    its feature-major form (feature_major); both give e3nn.tensor_product's blocks (weighted:
    each path scaled by its weight), with weights broadcast over the batch."""
    from tensorproducts.cg_dense import _fused_plan, feature_major, x_first

    x = e3nn.normal(ir1, jax.random.PRNGKey(2), (3, 4), dtype=jnp.float64)
    # y as large as x: a y broadcast over x's axes would take the shared-y path instead
    y = e3nn.normal(ir2, jax.random.PRNGKey(3), (3, 4), dtype=jnp.float64)
    out = e3nn.Irreps(out)
    big = _fused_plan(str(x.irreps), str(y.irreps), str(out), weighted)[0]
    d1, cols = x.irreps.dim, big.shape[1]
    assert x_first(d1, cols) or feature_major(d1, y.irreps.dim, cols)  # a branch under test
    paths = _irreps.cg_paths(x.irreps, y.irreps, out)
    w = jnp.asarray(np.random.default_rng(4).normal(size=len(paths))) if weighted else None
    got = cg_dense(x, y, out, w)
    yb = y
    ref_blocks = {}
    for k, (l1, p1, l2, p2, l3, p3) in enumerate(paths):
        xs = x.filter(keep=[e3nn.Irrep(l1, p1)])
        ys = yb.filter(keep=[e3nn.Irrep(l2, p2)])
        blk = e3nn.tensor_product(xs, ys, filter_ir_out=[e3nn.Irrep(l3, p3)]).array
        blk = blk * (w[k] if weighted else 1.0)
        key = e3nn.Irrep(l3, p3)
        ref_blocks[key] = ref_blocks.get(key, 0.0) + blk
    ref = jnp.concatenate([ref_blocks[ir] for _, ir in out], axis=-1)
    assert float(jnp.max(jnp.abs(ref))) > 0.1
    np.testing.assert_allclose(got.array, ref, rtol=0, atol=1e-12)
