"""Function-preserving widening (facet.nn.widen): the wider model computes the same energies,
forces and stress in float64, and its new weights receive gradients."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx
from model_cases import batch_of, molecule, periodic_cell

import facet
import facet.nn.interaction as interaction
from facet.nn.presets import count_parameters
from facet.nn.widen import widen_model


def _run(model, batch):
    """Energies, forces and stress of ``model`` on ``batch``, traced afresh (no cached program:
    a test below changes the RMS norm at trace time)."""
    from facet.physics import predict

    graphdef, state = nnx.split(model)
    out = jax.jit(lambda s: predict(nnx.merge(graphdef, s), batch, forces=True, stress=True))(state)
    return jax.tree_util.tree_map(np.asarray, out)


def _trained_like(preset, seed, **overrides):
    """A random model with trained-looking (non-zero, non-default) scale, shift, E0 and alpha."""
    model = facet.create_model(preset, seed=seed, dtype="float64", **overrides)
    rng = np.random.default_rng(seed)
    model.set_scale_shift(rng.uniform(0.5, 1.5, 119), rng.uniform(-0.2, 0.2, 119))
    model.set_atomic_energies(-rng.uniform(1.0, 5.0, 119))
    for i, block in enumerate(model.blocks):
        block.alpha[...] = 0.3 + 0.2 * i
    return model


CASES = [
    # facet-s irreps and product at a reduced width (the widening rules do not depend on it)
    pytest.param(("facet-s", dict(channels=8, mixer_hidden=6), 12, 10), id="facet-s-like"),
    # pseudo-parity irreps and lmax 3 exercise lin_b/out_b and the (u, u*v) field layout
    pytest.param(("facet-m", dict(channels=4, mixer_hidden=4, num_layers=2, readout_hidden=8),
                  7, 6), id="facet-m-like", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("case", CASES)
def test_widened_model_computes_the_same(case, x64, monkeypatch):
    """The widening rules are exact: with the RMS norm's ``eps`` set to 0 (its only effect, see
    the next test) the wider model agrees to round-off."""
    preset, overrides, c2, h2 = case
    norm = interaction.rms_norm
    monkeypatch.setattr(interaction, "rms_norm", lambda x: norm(x, eps=0.0))
    model = _trained_like(preset, 3, **overrides)
    wide = widen_model(model, c2, h2, seed=5)
    assert wide.config.channels == c2 and wide.config.mixer_hidden == h2
    assert count_parameters(wide) > count_parameters(model)
    b = batch_of([periodic_cell(), molecule()], np.float64, model.cutoff, pad=(12, 512, 3))
    ref, out = _run(model, b), _run(wide, b)
    assert np.abs(ref.forces).max() > 1e-2 and np.abs(ref.stress[0]).max() > 1e-3
    np.testing.assert_allclose(out.energy[:2], ref.energy[:2], rtol=0, atol=1e-11)
    np.testing.assert_allclose(out.forces, ref.forces, rtol=0, atol=1e-11)
    np.testing.assert_allclose(out.stress, ref.stress, rtol=0, atol=1e-12)


def test_widened_default_model_computes_the_same(x64):
    """With the RMS norm as trained (``eps = 1e-6``), the shipped model widened to 128 channels
    and fields: its messages' mean squares dwarf ``eps``, so energies agree to 1e-5 eV/atom."""
    from ase.build import bulk

    from facet.model_io import load_model

    model = load_model("default", dtype="float64")
    nacl = bulk("NaCl", "rocksalt", a=5.6).repeat((2, 1, 1))
    si = bulk("Si", "diamond", a=5.43)
    nacl.rattle(0.05, seed=1)
    si.rattle(0.05, seed=2)
    b = batch_of([nacl, si], np.float64, model.cutoff, pad=(24, 2048, 3))
    ref, out = _run(model, b), _run(widen_model(model, 128, 128), b)
    assert np.abs(ref.forces).max() > 0.5
    assert np.abs(out.energy[:2] - ref.energy[:2]).max() / 4 < 1e-5
    np.testing.assert_allclose(out.forces, ref.forces, rtol=0, atol=1e-5)
    np.testing.assert_allclose(out.stress, ref.stress, rtol=0, atol=1e-6)


def test_new_weights_get_gradients(x64):
    """Training can move the new channels: the loss gradient of every new weight block that
    multiplies zeros at the start (embedding columns, pre/post/mixer outputs) is not zero."""
    from facet.physics import predict

    model = _trained_like("facet-s", 4, channels=6, mixer_hidden=6)
    wide = widen_model(model, 9, 8, seed=1)
    b = batch_of([periodic_cell()], np.float64, model.cutoff, pad=(6, 256, 2))
    graphdef, params, rest = nnx.split(wide, nnx.Param, ...)

    def loss(p):
        return predict(nnx.merge(graphdef, p, rest), b, forces=False, stress=False).energy[0]

    g = nnx.to_pure_dict(jax.grad(loss)(params))
    assert np.abs(np.asarray(g["embedding"])[:, 6:]).max() > 0
    for blk in g["blocks"].values():
        assert np.abs(np.asarray(blk["post"]["w"])[:, :, 6:]).max() > 0
        assert np.abs(np.asarray(blk["mixer"]["out_a"]["w"])[:, :, 6:]).max() > 0
    assert np.abs(np.asarray(g["blocks"][1]["pre"]["w"])[:, :, 6:]).max() > 0


def test_widening_only_grows():
    model = facet.create_model("facet-s", channels=8, mixer_hidden=8)
    with pytest.raises(ValueError, match="grows widths only"):
        widen_model(model, 6)


def test_widen_command_writes_a_start_for_init_from(tmp_path, capsys):
    """``scripts/train_default_model.py widen`` on the shipped model: the folder it writes loads
    as a 80-channel model computing the same energy, fine-tuning accepts it as ``init_from``
    with that architecture, and a second call refuses to overwrite it."""
    from ase.build import bulk

    from facet.calculator import FacetCalculator
    from facet.train.config import ModelSection
    from facet.train.default_model import main
    from facet.train.model_io import finetune_section

    out = tmp_path / "wide"
    assert main(["widen", "--run", "default", "--out", str(out), "--channels", "80",
                 "--mixer-hidden", "76"]) == 0
    section, src = finetune_section(ModelSection(init_from=str(out)), report=lambda *a: None)
    assert section.overrides == {"channels": 80, "mixer_hidden": 76} and src == out
    atoms = bulk("GaAs", "zincblende", a=5.7)
    atoms.rattle(0.05, seed=0)
    energies = []
    for model in ("default", str(out)):
        atoms.calc = FacetCalculator(model=model, dtype="float64")
        energies.append(atoms.get_potential_energy())
    assert abs(energies[0] - energies[1]) < 1e-5
    with pytest.raises(SystemExit):
        main(["widen", "--run", "default", "--out", str(out), "--channels", "96",
              "--mixer-hidden", "96"])
    assert "already holds a model" in capsys.readouterr().err
