"""E0 least squares, scale/shift, learning-rate schedule, EMA and weight-decay mask."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from facet.data.batch import Graph
from facet.train.config import OptimSection
from facet.train.e0 import fit_atomic_energies, fit_new_atomic_energies, fit_scale_shift
from facet.train.optim import ema_update, make_optimizer, make_schedule


def _g(numbers, energy, forces=None, key="x"):
    n = len(numbers)
    return Graph(np.zeros((n, 3)), np.asarray(numbers), np.eye(3), np.ones(3, bool),
                 np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3)), energy=energy,
                 forces=forces, key=key)


def test_e0_exact_recovery_and_absent_elements():
    rng = np.random.default_rng(0)
    true = {1: -3.4, 8: -4.9, 26: -8.3}
    graphs = []
    for _ in range(30):
        nums = rng.choice(list(true), int(rng.integers(1, 9)))
        graphs.append(_g(nums, float(sum(true[z] for z in nums))))
    graphs.append(_g([8, 8], None))  # unlabelled: ignored
    e0 = fit_atomic_energies(graphs)
    for z, v in true.items():
        assert e0[z] == pytest.approx(v, abs=1e-10)
    mask = np.ones(119, bool)
    mask[list(true)] = False
    assert np.all(e0[mask] == 0)


def test_e0_least_squares_matches_normal_equations():
    rng = np.random.default_rng(1)
    graphs = [_g(rng.choice([3, 9], int(rng.integers(2, 6))), float(rng.normal(-10, 2)))
              for _ in range(25)]
    e0 = fit_atomic_energies(graphs)
    c = np.array([[np.sum(g.numbers == 3), np.sum(g.numbers == 9)] for g in graphs], float)
    e = np.array([g.energy for g in graphs])
    np.testing.assert_allclose(e0[[3, 9]], np.linalg.solve(c.T @ c, c.T @ e), rtol=1e-10)


def test_new_element_e0s_are_fitted_with_the_others_held():
    """Held E0s off the data's own least squares (a trained model's): the new elements' E0s
    are the least-squares solution given the held ones, checked against a dense solve; the
    held E0s do not move; structures without a new element do not matter."""
    rng = np.random.default_rng(2)
    true = {1: -3.4, 8: -4.9, 11: -1.3, 17: -1.8}
    graphs = []
    for _ in range(40):
        nums = rng.choice(list(true), int(rng.integers(1, 9)))
        graphs.append(_g(nums, float(sum(true[z] for z in nums) + rng.normal(0, 0.05))))
    held = np.zeros(119)
    held[1], held[8] = -3.5, -4.8  # not the data's optimum
    e0 = fit_new_atomic_energies(graphs, held, [11, 17])
    assert (e0[1], e0[8]) == (-3.5, -4.8)
    assert np.count_nonzero(e0) == 4
    c = np.array([[np.sum(g.numbers == z) for z in (1, 8, 11, 17)] for g in graphs], float)
    r = np.array([g.energy for g in graphs]) - c[:, :2] @ [-3.5, -4.8]
    want = np.linalg.lstsq(c[:, 2:], r, rcond=None)[0]
    np.testing.assert_allclose(e0[[11, 17]], want, rtol=1e-10)
    # without new elements, nothing changes
    np.testing.assert_array_equal(fit_new_atomic_energies(graphs, held, []), held)


def test_e0_errors():
    with pytest.raises(ValueError, match="no training structure has an energy"):
        fit_atomic_energies([_g([1], None)])
    with pytest.raises(ValueError, match="non-finite energy in structure bad"):
        fit_atomic_energies([_g([1], float("nan"), key="bad")])


def test_scale_shift_known_values():
    e0 = np.zeros(119)
    e0[1] = -1.0
    f = np.array([[3.0, 0, 0], [0, 4.0, 0]])
    graphs = [_g([1, 1], -2.0 + 0.2, forces=f), _g([1], -1.0 - 0.1)]
    scale, shift = fit_scale_shift(graphs, e0)
    assert shift == pytest.approx((0.1 - 0.1) / 2)
    assert scale == pytest.approx(np.sqrt(25.0 / 6))
    scale, _ = fit_scale_shift([_g([1, 1], -1.8), _g([1], -1.1)], e0)  # no forces
    assert scale == pytest.approx(np.std([0.1, -0.1]))


def test_schedule_warmup_peak_and_end():
    cfg = OptimSection(lr=1e-2, warmup_steps=10, schedule="cosine", final_lr_factor=0.1)
    s = make_schedule(cfg, 110)
    assert float(s(0)) == pytest.approx(1e-2 / 11)
    assert float(s(10)) == pytest.approx(1e-2)
    assert float(s(60)) == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5), rel=1e-5)  # cosine midpoint
    assert float(s(110)) == pytest.approx(1e-3, rel=1e-5)
    lin = make_schedule(OptimSection(lr=1.0, warmup_steps=0, schedule="linear",
                                     final_lr_factor=0.0), 100)
    assert float(lin(25)) == pytest.approx(0.75)


def test_ema_formula():
    ema = {"w": jnp.zeros(3)}
    p = {"w": jnp.ones(3)}
    out = ema_update(ema, p, 0.99, 0)  # d = min(0.99, 1/10)
    np.testing.assert_allclose(out["w"], 0.9)
    out = ema_update(ema, p, 0.5, 1000)
    np.testing.assert_allclose(out["w"], 0.5)
    np.testing.assert_allclose(ema_update(ema, p, 0.0, 5)["w"], 1.0)


def test_adamw_decays_matrices_not_vectors():
    cfg = OptimSection(lr=0.1, warmup_steps=0, schedule="constant", weight_decay=0.5,
                       clip_norm=1.0)
    tx = make_optimizer(cfg, 10)
    params = {"m": jnp.ones((2, 2)), "v": jnp.ones(2)}
    zero = jax.tree.map(jnp.zeros_like, params)
    upd, _ = tx.update(zero, tx.init(params), params)
    np.testing.assert_allclose(upd["m"], -0.1 * 0.5)  # decoupled decay lr * wd * p
    np.testing.assert_allclose(upd["v"], 0.0)


@pytest.mark.parametrize("clip_norm", [1.0, 0.0])
def test_make_optimizer_clips_the_global_norm(clip_norm):
    """The optimiser built for training clips: with plain SGD (lr 1, no momentum) the update is
    minus the clipped gradient, of global norm ``clip_norm`` along the gradient; ``clip_norm=0``
    disables clipping (the update is the whole gradient, norm 50)."""
    cfg = OptimSection(optimizer="sgd", b1=0.0, lr=1.0, warmup_steps=0, schedule="constant",
                       clip_norm=clip_norm)
    tx = make_optimizer(cfg, 10)
    params = {"m": jnp.ones((2, 2)), "v": jnp.ones(2)}
    big = {"m": jnp.full((2, 2), 15.0), "v": jnp.full(2, 20.0 * np.sqrt(2.0))}  # norm 50
    assert float(optax.global_norm(big)) == pytest.approx(50.0)
    upd, _ = tx.update(big, tx.init(params), params)
    want = clip_norm / 50.0 if clip_norm > 0 else 1.0
    for k in big:
        np.testing.assert_allclose(upd[k], -want * big[k], rtol=1e-6)
    small = {"m": jnp.full((2, 2), 0.1), "v": jnp.full(2, 0.2)}  # below the clip: untouched
    upd, _ = tx.update(small, tx.init(params), params)
    for k in small:
        np.testing.assert_allclose(upd[k], -small[k], rtol=1e-6)


def test_wsd_schedule_is_flat_until_its_decay_and_extends_seamlessly():
    """Warm-up, stable, decay: constant ``lr`` until ``decay_steps`` before the end, then a
    linear decay to ``lr * final_lr_factor``; lengthening the run during the stable phase (a
    long job resumed with a larger ``run.max_steps``) leaves every step so far unchanged."""
    cfg = OptimSection(lr=1e-2, warmup_steps=10, schedule="wsd", final_lr_factor=0.1,
                       decay_steps=100)
    s = make_schedule(cfg, 1000)
    assert float(s(0)) == pytest.approx(1e-2 / 11)
    for t in (10, 500, 900):
        assert float(s(t)) == pytest.approx(1e-2)
    assert float(s(950)) == pytest.approx(1e-2 * (1 - 0.9 * 0.5), rel=1e-5)
    assert float(s(1000)) == pytest.approx(1e-3, rel=1e-5)
    longer = make_schedule(cfg, 5000)
    for t in (0, 5, 10, 600, 899):
        assert float(longer(t)) == pytest.approx(float(s(t)))
    # decay_steps 0: the last fifth of the steps after warm-up
    auto = make_schedule(OptimSection(lr=1.0, warmup_steps=0, schedule="wsd",
                                      final_lr_factor=0.0), 100)
    assert float(auto(80)) == pytest.approx(1.0)
    assert float(auto(90)) == pytest.approx(0.5)


def test_wsd_decay_longer_than_the_run_is_refused(tmp_path):
    from facet.train.config import ConfigError, load_config

    p = tmp_path / "c.yaml"
    p.write_text("optim:\n  schedule: wsd\n  decay_steps: -1\ndata:\n  train: a.json\n")
    with pytest.raises(ConfigError, match="optim.decay_steps"):
        load_config(p)


@pytest.mark.parametrize("train_scale_shift", [False, True])
def test_scale_and_shift_are_frozen_unless_asked(train_scale_shift):
    """As MACE's and NequIP's defaults: the per-element scale and shift fitted before training
    (and the E0s, which are not parameters) stay fixed; ``optim.train_scale_shift`` frees them."""
    cfg = OptimSection(lr=0.1, warmup_steps=0, schedule="constant", weight_decay=0.5,
                       train_scale_shift=train_scale_shift)
    tx = make_optimizer(cfg, 10)
    params = {"scale": jnp.ones(3), "shift": jnp.zeros(3), "blocks": {"scale": jnp.ones(2)},
              "w": jnp.ones((2, 2))}
    grads = jax.tree.map(jnp.ones_like, params)
    upd, _ = tx.update(grads, tx.init(params), params)
    frozen = 0.0 if not train_scale_shift else -0.1
    np.testing.assert_allclose(upd["scale"], frozen, rtol=1e-5)
    np.testing.assert_allclose(upd["shift"], frozen, rtol=1e-5)
    np.testing.assert_allclose(upd["blocks"]["scale"], -0.1, rtol=1e-5)  # not the top level
    assert np.all(np.asarray(upd["w"]) < -0.1)  # Adam step plus decoupled decay
