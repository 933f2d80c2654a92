"""The product with edge spherical harmonics (tensorproducts.edge): ``cg-dense``'s fused
``edge_kernel`` equals the plain reference of the contract in values, first and second
derivatives, with and without blocks of edges; the blocked reference of variants without a kernel
equals the plain one; the kernel is equivariant on its own."""

from __future__ import annotations

import contextlib

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import tensorproducts
import tensorproducts.edge as tp_edge
from tensorproducts import cg_dense_edge, cg_edge_rule, edge_vjp
from tensorproducts.edge import (
    CPU_EDGE_BLOCK,
    MIN_BLOCKED_EDGES,
    EdgeProduct,
    edge_block_size,
    edge_blocking,
)


def _natural(lmax):
    return e3nn.Irreps([(1, (l, (-1) ** l)) for l in range(lmax + 1)])


def _features(lmax, pseudo):
    pseudo_part = e3nn.Irreps([(1, (l, -((-1) ** l))) for l in range(lmax + 1)])
    return _natural(lmax) + pseudo_part if pseudo else _natural(lmax)


def _product(lmax, pseudo, first, name="cg-dense"):
    """The products of a Facet-like model: scalars (first block) or features in."""
    irreps_in = e3nn.Irreps("0e") if first else _features(lmax, pseudo)
    target = _features(lmax, pseudo)
    spec = tensorproducts.get(name)
    reach = {(p[4], p[5]) for p in spec.paths(irreps_in, _natural(lmax), target)}
    out = e3nn.Irreps([(1, ir) for _, ir in target if (ir.l, ir.p) in reach])
    return EdgeProduct(name, irreps_in, _natural(lmax), out)


def _inputs(prod, n_node=5, n_edge=11, channels=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    vec = jnp.asarray(rng.normal(size=(n_edge, 3)))
    x = jnp.asarray(rng.normal(size=(n_node, channels, prod.irreps_in.dim)))
    basis = jnp.asarray(rng.normal(size=(n_edge, k)))
    w = jnp.asarray(rng.normal(size=(k, channels, prod.num_weights)))
    senders = jnp.asarray(rng.integers(0, n_node, n_edge))
    receivers = jnp.asarray(rng.integers(0, n_node, n_edge))
    proj = jnp.asarray(rng.normal(size=(n_node, channels, prod.irreps_out.dim)))
    return (vec, x, basis, w), (senders, receivers, n_node), proj


def _sh(prod, vec):
    return e3nn.spherical_harmonics(prod.irreps_sh, vec, True, "component").array


def _loss(path, prod, graph, proj):
    def f(vec, x, basis, w):
        return jnp.sum(path(x, _sh(prod, vec), basis, w, *graph) * proj)

    return f


LAYOUTS = [
    pytest.param(lmax, pseudo, first, id=f"l{lmax}-{'pseudo' if pseudo else 'natural'}-{tag}")
    for lmax in (1, 2, 3)
    for pseudo in (False, True)
    for first, tag in ((True, "first"), (False, "hidden"))
]
NAMES = ("positions", "x", "basis", "weights")


@pytest.mark.parametrize("block", [0, 4], ids=["one-pass", "blocks-of-4"])
@pytest.mark.parametrize("lmax, pseudo, first", LAYOUTS)
def test_kernel_equals_reference_with_gradients(lmax, pseudo, first, block, x64):
    prod = _product(lmax, pseudo, first)
    assert prod.spec.edge_kernel is cg_dense_edge.cg_dense_edge_kernel
    args, graph, proj = _inputs(prod)
    out_ref = prod.reference(args[1], _sh(prod, args[0]), *args[2:], *graph)
    assert float(jnp.max(jnp.abs(out_ref))) > 1.0  # non-trivial outputs
    with edge_blocking(block):
        fast = jax.jit(jax.value_and_grad(_loss(prod, prod, graph, proj), argnums=(0, 1, 2, 3)))
        (v_f, g_f), out_f = fast(*args), prod(args[1], _sh(prod, args[0]), *args[2:], *graph)
    ref = jax.jit(jax.value_and_grad(_loss(prod.reference, prod, graph, proj), (0, 1, 2, 3)))
    v_r, g_r = ref(*args)
    np.testing.assert_allclose(out_f, out_ref, rtol=0, atol=1e-12)
    assert abs(float(v_f - v_r)) <= 1e-12 * max(1.0, abs(float(v_r)))
    for name, a, b in zip(NAMES, g_f, g_r, strict=True):
        assert float(jnp.max(jnp.abs(b))) > 1e-3, name  # the gradient is not trivially zero
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=name)


