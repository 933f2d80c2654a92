"""``facet bench scaling`` in a tiny configuration (the harness, not the timings).

Checked: the systems have the fixed density of fcc Cu at every size and exactly the requested
atom counts; the sweeps contain every requested point plus the preset's own; a tiny run gives a
row for every configuration with XLA FLOPs, memory and timings that obey their definitions
(rate = FLOPs / median time, fraction = rate / the matmul rate of the same run, min <= median
<= max, backward costs more than forward, more atoms cost more FLOPs and memory); the deadline
turns configurations into ``skipped`` rows with a reason; the derived slope of a known power law
is recovered; a quick run can never write into the full report's folder.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from facet.bench import common, scaling, scaling_report

TINY = scaling.ScalingConfig(
    preset="facet-s",
    sizes=(8, 12),
    channels=(),
    lmaxes=(),
    sweep_atoms=8,
    repeats=2,
    matmul_n=64,
    overrides=(("num_layers", 1), ("channels", 8), ("lmax", 1), ("mixer_hidden", 8)),
)


@pytest.fixture(scope="module")
def tiny_run():
    return scaling.run(TINY, command="test")


@pytest.mark.parametrize("n", [8, 12, 32, 108, 256, 4096])
def test_fcc_cells_have_fixed_density_and_exact_size(n):
    atoms = scaling.fcc_cell(n, seed=1)
    assert len(atoms) == n
    density = n / atoms.get_volume()
    assert density == pytest.approx(4 / scaling.CU_LATTICE**3, rel=1e-12)
    nx, ny, nz = scaling.fcc_repeats(n)
    assert 4 * nx * ny * nz == n and nx <= ny <= nz


def test_fcc_repeats_refuses_impossible_sizes():
    with pytest.raises(ValueError, match="10 is not a multiple of 4"):
        scaling.fcc_repeats(10)


def test_sweeps_cover_requested_points_and_the_preset():
    cfg = dataclasses.replace(TINY, channels=(4, 16), lmaxes=(2,), sizes=(8, 12, 32))
    pts = scaling.configurations(cfg)
    keys = [(p["atoms"], p["channels"], p["lmax"]) for p in pts]
    assert len(keys) == len(set(keys))
    chan = {p["channels"] for p in pts if "channels" in p["sweeps"]}
    lm = {p["lmax"] for p in pts if "lmax" in p["sweeps"]}
    assert chan == {4, 8, 16} and lm == {1, 2}
    assert [p["atoms"] for p in pts if "size" in p["sweeps"]] == [8, 12, 32]


def test_tiny_run_rows_obey_their_definitions(tiny_run):
    rows = tiny_run["rows"]
    mm = [r for r in rows if r["kind"] == "matmul"]
    assert len(mm) == 1 and mm[0]["flops"] == 2 * 64**3
    assert mm[0]["flop_rate"] == pytest.approx(mm[0]["flops"] / mm[0]["time_s"])
    model = {(r["atoms"], r["channels"]): r for r in rows if r["kind"] == "model"}
    assert set(model) == {(8, 8), (12, 8)}
    for r in model.values():
        assert r["status"] == "ok", r["status"]
        assert r["device_kind"] and r["dtype"] == "float32" and len(r["loadavg"]) == 3
        assert r["time_fwd_bwd_min_s"] <= r["time_fwd_bwd_s"] <= r["time_fwd_bwd_max_s"]
        assert r["flop_rate_fwd_bwd"] == pytest.approx(r["flops_fwd_bwd"] / r["time_fwd_bwd_s"])
        assert r["frac_matmul_fwd_bwd"] == pytest.approx(
            r["flop_rate_fwd_bwd"] / mm[0]["flop_rate"]
        )
        assert r["memory_fwd_bwd"]["xla_total_bytes"] > 0 and r["rss_peak_bytes"] > 0
        assert r["edges"] == pytest.approx(r["neighbours_per_atom"] * r["atoms"])
    small, big = model[(8, 8)], model[(12, 8)]
    for r in (small, big):  # the reverse pass adds work to the forward pass
        assert r["flops_fwd"] < r["flops_fwd_bwd"]
    assert big["flops_fwd_bwd"] > small["flops_fwd_bwd"]
    assert big["memory_fwd_bwd"]["temp_bytes"] > small["memory_fwd_bwd"]["temp_bytes"]


def test_report_files_and_headline(tiny_run, tmp_path):
    path = scaling_report.write_report(tiny_run, tmp_path)
    text = path.read_text()
    for name in ("results.json", "scaling_time.png", "scaling_memory.png", "scaling_sweeps.png"):
        assert (tmp_path / name).stat().st_size > 0
    d = tiny_run["derived"]
    assert d["largest_atoms"] == 12
    assert f"{100 * d['best_frac_matmul_fwd_bwd']:.1f} %" in text


def test_derived_slope_recovers_a_power_law():
    rows = [{"kind": "model", "status": "ok", "sweeps": ["size"], "atoms": n,
             "time_fwd_bwd_s": 1e-3 * n**1.5, "us_per_atom": 1.0, "atoms_per_s": 1.0}
            for n in (8, 108, 256, 864)]  # fmt: skip
    d = scaling_report.derived({"rows": rows})
    assert d["time_vs_atoms_slope"] == pytest.approx(1.5, abs=1e-12)
    assert d["slope_atoms_range"] == [108, 864]  # below SLOPE_MIN_ATOMS excluded


def test_deadline_gives_skipped_rows_with_reason(tmp_path):
    res = scaling.run(dataclasses.replace(TINY, deadline_s=1e-9), command="test")
    model = [r for r in res["rows"] if r["kind"] == "model"]
    assert len(model) == 2
    assert all(r["status"].startswith("skipped: time budget") for r in model)
    text = scaling_report.write_report(res, tmp_path).read_text()
    assert text.count("Not measured:") == 2


def test_quick_never_writes_into_the_full_report(tmp_path):
    (tmp_path / "scaling").mkdir()
    assert common.output_dir("scaling", quick=True, root=tmp_path) == tmp_path / "quick/scaling"
    assert common.output_dir("scaling", quick=False, root=tmp_path) == tmp_path / "scaling"
    with pytest.raises(common.BenchError, match="never writes into a full report"):
        common.output_dir("scaling", quick=True, out=tmp_path / "scaling", root=tmp_path)
    with pytest.raises(common.BenchError):
        common.output_dir("scaling", quick=True, out=tmp_path, root=tmp_path)


def test_run_meta_records_hardware_and_versions():
    from facet.bench import meta

    m = meta.run_meta(dtype="float32", seed=3, command="x")
    assert m["hardware"]["cpu"] and m["hardware"]["device_kind"]
    assert m["versions"]["jax"] and m["versions"]["python"]
    assert m["seed"] == 3 and m["dtype"] == "float32"
    assert m["loadavg_start"] is None or len(m["loadavg_start"]) == 3
    assert np.isfinite(m["hardware"]["cpu_count"])
