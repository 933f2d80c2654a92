"""Loss and metrics: known values, masks, and exact combination of sums across batches."""

from __future__ import annotations

from types import SimpleNamespace

import jax.numpy as jnp
import numpy as np
import pytest

from facet.data.batch import Graph, collate
from facet.train.config import LossSection
from facet.train.loss import LOSS_KINDS, combine_loss, error_sums, finalize_metrics, loss_sums


def _graph(n, key, energy, forces, stress, weight=1.0):
    rng = np.random.default_rng(n)
    return Graph(positions=rng.normal(size=(n, 3)), numbers=np.full(n, 14),
                 cell=5 * np.eye(3), pbc=np.ones(3, bool), senders=np.zeros(0, int),
                 receivers=np.zeros(0, int), shifts=np.zeros((0, 3)), energy=energy,
                 forces=forces, stress=stress, weight=weight, key=key)


def _pred(batch, energy, forces, stress):
    return SimpleNamespace(energy=jnp.asarray(energy), forces=jnp.asarray(forces),
                           stress=jnp.asarray(stress))


@pytest.fixture
def two_graphs():
    f1 = np.arange(6.0).reshape(2, 3) / 10
    g1 = _graph(2, "a/0", -4.0, f1, 0.01 * np.eye(3))
    g2 = _graph(3, "b/0", -9.0, None, None, weight=2.0)  # energy only
    return g1, g2


def test_known_values_mse(x64, two_graphs):
    g1, g2 = two_graphs
    b = collate([g1, g2], 8, 4, 4)
    pe = np.array([-3.0, -12.0, 5.0, 7.0])  # padding graphs get garbage that must not count
    pf = np.asarray(b.forces) + 0.5
    pf[5:] = np.nan  # padding nodes
    ps = np.asarray(b.stress) + 0.002
    cfg = LossSection(energy_kind="mse", forces_kind="mse", stress_kind="mse",
                      energy_weight=1.0, forces_weight=10.0, stress_weight=100.0)
    sums = loss_sums(_pred(b, pe, pf, ps), b, cfg)
    # energy per atom errors: g1 (-3 - -4)/2 = 0.5; g2 (-12 - -9)/3 = -1 with weight 2
    e_exp = (1 * 0.25 + 2 * 1.0) / 3
    f_exp = 0.25  # only g1's 2 atoms x 3 components, all errors 0.5
    s_exp = 0.002**2
    assert float(sums["energy"][0] / sums["energy"][1]) == pytest.approx(e_exp)
    assert float(sums["forces"][0] / sums["forces"][1]) == pytest.approx(f_exp)
    assert float(sums["stress"][0] / sums["stress"][1]) == pytest.approx(s_exp)
    total = combine_loss(sums, cfg)
    assert float(total) == pytest.approx(e_exp + 10 * f_exp + 100 * s_exp)
    m = finalize_metrics({k: np.asarray(v) for k, v in error_sums(_pred(b, pe, pf, ps), b).items()})
    assert m["energy_mae"] == pytest.approx(1e3 * (0.5 + 1.0) / 2)  # unweighted, meV/atom
    assert m["energy_rmse"] == pytest.approx(1e3 * np.sqrt((0.25 + 1.0) / 2))
    assert m["forces_mae"] == pytest.approx(500.0) and m["forces_count"] == 6
    assert m["stress_mae"] == pytest.approx(2.0) and m["stress_count"] == 9


def test_kinds_known_values():
    e = jnp.array([-0.3, 0.005, 2.0])
    np.testing.assert_allclose(LOSS_KINDS["mae"](e, 0.01), [0.3, 0.005, 2.0])
    np.testing.assert_allclose(LOSS_KINDS["mse"](e, 0.01), [0.09, 2.5e-5, 4.0], rtol=1e-6)
    np.testing.assert_allclose(LOSS_KINDS["huber"](e, 0.01),
                               [0.01 * (0.3 - 0.005), 0.5 * 0.005**2, 0.01 * (2.0 - 0.005)],
                               rtol=1e-6)


def test_sums_over_batches_equal_union(x64):
    """Metrics are sums and counts: two batches combine to exactly the union batch."""
    rng = np.random.default_rng(0)
    gs = [_graph(n, f"m{n}/0", -float(n), rng.normal(size=(n, 3)), rng.normal(size=(3, 3)))
          for n in (2, 3, 4, 5)]
    cfg = LossSection(energy_kind="huber", forces_kind="mae", stress_kind="mse", huber_delta=0.3)

    def pred_for(b):
        k = int(b.n_node[0])
        r = np.random.default_rng(k)
        return _pred(b, np.asarray(b.energy) + r.normal(size=b.energy.shape),
                     np.asarray(b.forces) + 0.1 * k, np.asarray(b.stress) - 0.2)

    b1, b2 = collate(gs[:2], 16, 4, 4), collate(gs[2:], 16, 4, 4)
    bu = collate(gs, 32, 8, 8)
    p1, p2 = pred_for(b1), pred_for(b2)
    # Predictions of the union: the same per-structure values.
    pu = _pred(bu, np.concatenate([p1.energy[:2], p2.energy[:2], np.zeros(4)]),
               np.concatenate([p1.forces[:5], p2.forces[:9], np.zeros((18, 3))]),
               np.concatenate([p1.stress[:2], p2.stress[:2], np.zeros((4, 3, 3))]))
    s1, s2, su = loss_sums(p1, b1, cfg), loss_sums(p2, b2, cfg), loss_sums(pu, bu, cfg)
    combined = {k: (s1[k][0] + s2[k][0], s1[k][1] + s2[k][1]) for k in s1}
    assert float(combine_loss(combined, cfg)) == pytest.approx(float(combine_loss(su, cfg)))
    # ... whereas a mean of per-batch losses differs (the counts differ)
    mean_of_means = 0.5 * (float(combine_loss(s1, cfg)) + float(combine_loss(s2, cfg)))
    assert abs(mean_of_means - float(combine_loss(su, cfg))) > 1e-6
    e1, e2, eu = error_sums(p1, b1), error_sums(p2, b2), error_sums(pu, bu)
    for k in eu:
        assert float(e1[k] + e2[k]) == pytest.approx(float(eu[k]))
