"""The benchmark harness in a tiny configuration: the rows' content is sane (not the timings)."""

from __future__ import annotations

import argparse
import json

import pytest

from tensorproducts.bench import cases, harness, pof
from tensorproducts.bench import main as bench_main
from tensorproducts.bench import report as bench_report


@pytest.fixture(scope="module")
def tiny():
    cfg = cases.BenchConfig(
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
    return harness.run(cfg, log=lambda *_: None)


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
    assert harness.loglog_slope([1, 2, 4], [1.0, 8.0, 64.0]) == pytest.approx(3.0)
    assert harness.loglog_slope([1, 2], [1.0, 8.0]) is None
    result = dict(tiny, pof={"meta": {"pof": "skipped: test"}, "rows": []}, expressivity=[])
    path = bench_report.write_report(result, tmp_path, command="test")
    text = path.read_text()
    assert "## mimo, forward: ms per call" in text and "cg-dense" in text
    assert "## Acceptance checks" in text and "e3nn.tensor_product" in text
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["rows"]) == len(tiny["rows"])
    assert (tmp_path / "time_vs_L.png").stat().st_size > 1000
    # the research side was not run, and no case of ours was cut
    assert "No case was cut by a time budget." in text and "Not completed" not in text


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
    assert cases.batch_size({"siso:3": 7, 3: 5}, "siso", 3) == 7
    assert cases.batch_size({"siso:3": 7, 3: 5}, "mimo", 3) == 5


def test_merged_file_pairs_rows_by_run_only(tiny, tmp_path):
    """A merged file holds rows of several runs; no comparison may pair rows across runs."""
    from tensorproducts.bench.runs import merge

    run_a = tiny["meta"]["run_id"]
    run_b = run_a[:4] + "9" + run_a[5:]  # a later run (ids sort by their UTC start)
    # run B re-measured cg-dense in mimo at 1e-9 ms and nothing else: paired across runs, e3nn
    # would look 1e6x slower than cg-dense, and the research rows would look unbeatable
    again = [
        dict(r, run=run_b, median_ms=1e-9, iqr_ms=0.0)
        for r in tiny["rows"]
        if (r["variant"], r["setting"], r["mode"]) == ("cg-dense", "mimo", "fwd")
    ]
    mine = {
        r["L"]: r for r in tiny["rows"]
        if (r["variant"], r["setting"], r["mode"]) == ("cg-dense", "mimo", "fwd")
    }  # fmt: skip
    pof_a = [dict(variant="pof:CGTP-dense", ours="cg-dense", setting="mimo", L=2, channels=1,
                  mode="fwd", median_ms=mine[2]["median_ms"] / 2, iqr_ms=0.0, batch=8,
                  us_per_sample=1.0, flops=mine[2]["flops"])]  # fmt: skip
    # run B timed the research code at L=1 but not our cg-dense at L=1: nothing to pair with
    pof_b = [dict(pof_a[0], L=1, median_ms=1.0)]
    base = dict(tiny, pof={"meta": {"pof": "checkout test"}, "rows": pof_a}, expressivity=[])
    new = {"meta": dict(tiny["meta"], run_id=run_b), "config": tiny["config"], "command": "b",
           "rows": [r for r in again if r["L"] == 2],
           "pof": {"meta": {}, "rows": pof_b}}  # fmt: skip
    merged = merge(base, new)
    assert [r["run_id"] for r in merged["runs"]] == [run_a, run_b]
    assert all(r["run"] in (run_a, run_b) for r in merged["rows"] + merged["pof"]["rows"])
    got = {c: (m, v) for c, m, v in bench_report.checks(merged)}
    alone = {c: (m, v) for c, m, v in bench_report.checks(base)}
    key = "cg-dense at least as fast as e3nn.tensor_product (mimo, fwd)"
    assert got[key] == alone[key] and "e-" not in got[key][0]
    m, v = got["cg-dense at least as fast as the research implementation"]
    assert "over 1 cases" in m and "1 without a row of ours in their run" in m
    assert v == "NO: mimo L=2 (0.50x)"  # run A's research row against run A's cg-dense only
    text = bench_report.write_report(merged, tmp_path, command="merged").read_text()
    # the table shows the newest measurement of a case; coverage counts each case once
    assert "- ours, **mimo fwd**: 8 of 8 measured (L=1-2)." in text
    assert "## Runs" in text and f"`{run_b}`" in text and "2 runs merged" in text
    # the table shows run B's cg-dense; the losses compare the variants of run A (which timed
    # most of mimo), so run B's 1e-9 ms is never called the fastest
    assert "| 1e-09 ±0 |" in text
    fastest = next(line for line in text.splitlines() if line.startswith("- **mimo fwd, L=2**"))
    assert "1e-09" not in fastest and f"[run {run_a}]" in fastest