def _second_order(path, prod, graph, proj, args):
    """Gradients of a function of the first derivatives of ``_loss`` (what a force loss needs)."""
    f = _loss(path, prod, graph, proj)

    def g(*a):
        gv, gx, gb, gw = jax.grad(f, argnums=(0, 1, 2, 3))(*a)
        return jnp.sum(gv**2) + jnp.sum(jnp.sin(gx)) + jnp.sum(gb**3) + jnp.sum(gw * gw * gw)

    return jax.jit(jax.grad(g, argnums=(0, 1, 2, 3)))(*args)


@pytest.mark.parametrize("block", [0, 4], ids=["one-pass", "blocks-of-4"])
@pytest.mark.parametrize(
    "lmax, pseudo, first", [(1, True, False), (2, False, False), (3, True, True), (3, True, False)]
)
def test_kernel_second_order_equals_reference(lmax, pseudo, first, block, x64):
    """The kernel's hand-written reverse rule is itself differentiable: the gradient of a
    function of first derivatives (what a force loss needs) matches the reference."""
    prod = _product(lmax, pseudo, first)
    args, graph, proj = _inputs(prod, seed=5)

    def second(path):
        return _second_order(path, prod, graph, proj, args)

    with edge_blocking(block):
        fast = second(prod)
    for name, a, b in zip(NAMES, fast, second(prod.reference), strict=True):
        assert float(jnp.max(jnp.abs(b))) > 1e-3, name
        scale = max(1.0, float(jnp.max(jnp.abs(b))))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * scale, err_msg=name)


@pytest.mark.parametrize("name", ["so2", "gaunt-grid"])
def test_blocked_reference_of_variants_without_a_kernel(name, x64):
    """Variants without a kernel (one with internal weights, one weight-free with the
    factorised modulation) run the reference over blocks of edges: the same function."""
    prod = _product(2, False, False, name=name)
    assert prod.spec.edge_kernel is None
    args, graph, proj = _inputs(prod, seed=2)
    sh = _sh(prod, args[0])
    with edge_blocking(4):
        blocked = jax.jit(lambda *a: prod(*a, *graph))(args[1], sh, *args[2:])
    plain = prod.reference(args[1], sh, *args[2:], *graph)
    assert float(jnp.max(jnp.abs(plain))) > 1e-1
    np.testing.assert_allclose(blocked, plain, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["so2", "gaunt-grid"])
def test_blocked_second_order_of_variants_without_a_kernel(name, x64):
    """Second order through the blocked pass (11 edges in blocks of 4: the last block padded)
    equals the plain reference. The rows padding the last block must not feed the product
    degenerate inputs: zero harmonics put ``so2``'s edge frame at ``atan2(0, 0)``, whose
    second derivative is NaN even where the message is zero."""
    prod = _product(2, False, False, name=name)
    args, graph, proj = _inputs(prod, seed=4)

    def second(path):
        return _second_order(path, prod, graph, proj, args)

    with edge_blocking(4):
        blocked = second(prod)
    for key, a, b in zip(NAMES, blocked, second(prod.reference), strict=True):
        assert float(jnp.max(jnp.abs(b))) > 1e-3, key
        scale = max(1.0, float(jnp.max(jnp.abs(b))))
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * scale, err_msg=key)


def test_second_order_memory_does_not_keep_the_blocks_intermediates(x64):
    """Training differentiates the force backward pass again. Plain autodiff of the blocked
    scan kept about one ``[E, D_out, C]`` array of the recomputed blocks for it (XLA's
    compile-time temporaries grew by 1.15 such arrays per edge from 1,024 to 4,096 edges, in
    64-edge blocks); the custom reverse pass keeps a block's inputs only (0.28)."""
    prod = _product(3, True, False)
    channels, temps = 16, {}
    for n_edge in (1024, 4096):
        args, graph, proj = _inputs(prod, n_node=64, n_edge=n_edge, channels=channels, seed=1)
        f = _loss(prod, prod, graph, proj)

        def g(*a, f=f):
            gv, gx, _, gw = jax.grad(f, argnums=(0, 1, 2, 3))(*a)
            return jnp.sum(gv**2) + jnp.sum(gx**2) + jnp.sum(gw**2)

        with edge_blocking(64):
            compiled = jax.jit(jax.grad(g, argnums=(0, 1, 2, 3))).lower(*args).compile()
        analysis = compiled.memory_analysis()
        if analysis is None:
            pytest.skip("no compile-time memory analysis on this backend")
        temps[n_edge] = analysis.temp_size_in_bytes
    per_edge = (temps[4096] - temps[1024]) / 3072
    message_row = prod.irreps_out.dim * channels * 8  # one edge's [D_out, C] in float64
    assert per_edge < 0.5 * message_row, (temps, message_row)


