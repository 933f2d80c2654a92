"""MPTrj reader/writer: values against the source dict, round trips, label choice, fast structure
parsing against pymatgen, streaming, and every bad input (raise or skip-and-count)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from data_factories import build_mptrj, mptrj_frame, random_structure, write_json
from pymatgen.core import Structure

from facet.data.frames import KBAR_PER_EV_A3, FrameError, ReadStats
from facet.data.mptrj import iter_mptrj, structure_from_dict, write_mptrj


def test_values_match_source_dict(mptrj_file):
    path, data = mptrj_file
    stats = ReadStats()
    frames = list(iter_mptrj(path, stats=stats))
    assert stats.read == stats.kept == len(frames) == 18 and stats.n_skipped == 0
    for f in frames:
        raw = data[f.material_id][f.frame_id]
        s = Structure.from_dict(raw["structure"])
        np.testing.assert_allclose(f.positions, s.cart_coords, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(f.numbers, s.atomic_numbers)
        np.testing.assert_allclose(f.cell, s.lattice.matrix, rtol=0, atol=1e-12)
        assert f.energy == raw["uncorrected_total_energy"]
        assert f.info["corrected_total_energy"] == raw["corrected_total_energy"]
        np.testing.assert_array_equal(f.forces, raw["force"])
        # kBar, positive = compressive  ->  eV/A^3, positive = tensile
        np.testing.assert_allclose(f.stress, -np.asarray(raw["stress"]) / 1602.1766208, rtol=1e-15)
        assert (f.magmom is None) == (raw["magmom"] is None)
        assert f.source == path


def test_corrected_label(mptrj_file):
    path, data = mptrj_file
    for f in iter_mptrj(path, label="corrected_total_energy"):
        raw = data[f.material_id][f.frame_id]
        assert f.energy == raw["corrected_total_energy"] != raw["uncorrected_total_energy"]
        assert f.info["uncorrected_total_energy"] == raw["uncorrected_total_energy"]
    with pytest.raises(ValueError, match="unknown energy label"):
        next(iter_mptrj(path, label="energy"))


def test_round_trip_write_read(mptrj_file, tmp_path):
    path, _ = mptrj_file
    first = list(iter_mptrj(path))
    out = tmp_path / "again.json"
    assert write_mptrj(out, first) == len(first)
    second = list(iter_mptrj(out))
    assert [f.key for f in second] == [f.key for f in first]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_allclose(b.positions, a.positions, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(b.numbers, a.numbers)
        np.testing.assert_array_equal(b.cell, a.cell)
        np.testing.assert_array_equal(b.forces, a.forces)
        np.testing.assert_allclose(b.stress, a.stress, rtol=1e-14)
        assert b.energy == a.energy
        assert b.info == a.info
    # The written structure dicts load in pymatgen to the same structures.
    with open(out) as fh:
        written = json.load(fh)
    for f in first:
        s = Structure.from_dict(written[f.material_id][f.frame_id]["structure"])
        np.testing.assert_allclose(s.cart_coords, f.positions, rtol=0, atol=1e-12)


def test_writer_refuses_non_consecutive_materials(mptrj_file, tmp_path):
    frames = list(iter_mptrj(mptrj_file[0]))
    with pytest.raises(ValueError, match="not consecutive"):
        write_mptrj(tmp_path / "x.json", [frames[0], frames[5], frames[1]])


def test_fast_structure_parser_equals_pymatgen():
    rng = np.random.default_rng(3)
    for _ in range(10):
        s = random_structure(rng, int(rng.integers(1, 9)))
        if rng.uniform() < 0.5:
            s.add_oxidation_state_by_guess()  # species dicts then carry oxidation states
        d = s.as_dict()
        pos, num, cell, pbc = structure_from_dict(d)
        ref = Structure.from_dict(d)
        np.testing.assert_allclose(pos, ref.cart_coords, rtol=0, atol=1e-13)
        np.testing.assert_array_equal(num, ref.atomic_numbers)
        np.testing.assert_array_equal(cell, ref.lattice.matrix)
        np.testing.assert_array_equal(pbc, ref.lattice.pbc)


def test_streaming_yields_before_reading_the_rest(tmp_path):
    # A good material followed by garbage: the first frames arrive before the parser reaches the
    # garbage, and the error names the file and the last complete material.
    data = build_mptrj(np.random.default_rng(0), 1)
    path = tmp_path / "trunc.json"
    text = write_json(path, data)
    raw = open(text).read()
    open(text, "w").write(raw[:-1] + ', "mp-2": {"t-0": {"structure": {"lattice": ')
    it = iter_mptrj(text)
    first = next(it)
    assert first.material_id == "mp-1000"
    with pytest.raises(FrameError, match=r"trunc\.json.*mp-1000.*truncated or malformed") as ei:
        list(it)
    assert ei.value.reason == "malformed"


def test_truncated_file_raises_even_when_skipping(tmp_path):
    data = build_mptrj(np.random.default_rng(1), 3)
    path = write_json(tmp_path / "cut.json", data)
    raw = open(path).read()
    open(path, "w").write(raw[: len(raw) * 2 // 3])
    stats = ReadStats()
    with pytest.raises(FrameError, match="cut.json"):
        list(iter_mptrj(path, on_error="skip", stats=stats))
    stats.check()


def test_nan_literal_is_malformed_json(tmp_path):
    data = build_mptrj(np.random.default_rng(2), 2)
    mid = "mp-1001"
    fid = next(iter(data[mid]))
    data[mid][fid]["uncorrected_total_energy"] = float("nan")  # json.dump writes NaN (invalid)
    path = write_json(tmp_path / "nan.json", data)
    with pytest.raises(FrameError, match="after material 'mp-1000'"):
        list(iter_mptrj(path))


def _bad_frames(rng):
    """One broken frame per reason, each in its own material, plus two good materials."""
    good = build_mptrj(rng, 2, frames_per_material=2)
    base = mptrj_frame(rng, random_structure(rng, 3, elements=("Na", "Cl")))
    bad = {}

    def add(reason, fn):
        fr = copy.deepcopy(base)
        fn(fr)
        bad[reason] = fr

    add("missing_key", lambda f: f.pop("force"))
    add("bad_shape", lambda f: f.update(force=[[0.0, 0.0]] * 3))
    add("atoms_too_close", lambda f: f["structure"]["sites"][1].update(
        abc=[a + 0.01 for a in f["structure"]["sites"][0]["abc"]]))  # fmt: skip
    add("empty_structure", lambda f: f["structure"].update(sites=[]) or f.update(force=[]))
    add("unknown_element", lambda f: f["structure"]["sites"][0]["species"][0].update(element="Xx"))
    add("singular_cell", lambda f: f["structure"]["lattice"].update(
        matrix=[[4.0, 0, 0], [8.0, 0, 0], [0, 0, 4.0]]))  # fmt: skip
    add("disordered_site", lambda f: f["structure"]["sites"][0]["species"][0].update(occu=0.5))
    add("malformed", lambda f: f["structure"].pop("lattice"))
    data = dict(good)
    for reason, fr in bad.items():
        data[f"mp-bad-{reason}"] = {f"t-{reason}": fr}
    data["mp-not-a-dict"] = [1, 2, 3]
    return data, bad


def test_every_bad_input_raises_with_location(tmp_path):
    data, bad = _bad_frames(np.random.default_rng(5))
    for reason in bad:
        sub = {"mp-1000": data["mp-1000"], f"mp-bad-{reason}": data[f"mp-bad-{reason}"]}
        path = write_json(tmp_path / f"{reason}.json", sub)
        with pytest.raises(FrameError) as ei:
            list(iter_mptrj(path))
        msg = str(ei.value)
        assert ei.value.reason == reason, msg
        assert f"{reason}.json" in msg and f"mp-bad-{reason}" in msg and f"t-{reason}" in msg


def test_skip_counts_every_reason_and_adds_up(tmp_path):
    data, bad = _bad_frames(np.random.default_rng(6))
    path = write_json(tmp_path / "mixed.json", data)
    stats = ReadStats()
    frames = list(iter_mptrj(path, on_error="skip", stats=stats))
    stats.check()
    assert len(frames) == stats.kept == 4
    assert stats.read == 4 + len(bad) + 1
    expected = {r: 1 for r in bad}
    expected["malformed"] += 1  # the material that is not an object
    assert dict(stats.skipped) == expected
    assert any("mp-bad-atoms_too_close" in m for m in stats.examples)


def test_stress_constant():
    from ase.units import GPa

    assert KBAR_PER_EV_A3 == pytest.approx(10.0 / GPa, rel=1e-12)