def test_variants_are_timed_on_outputs_they_reach():
    ir1, ir2, out = cases.SETTINGS["mimo"](2)
    assert cases.reached_outputs("cg-dense", ir1, ir2, out) == out
    # vector Gaunt's odd paths land on the other parity class: 0o + 1e + 2o + 3e + 4o
    flipped = cases.reached_outputs("vector-gaunt-grid", ir1, ir2, out)
    assert [(ir.l, ir.p) for _, ir in flipped] == [(l, -((-1) ** l)) for l in range(5)]
    # siso at odd L: 1o x 1o -> 1e is antisymmetric, so Gaunt has nothing to compute there
    assert cases.reached_outputs("gaunt-fourier[direct]", *cases.SETTINGS["siso"](1)) is None
    assert cases.reached_outputs("e3nn", *cases.SETTINGS["siso"](1)) is not None


def test_report_states_what_a_budget_cut_and_rerenders_from_json(tiny, tmp_path):
    from facet.cli import bench as cli

    # a budget already spent: run() records every case as cut and compiles nothing
    cfg = cases.BenchConfig(settings=("edge",), channel_counts=(16,), bwd_channel_counts=(16,),
                            variants=("cg-dense", "so2"), deadline_s=-1.0)  # fmt: skip
    cut = harness.run(cfg, log=lambda *_: None)["rows"]
    assert len(cut) == 4 and all(r["skipped"] == "time budget of the run exhausted" for r in cut)
    run = tiny["meta"]["run_id"]
    mine = next(
        r for r in tiny["rows"]
        if (r["variant"], r["setting"], r["L"], r["mode"]) == ("cg-dense", "mimo", 2, "fwd")
    )  # fmt: skip
    base = {"ours": "cg-dense", "setting": "mimo", "L": 2, "channels": 1, "mode": "fwd"}
    pof_rows = [  # research rows: one twice as fast as ours at equal FLOPs, one killed worker
        dict(base, variant="pof:CGTP-dense", median_ms=mine["median_ms"] / 2, iqr_ms=0.0,
             flops=mine["flops"], batch=8, us_per_sample=1.0),
        dict(base, variant="pof:GTP-fourier", ours="gaunt-fourier",
             skipped="research worker: timeout (killed)"),
        dict(base, variant="pof:VGTP-grid", ours="vector-gaunt-grid",
             skipped="time budget of the research run exhausted"),
    ]  # fmt: skip
    pof = {"meta": {"pof": "checkout test"}, "rows": pof_rows}
    rows = tiny["rows"] + [dict(r, run=run) for r in cut]
    result = dict(tiny, rows=rows, command="test", pof=pof, expressivity=[])
    text = bench_report.write_report(result, tmp_path / "a", command="test").read_text()
    assert "- ours, **edge fwd**: none of 2 measured; 2 cut by the time budget." in text
    assert "- ours, **siso fwd**: 3 of 4 measured (L=2); 1 not applicable." in text
    assert (
        "- research pof:GTP-fourier (beside our gaunt-fourier): none of 1 measured; 1 lost when "
        "the time limit killed the research subprocess." in text
    )
    assert "**Not completed**: our harness stopped starting cases" in text
    # more time cannot complete the research vector Gaunt product on s2_irreps inputs: said so
    assert "Note: its product takes vector-spherical-harmonic coefficients" in text
    # the command that completes only what was cut: our edge cases, and the research variants
    # cut in mimo together with our mimo rows (checks pair rows of one run), merged into the file
    assert (
        "MKL_NUM_THREADS=1 facet bench tp --settings mimo,edge --pof PATH --pof-variants "
        "GTP-fourier,VGTP-grid --pof-budget-s 3600 --merge-into docs/benchmarks/tp/results.json"
    ) in text
    # the loss to the research code is stated with the FLOPs that show it is timing, not work
    assert "slower in 1 of 1 cases: mimo L=2 (research/ours time 0.50, XLA FLOPs ours/research " \
        "1.00)" in text  # fmt: skip
    assert "IQR of these rows is up to" in text and "mimo fwd, L by L against cg-dense" in text
    # a variant with no measured row shows "-", never a measured-looking 0
    assert "| pof:GTP-fourier | - | - | - |" in text
    assert "## edge setting (realistic channels): ms per call\n\nNothing measured" in text
    # the re-render path (`facet bench tp --from-json`) reproduces the report from its JSON
    args = argparse.Namespace(quick=False, out=tmp_path / "b", pof=None, variants=None,
                              no_expressivity=True, from_json=tmp_path / "a" / "results.json",
                              budget_min=None)  # fmt: skip
    assert cli._tp_run(args) == 0
    assert (tmp_path / "b" / "report.md").read_text() == text