@pytest.mark.parametrize("det", [1, -1], ids=["rotation", "rotoinversion"])
def test_kernel_is_equivariant(det, x64):
    """out(D_in x, Y(R r)) = D_out out(x, Y(r)) for proper and improper R."""
    prod = _product(3, True, first=False)
    (vec, x, basis, w), graph, _ = _inputs(prod, seed=3)
    rot = det * Rotation.random(random_state=7).as_matrix()
    d_in = jnp.asarray(prod.irreps_in.D_from_matrix(jnp.asarray(rot)))
    d_out = jnp.asarray(prod.irreps_out.D_from_matrix(jnp.asarray(rot)))
    out = prod(x, _sh(prod, vec), basis, w, *graph)
    out_rot = prod(x @ d_in.T, _sh(prod, vec @ rot.T), basis, w, *graph)
    np.testing.assert_allclose(out_rot, out @ d_out.T, rtol=0, atol=1e-12)
    assert float(jnp.max(jnp.abs(out_rot - out))) > 1e-2  # the rotation did act


def test_plan_rejects_unreachable_output():
    with pytest.raises(ValueError, match="unreachable"):
        cg_dense_edge.cg_edge_plan("0e", "0e + 1o", "0e + 2e")


def test_edge_block_choice():
    on_cpu = jax.default_backend() == "cpu"
    assert edge_block_size(MIN_BLOCKED_EDGES - 8) == 0  # small graphs: one pass
    assert edge_block_size(4 * MIN_BLOCKED_EDGES) == (CPU_EDGE_BLOCK if on_cpu else 0)
    # messages per edge: facet-s (9 irreps x 72 channels) gets 64, facet-m (32 x 96) 16, never
    # fewer; small messages keep CPU_EDGE_BLOCK
    assert edge_block_size(4096, 9 * 72 * 4) == (64 if on_cpu else 0)
    assert edge_block_size(4096, 9 * 72 * 2) == (CPU_EDGE_BLOCK if on_cpu else 0)
    assert edge_block_size(4096, 32 * 96 * 4) == (16 if on_cpu else 0)
    assert edge_block_size(4096, 1 << 30) == (16 if on_cpu else 0)
    with edge_blocking(128):
        assert edge_block_size(4096, 32 * 96 * 4) == 128  # an override is taken as it is
    with edge_blocking(0):
        assert edge_block_size(10_000) == 0
    with edge_blocking(32):
        assert edge_block_size(100) == 32
        assert edge_block_size(32) == 0  # one block would be the whole pass
    assert edge_block_size(100) == 0  # the override ends with its block
    with pytest.raises(ValueError, match="block"):
        with edge_blocking(-1):
            pass


def test_trace_toggles_route_the_pass_and_keep_its_derivatives(x64, monkeypatch):
    """``edge_vjp("autodiff")`` differentiates the blocked pass through the plain scan instead of
    the custom reverse pass, ``cg_edge_rule("paths")`` traces cg-dense's per-path product; both
    give the default's second-order gradients to 1e-12."""
    prod = _product(1, True, False)
    args, graph, proj = _inputs(prod, seed=3)
    calls = {"custom": 0, "paths": 0}
    custom, paths = tp_edge._blocked_sum, cg_dense_edge.cg_edge_product_paths

    def counted(key, fn):
        def wrapped(*a):
            calls[key] += 1
            return fn(*a)

        return wrapped

    monkeypatch.setattr(tp_edge, "_blocked_sum", counted("custom", custom))
    monkeypatch.setattr(cg_dense_edge, "cg_edge_product_paths", counted("paths", paths))
    results = {}
    for name, toggle in [("default", contextlib.nullcontext()),
                         ("autodiff", edge_vjp("autodiff")), ("paths", cg_edge_rule("paths"))]:
        before = dict(calls)
        with edge_blocking(4), toggle:
            results[name] = _second_order(prod, prod, graph, proj, args)
        used = {k: calls[k] > before[k] for k in calls}
        assert used == {"custom": name != "autodiff", "paths": name == "paths"}, name
    for name in ("autodiff", "paths"):
        for label, a, b in zip(NAMES, results[name], results["default"], strict=True):
            assert float(jnp.max(jnp.abs(b))) > 1e-3, label
            scale = max(1.0, float(jnp.max(jnp.abs(b))))
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * scale, err_msg=f"{name} {label}")


@pytest.mark.parametrize("toggle, var, default, other", [
    (edge_vjp, tp_edge._VJP_RULE, "custom", "autodiff"),
    (cg_edge_rule, cg_dense_edge._RULE, "closed", "paths"),
], ids=["edge_vjp", "cg_edge_rule"])
def test_trace_toggles_restore_the_previous_value(toggle, var, default, other):
    """Each toggle ends with its ``with`` block (nested ones too), also on an exception, and
    refuses an unknown rule."""
    assert var.get() == default
    with toggle(other):
        assert var.get() == other
        with toggle(default):
            assert var.get() == default
        assert var.get() == other
    assert var.get() == default
    with pytest.raises(RuntimeError, match="inside"):
        with toggle(other):
            raise RuntimeError("inside")
    assert var.get() == default
    with pytest.raises(ValueError, match="rule"):
        with toggle("neither"):
            pass
    assert var.get() == default
