"""`facet bench tp` options: recorded in the result, partial runs merged into an earlier file.

The runs here have a time budget that is spent before the first case (``--budget-min 1e-9``),
so they measure nothing and compile nothing: what is tested is the bookkeeping (options, run
ids, merging, coverage counts, the completion command), not timings.
"""

from __future__ import annotations

import argparse
import json
import os

import pytest

from facet.cli import bench as cli
from tensorproducts.bench import pof
from tensorproducts.bench.runs import MergeError, case_key, current, merge


def _args(**kw) -> argparse.Namespace:
    base = dict(quick=True, out=None, pof=None, pof_budget_s=None, pof_variants=None,
                variants=None, settings=None, merge_into=None, no_expressivity=True,
                from_json=None, budget_min=1e-9)  # fmt: skip
    return argparse.Namespace(**dict(base, **kw))


def test_options_recorded_and_partial_runs_merged(tmp_path, capsys):
    a = tmp_path / "a"
    first = _args(out=a, settings="mimo", variants="cg-dense,e3nn", pof=str(tmp_path / "none"),
                  pof_budget_s=5.0)  # fmt: skip
    assert cli._tp_run(first) == 0
    res = json.loads((a / "results.json").read_text())
    opts = res["meta"]["options"]
    assert opts["budget_min"] == 1e-9 and opts["pof_budget_s"] == 5.0
    assert opts["settings"] == ["mimo"] and opts["variants"] == ["cg-dense", "e3nn"]
    assert res["command"] == (
        "facet bench tp --quick --settings mimo --variants cg-dense,e3nn --budget-min 1e-09 "
        "--pof PATH --pof-budget-s 5 --no-expressivity"
    )
    assert {r["setting"] for r in res["rows"]} == {"mimo"}
    # the research rows carry the run id of the invocation, like ours
    run_a = res["meta"]["run_id"]
    assert res["pof"]["rows"] and all(r["run"] == run_a for r in res["pof"]["rows"])
    assert res["pof"]["meta"]["budget_s"] == 5.0
    text = (a / "report.md").read_text()
    assert "--budget-min 1e-09; --pof-budget-s 5" in text  # budgets stated, not "not recorded"
    # mimo: 2 variants x L 1-3 forward, x L 2 forward+backward, all cut by the spent budget
    assert "- ours, **mimo fwd**: none of 6 measured; 6 cut by the time budget." in text

    second = _args(settings="edge", merge_into=a / "results.json")
    assert cli._tp_run(second) == 0
    merged = json.loads((a / "results.json").read_text())
    run_b = merged["runs"][-1]["run_id"]
    assert [r["run_id"] for r in merged["runs"]] == [run_a, run_b] and run_b > run_a
    # a path of this machine is not recorded (reports are committed)
    assert merged["runs"][-1]["options"]["merge_into"] == "FILE"
    assert merged["runs"][-1]["command"].endswith(
        "--settings edge --budget-min 1e-09 --no-expressivity --merge-into FILE"
    )
    assert {r["run"] for r in merged["rows"] if r["setting"] == "edge"} == {run_b}
    assert {r["run"] for r in merged["rows"] if r["setting"] == "mimo"} == {run_a}
    text = (a / "report.md").read_text()
    assert "2 runs merged" in text and "- ours, **mimo fwd**: none of 6 measured" in text
    # edge: every registered variant and the two baselines at C=16 forward and forward+backward
    edge = [r for r in current(merged["rows"]) if r["setting"] == "edge"]
    assert len(edge) == len({r["variant"] for r in edge}) * 2
    assert f"- ours, **edge fwd**: none of {len(edge) // 2} measured" in text
    # both settings were cut, so the completion command names both and merges into the file
    assert "facet bench tp --settings mimo,edge --merge-into docs/benchmarks/tp/results.json" in (
        text
    )
    # a later run that measures a case drops the earlier skip of it; a skip never hides a
    # measurement
    skip = dict(merged["rows"][0])
    timed = {k: v for k, v in skip.items() if k != "skipped"}
    timed.update(run="9999-late", median_ms=1.0, iqr_ms=0.0)
    again = merge(merged, {"meta": {"run_id": "9999-late"}, "config": merged["config"],
                           "rows": [timed]})  # fmt: skip
    same = [r for r in again["rows"] if case_key(r) == case_key(skip)]
    assert same == [timed]
    late = dict(skip, run="99999-later")
    kept = merge(again, {"meta": {"run_id": "99999-later"}, "config": merged["config"],
                         "rows": [late]})  # fmt: skip
    assert timed in kept["rows"] and late not in kept["rows"]
    capsys.readouterr()