def test_coverage_helpers():
    from tensorproducts.bench.coverage import l_ranges, skip_kind

    assert l_ranges([8, 1, 2, 3, 5, 7]) == "1-3, 5, 7-8"
    assert skip_kind("time budget of the research run exhausted") == "budget"
    assert skip_kind("research worker: timeout (killed)") == "killed"
    assert skip_kind("research worker: Traceback ... ValueError") == "failed"
    assert skip_kind("not measured above L=5 (configured limit, see report)") == "limit"



def test_research_run_is_reported_skipped_when_absent(tmp_path):
    rows, meta = pof.run_pof(str(tmp_path / "nowhere"), {})
    assert {r["variant"] for r in rows} == {f"pof:{v}" for v in pof.POF_VARIANTS}
    assert all(r["skipped"].startswith("skipped: no PriceofFreedom checkout") for r in rows)


def test_quick_never_writes_over_the_full_report(capsys):
    from facet.cli import bench as cli

    args = argparse.Namespace(quick=True, out=cli.FULL_TP_DIR, pof=None, variants=None,
                              no_expressivity=True, from_json=None, budget_min=None)  # fmt: skip
    assert cli._tp_run(args) == 2
    assert "never writes over the full report" in capsys.readouterr().err
    assert "tp" in cli.SELECTIONS


def test_research_compile_limit_reaches_the_worker_and_the_command():
    """``--pof-max-compile-s`` goes into the research worker's config (its ``max_compile_s``)
    and into the recorded command; without it the worker keeps its default."""
    cfg = bench_main.tp_config(True, None, ["mimo"])
    args = argparse.Namespace(quick=True, pof="PATH", pof_variants="Matrix-TP", variants=None,
                              pof_budget_s=600.0, pof_max_compile_s=400.0, settings="mimo",
                              no_expressivity=True, budget_min=None, merge_into=None)  # fmt: skip
    plan, why = bench_main._research_plan(args, cfg, None, pof)
    assert why == "" and plan["max_compile_s"] == 400.0 and plan["variants"] == ["Matrix-TP"]
    assert "--pof-max-compile-s 400" in bench_main.tp_command(args)
    args.pof_max_compile_s = None
    plan, _ = bench_main._research_plan(args, cfg, None, pof)
    assert "max_compile_s" not in plan
    assert "--pof-max-compile-s" not in bench_main.tp_command(args)


def test_research_worker_runs_from_the_installed_package(tmp_path):
    """The research worker is started as ``python -m tensorproducts.bench.pof`` with the folder
    holding this package on its path: nothing is read from a source checkout's scripts/."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import tensorproducts

    env = pof.worker_env(str(tmp_path))
    path = env["PYTHONPATH"].split(os.pathsep)
    assert path == [str(tmp_path.resolve()), str(Path(tensorproducts.__file__).parent.parent)]
    out = subprocess.run([sys.executable, "-m", pof.WORKER_MODULE, "--help"], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "--pof" in out.stdout
