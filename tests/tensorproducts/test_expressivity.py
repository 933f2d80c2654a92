"""Expressivity measures reproduce the known values of Xie et al. (ICML 2025).

Paths for s2_irreps(10) inputs and outputs of any parity: full CG 891, Gaunt 506.
Interactability (Jacobian rank in the linear-product-linear setting): 4L+1 for Gaunt and matrix
products with s2_irreps(L) inputs and s2_irreps(2L) outputs (vector-Gaunt: see _expected).
"""

from __future__ import annotations

import e3nn_jax as e3nn
import pytest

from tensorproducts.expressivity import any_parity_irreps, interactability, path_ranks


def _outputs(name, lmax):
    # vector-Gaunt's paths (l1 + l2 + l3 odd) land on the other parity class: 0o + 1e + 2o ...
    return e3nn.s2_irreps(lmax, p_val=-1 if name == "vector-gaunt-grid" else 1)


def _count(name, lmax):
    s2 = e3nn.s2_irreps(lmax)
    ranks = path_ranks(name, s2, s2, any_parity_irreps(2 * lmax))
    return sum(1 for r in ranks.values() if r), len(ranks), ranks


def test_gaunt_realises_506_of_891_paths_at_L10(x64):
    got, total, ranks = _count("gaunt-fourier", 10)
    assert (got, total) == (506, 891)
    # exactly the l1 + l2 + l3 even paths, each with full rank 2 l3 + 1 (3 samples saturate
    # at min(3, 2 l3 + 1))
    for (l1, _, l2, _, l3, _), r in ranks.items():
        assert (r > 0) == ((l1 + l2 + l3) % 2 == 0)
        if r:
            assert r == min(3, 2 * l3 + 1)


@pytest.mark.slow
def test_full_cg_realises_891_paths_at_L10(x64):
    assert _count("cg-dense", 10)[:2] == (891, 891)


def test_path_counts_at_L3(x64):
    # closed forms: all CG paths sum_{l1,l2} (2 min(l1,l2) + 1) = 44; even ones 30
    assert _count("cg-dense", 3)[:2] == (44, 44)
    assert _count("gaunt-fourier", 3)[:2] == (30, 44)
    assert _count("matrix", 3)[:2] == (44, 44)  # parity-aware matrix product: every CG path
    assert _count("so2", 3)[:2] == (44, 44)


def _expected(name, lmax):
    """4L+1 = (L+1) + (L+1) + (2L+1) weights minus two rescaling symmetries. vector-gaunt-grid
    takes scalar signals and uses their surface gradients; its paths need l1+l2+l3 odd, so the
    degree-0 input weights (no gradient) and the degree-0 and degree-2L output weights
    (unreachable) are inert: 4L+3-4-2 = 4L-3. The paper's 4L+1 for vector Gaunt does not hold
    for either form (the research code's VSH-input product gives 12L+1, docs/tensorproducts.md);
    what holds for all three is "active weights minus 2", asserted below."""
    return 4 * lmax - 3 if name == "vector-gaunt-grid" else 4 * lmax + 1


def _expected_inert(name, lmax):
    if name != "vector-gaunt-grid":
        return ()
    return (("in1", 0), ("in2", 0), ("out", 0), ("out", 2 * lmax))


@pytest.mark.parametrize("name", ["gaunt-fourier", "matrix", "vector-gaunt-grid"])
def test_interactability_at_L2(name, x64):
    # An unregistered variant fails here (KeyError from the registry), never skips.
    s2 = e3nn.s2_irreps(2)
    res = interactability(name, s2, s2, _outputs(name, 4), include_internal=False)
    assert res.rank == _expected(name, 2)
    assert res.num_weights == 3 + 3 + 5
    assert res.gap > 1e6  # a clear numerical rank
    # exactly the predicted weights are inert, and every active one counts except the 2 scalings
    assert res.inert == _expected_inert(name, 2)
    assert res.rank == res.num_weights - len(res.inert) - 2


def test_internal_path_weights_add_interactions(x64):
    # control: CG with per-path weights is more expressive than 4L+1 (14 paths at L=2)
    s2 = e3nn.s2_irreps(2)
    res = interactability("cg-dense", s2, s2, e3nn.s2_irreps(4), include_internal=True)
    assert res.rank > 4 * 2 + 1
    assert res.gap > 1e6


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gaunt-fourier", "matrix", "gaunt-grid", "vector-gaunt-grid"])
def test_interactability_at_L3_and_L4(name, x64):
    for lmax in (3, 4):
        s2 = e3nn.s2_irreps(lmax)
        res = interactability(name, s2, s2, _outputs(name, 2 * lmax), include_internal=False)
        assert res.rank == _expected(name, lmax)
        assert res.inert == _expected_inert(name, lmax)