def test_merge_refuses_incomparable_runs_and_bad_options(tmp_path, capsys):
    a = tmp_path / "a"
    assert cli._tp_run(_args(out=a, settings="edge", variants="cg-dense")) == 0
    capsys.readouterr()
    # a full run has other batch sizes than --quick: its rows would not be comparable
    full = _args(quick=False, settings="edge", merge_into=a / "results.json")
    assert cli._tp_run(full) == 2
    err = capsys.readouterr().err
    assert str(a / "results.json") in err and "'batch' differs" in err
    assert cli._tp_run(_args(out=a, settings="edge,corner")) == 2
    assert "unknown setting(s) ['corner']" in capsys.readouterr().err
    assert cli._tp_run(_args(out=a, variants="cg-dense,cg-fast")) == 2
    assert "unknown variant(s) ['cg-fast']" in capsys.readouterr().err
    # a misspelt research variant is refused before our cases run, not after
    assert cli._tp_run(_args(out=a, pof="x", pof_variants="GTP-grid,GTP-sphere")) == 2
    assert "unknown research variant(s) ['GTP-sphere']" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{")
    assert cli._tp_run(_args(merge_into=tmp_path / "bad.json")) == 2
    assert "bad.json: not a JSON results file" in capsys.readouterr().err
    res = json.loads((a / "results.json").read_text())
    with pytest.raises(MergeError, match="already in the file"):
        merge(res, res)


def test_research_vector_gaunt_is_planned_on_vsh_inputs_only():
    assert pof.APPLIES["VGTP-grid"] == ("vsh",)
    assert all(pof.APPLIES[v] == ("siso", "simo", "mimo") for v in pof.POF_VARIANTS if v[0] != "V")
    # a killed worker's missing cases: cut where the variant applies, n/a on s2 inputs for VGTP,
    # and nothing for the other variants in the VSH setting
    cut = pof.accounted("VGTP-grid", "vsh", 3, "research worker: timeout (killed)")
    assert cut["ours_setting"] == "mimo" and cut["skipped"].startswith("research worker")
    na = pof.accounted("VGTP-grid", "mimo", 3, "research worker: timeout (killed)")
    assert na["skipped"] == pof.NEEDS_VSH
    assert pof.accounted("GTP-grid", "vsh", 3, "x") is None
    from tensorproducts.bench.coverage import skip_kind
    from tensorproducts.bench.runs import research_settings

    assert skip_kind(pof.NEEDS_VSH) == "n/a"
    assert research_settings(("mimo", "edge")) == ["mimo", "vsh"]
    assert research_settings(("edge",)) == []
    with pytest.raises(ValueError, match="unknown research variant"):
        pof.check_variants(["GTP-grid", "GTP-sphere"])


@pytest.mark.slow
def test_research_vector_gaunt_runs_on_vsh_inputs():
    """With a PriceofFreedom checkout (``FACET_POF_CHECKOUT``): its vector Gaunt product is
    timed on VSH-coefficient inputs and is equivariant (rotation and inversion) to float32
    round-off; its rows sit beside our mimo rows."""
    checkout = os.environ.get("FACET_POF_CHECKOUT")
    if not checkout:
        pytest.skip("set FACET_POF_CHECKOUT to a PriceofFreedom checkout")
    config = {"settings": ["mimo", "vsh"], "lmaxes": {"mimo": [1], "vsh": [1]},
              "batch": {"1": 16}, "warmup": 1, "repeats": 2, "max_call_s": 30.0,
              "dtype": "float32", "variants": ["VGTP-grid"]}  # fmt: skip
    rows, meta = pof.run_pof(checkout, config, budget_s=1800.0, log=lambda *_: None)
    assert meta["budget_s"] == 1800.0
    (vsh,) = [r for r in rows if r["setting"] == "vsh"]
    assert "median_ms" in vsh, vsh.get("skipped")
    assert vsh["ours_setting"] == "mimo" and vsh["equivariance_error"] < 1e-5
    (mimo,) = [r for r in rows if r["setting"] == "mimo"]
    assert mimo["skipped"].startswith("needs VSH")
