"""Stored programs (facet.program_cache): a second process runs the stored program of a
checkpoint model without building the network and gets the normal path's numbers bit for bit; a
corrupted or stale file is detected and the calculator compiles instead (same numbers); the
switches turn it off; reading ``calc.model`` returns the calculator to the jit path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from ase.build import bulk

from facet import FacetCalculator
from facet.program_cache import ENV_VAR, SUBFOLDER

_WORKER = textwrap.dedent(
    """
    import json, sys
    from ase.build import bulk
    from facet import FacetCalculator
    out = {}
    for dtype in ("float32", "float64"):
        calc = FacetCalculator(model=sys.argv[1], dtype=dtype)
        for seed in (1, 2):  # the second structure reuses the first one's program
            atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
            atoms.rattle(0.05, seed=seed)
            atoms.calc = calc
            key = f"{dtype}-{seed}"
            out[key] = {
                "forces": atoms.get_forces().tobytes().hex(),
                "stress": atoms.get_stress().tobytes().hex(),
                "energies": atoms.get_potential_energies().tobytes().hex(),
                "stored": [flat for _, flat in calc._programs.values()],
            }
        out[dtype + "-count"] = calc.compile_count
    out["network_imported"] = "e3nn_jax" in sys.modules
    print(json.dumps(out))
    """
)


def _run(ckpt, cache, **env_extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env.update({"FACET_COMPILE_CACHE": str(cache), "JAX_PLATFORMS": "cpu"}, **env_extra)
    out = subprocess.run([sys.executable, "-c", _WORKER, str(ckpt)], env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _numbers(res: dict) -> dict:
    return {k: {q: v[q] for q in ("forces", "stress", "energies")}
            for k, v in res.items() if isinstance(v, dict)}


def test_second_process_runs_the_stored_program_bit_identically(tiny_ckpt, tmp_path):
    first = _run(tiny_ckpt, tmp_path / "cache")
    assert first["network_imported"]
    assert all(v["stored"] == [False] * len(v["stored"]) for k, v in first.items()
               if isinstance(v, dict))
    progs = sorted((tmp_path / "cache" / SUBFOLDER).glob("*.prog"))
    assert len(progs) == 2  # one shape x two dtypes
    second = _run(tiny_ckpt, tmp_path / "cache")
    # No network built, no Flax/e3nn-jax imported: every program came from the store.
    assert not second["network_imported"]
    assert all(all(v["stored"]) for v in second.values() if isinstance(v, dict))
    assert second["float32-count"] == second["float64-count"] == 1
    # The normal path (store off, nothing stored): the same bits.
    plain = _run(tiny_ckpt, tmp_path / "plain", **{ENV_VAR: "0"})
    assert not (tmp_path / "plain" / SUBFOLDER).exists()
    assert _numbers(second) == _numbers(first) == _numbers(plain)


def _si(calc):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=7)
    atoms.calc = calc
    return atoms.get_forces(), atoms.get_stress(), atoms.get_potential_energy()


def _same(a, b) -> bool:
    pairs = zip(a, b, strict=True)
    return all(np.asarray(x).tobytes() == np.asarray(y).tobytes() for x, y in pairs)


def test_corrupted_or_stale_files_fall_back(tiny_ckpt):
    ref_calc = FacetCalculator(model=str(tiny_ckpt))
    ref = _si(ref_calc)
    store = ref_calc._store
    assert store is not None
    (shape,) = ref_calc._programs
    prog = store.program_path(shape)
    good = prog.read_bytes()
    stale = bytearray(good)
    head = good.index(store.key.encode())
    stale[head:head + 4] = b"0000"  # a header naming another model (stale file)
    corrupt = bytearray(good)
    corrupt[len(good) // 2] ^= 0xFF  # one flipped byte in the executable
    for bad, why in ((bytes(stale), "another model"), (bytes(corrupt), "checksum"),
                     (b"junk", "not a Facet")):
        prog.write_bytes(bad)
        calc = FacetCalculator(model=str(tiny_ckpt))
        with pytest.warns(UserWarning, match=why):
            got = _si(calc)
        assert _same(got, ref)
        assert calc._programs[shape][1] is False  # compiled, not loaded
        assert prog.read_bytes() != bad  # rewritten
    # A description that does not parse: the network is built again, numbers unchanged.
    store.info_path.write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable"):
        calc = FacetCalculator(model=str(tiny_ckpt))
    assert calc._model is not None and _same(_si(calc), ref)
    # The files are whole again: a new calculator loads them.
    calc = FacetCalculator(model=str(tiny_ckpt))
    assert calc._model is None and _same(_si(calc), ref) and calc._programs[shape][1]


def test_switches_turn_it_off(tiny_ckpt, monkeypatch):
    ref = _si(FacetCalculator(model=str(tiny_ckpt)))
    off = FacetCalculator(model=str(tiny_ckpt), program_cache=False)
    assert off._store is None and _same(_si(off), ref)
    assert FacetCalculator(model=str(tiny_ckpt), compile_cache=False)._store is None
    monkeypatch.setenv(ENV_VAR, "0")
    calc = FacetCalculator(model=str(tiny_ckpt))
    assert calc._store is None and _same(_si(calc), ref) and not calc._programs


def test_reading_the_model_returns_to_the_jit_path(tiny_ckpt):
    calc = FacetCalculator(model=str(tiny_ckpt))
    f0, s0, e0 = _si(calc)
    model = calc.model
    e0s = np.asarray(model.atomic_energies[...], np.float64).copy()
    e0s[29] += 1.5  # Cu
    model.set_atomic_energies(e0s)
    calc.reset()  # ASE would return the stored results for the same atoms
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f1, s1, e1 = _si(calc)
    assert not [w for w in caught if "stored program" in str(w.message)]
    assert e1 == pytest.approx(e0 + 1.5 * 4, abs=1e-4)
    np.testing.assert_allclose(f1, f0, atol=1e-6)
