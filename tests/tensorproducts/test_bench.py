"""The benchmark harness in a tiny configuration: the rows' content is sane (not the timings)."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

from tensorproducts import bench, bench_report


@pytest.fixture(scope="module")
def tiny():
    cfg = bench.BenchConfig(
        lmaxes={"siso": (2,), "mimo": (1, 2)},
        settings=("mimo", "siso"),
        modes=("fwd", "fwd_bwd"),
        bwd_settings=("mimo",),
        bwd_lmaxes=(2,),
        batch={1: 8, 2: 8},
        variants=("cg-dense", "gaunt-fourier", "so2", "e3nn"),
        warmup=1,
        repeats=2,
    )
    return bench.run(cfg, log=lambda *_: None)


def test_rows_are_complete_and_sane(tiny):
    rows = tiny["rows"]
    timed = [r for r in rows if "median_ms" in r]
    # mimo fwd: 4 variants x 2 L; mimo fwd_bwd: 4 x 1; siso: 3 (so2 skipped, reason given)
    assert len(timed) == 8 + 4 + 3
    skipped = [r for r in rows if "skipped" in r]
    assert [(r["variant"], r["setting"]) for r in skipped] == [("so2", "siso")]
    assert "degree-1" in skipped[0]["skipped"]
    for r in timed:
        assert r["median_ms"] > 0 and r["iqr_ms"] >= 0 and r["n_timed"] == 2
        assert r["compile_s"] > 0 and r["flops"] > 0 and r["peak_bytes"] > 0
        assert r["batch"] == 8 and r["dtype"] == "float32"
        # every product here is exactly equivariant: float32 round-off only
        assert r["equivariance_error"] < 1e-5
    for name in ("cg-dense", "so2"):
        small, big = (
            next(
                r["flops"] for r in timed if r["variant"] == name and r["L"] == lmax
                and r["setting"] == "mimo" and r["mode"] == "fwd"
            )
            for lmax in (1, 2)
        )  # fmt: skip
        assert big > small  # more work at larger L
    meta = tiny["meta"]
    assert meta["cores"] >= 1 and meta["jax"] and meta["e3nn_jax"] and meta["cpu"] is not None


def test_slopes_and_report(tiny, tmp_path):
    assert bench.loglog_slope([1, 2, 4], [1.0, 8.0, 64.0]) == pytest.approx(3.0)
    assert bench.loglog_slope([1, 2], [1.0, 8.0]) is None
    result = dict(tiny, pof={"meta": {"pof": "skipped: test"}, "rows": []}, expressivity=[])
    path = bench_report.write_report(result, tmp_path, command="test")
    text = path.read_text()
    assert "## mimo, forward: ms per call" in text and "cg-dense" in text
    assert "## Acceptance checks" in text and "e3nn.tensor_product" in text
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["rows"]) == len(tiny["rows"])
    assert (tmp_path / "time_vs_L.png").stat().st_size > 1000


def test_checks_compare_only_rows_of_the_same_run(tiny):
    run = tiny["meta"]["run_id"]
    assert all(r["run"] == run for r in tiny["rows"])
    base = next(
        r for r in tiny["rows"]
        if (r["variant"], r["setting"], r["L"], r["mode"]) == ("e3nn", "mimo", 2, "fwd")
    )  # fmt: skip
    # a much faster e3nn row from another run would turn the verdict if it were compared
    other = dict(base, run="another-run", median_ms=1e-9)
    result = dict(tiny, rows=[other] + tiny["rows"])
    got = {c: (m, v) for c, m, v in bench_report.checks(result)}
    assert got == {c: (m, v) for c, m, v in bench_report.checks(tiny)}
    e3 = got["cg-dense at least as fast as e3nn.tensor_product (mimo, fwd)"][0]
    assert "L1:" in e3 and "L2:" in e3 and "e-" not in e3
    assert bench.batch_size({"siso:3": 7, 3: 5}, "siso", 3) == 7
    assert bench.batch_size({"siso:3": 7, 3: 5}, "mimo", 3) == 5


def test_variants_are_timed_on_outputs_they_reach():
    ir1, ir2, out = bench.SETTINGS["mimo"](2)
    assert bench.reached_outputs("cg-dense", ir1, ir2, out) == out
    # vector Gaunt's odd paths land on the other parity class: 0o + 1e + 2o + 3e + 4o
    flipped = bench.reached_outputs("vector-gaunt-grid", ir1, ir2, out)
    assert [(ir.l, ir.p) for _, ir in flipped] == [(l, -((-1) ** l)) for l in range(5)]
    # siso at odd L: 1o x 1o -> 1e is antisymmetric, so Gaunt has nothing to compute there
    assert bench.reached_outputs("gaunt-fourier[direct]", *bench.SETTINGS["siso"](1)) is None
    assert bench.reached_outputs("e3nn", *bench.SETTINGS["siso"](1)) is not None


def _load_pof():
    path = Path(__file__).resolve().parents[2] / "scripts" / "pof_bench.py"
    spec = importlib.util.spec_from_file_location("pof_bench_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_research_run_is_reported_skipped_when_absent(tmp_path):
    rows, meta = _load_pof().run_pof(str(tmp_path / "nowhere"), {})
    assert {r["variant"] for r in rows} == {f"pof:{v}" for v in _load_pof().POF_VARIANTS}
    assert all(r["skipped"].startswith("skipped: no PriceofFreedom checkout") for r in rows)


def test_quick_never_writes_over_the_full_report(capsys):
    from facet.cli import bench as cli

    args = argparse.Namespace(quick=True, out=cli.FULL_TP_DIR, pof=None, variants=None,
                              no_expressivity=True, from_json=None, budget_min=None)  # fmt: skip
    assert cli._tp_run(args) == 2
    assert "never writes over the full report" in capsys.readouterr().err
    assert "tp" in cli.SELECTIONS
