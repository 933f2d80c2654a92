"""The summary page: every number equals the JSON it came from; verdicts follow the ratios.

Checked on a synthetic root with known values (ratios and verdicts computed by hand, a skipped
peer and a missing accuracy run reported with reasons, "where Facet loses" lists the losses) and
on the committed reports in docs/benchmarks (every reference resolves to the quoted value, read
independently from the JSON file).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from facet.bench import summary

ROOT = Path(__file__).resolve().parents[2]


def _write(root: Path, rel: str, obj) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj))


def _dyn_row(task, model, size, time_s, steps=10, warmup=False):
    return {"task": task, "model": model, "size": size, "rep": 0, "warmup": warmup,
            "time_s": time_s, "steps": steps}  # fmt: skip


@pytest.fixture()
def fake_root(tmp_path):
    rows = [
        _dyn_row("relax_step", "facet-s", 64, 99.0, warmup=True),  # warm-up: excluded
        _dyn_row("relax_step", "facet-s", 64, 2.0),
        _dyn_row("relax_step", "facet-s", 64, 4.0),
        _dyn_row("relax_step", "mace-mp0-small", 64, 1.0),
        _dyn_row("relax_step", "mace-mp0-medium", 64, 6.0),
        _dyn_row("converge", "facet-s", 0, 0.5, steps=50),
        _dyn_row("converge", "chgnet-0.3.0", 0, 0.4, steps=20),
    ]
    info = {"skipped": {"sevennet-0": "no python for peer 'sevenn'"}}
    _write(tmp_path, "dynamics/results.json", {"info": info, "rows": rows})
    summ = [{"trainer": "facet", "model": "facet-s", "status": "ok", "params": 100,
             "structures_per_cpu_s": 2.0},
            {"trainer": "mace", "model": "mace-small", "status": "ok", "params": 400,
             "structures_per_cpu_s": 5.0}]  # fmt: skip
    _write(tmp_path, "train/train_peers.json", {"summary": summ})
    return tmp_path


def _by_what(res):
    return {f["what"]: f for fs in res["findings"].values() for f in fs if "what" in f}


def test_known_ratios_and_verdicts(fake_root):
    res = summary.build(fake_root)
    f = _by_what(res)
    r = f["facet-s vs mace-mp0-small, 64 atoms"]
    assert r["facet"] == pytest.approx(0.3) and r["peer_value"] == pytest.approx(0.1)
    assert r["ratio"] == pytest.approx(3.0)  # median of 0.2 and 0.4 per step, warm-up excluded
    assert f["facet-s vs mace-mp0-medium, 64 atoms"]["ratio"] == pytest.approx(0.5)
    conv = f["facet-s vs chgnet-0.3.0, median over structures"]
    assert conv["ratio"] == pytest.approx((0.5 / 50) / (0.4 / 20))
    train = f["facet-s vs mace-small, structures per CPU-s (higher is better)"]
    assert train["ratio"] == pytest.approx(2.5)  # rates: Facet's cost = peer rate / Facet rate
    assert f["facet-s vs mace-small"]["ratio"] == pytest.approx(0.25)  # parameters
    notes = [n["note"] for fs in res["findings"].values() for n in fs if "note" in n]
    assert "skipped: no python for peer 'sevenn'" in notes
    assert any("no recorded run" in n for n in notes)  # accuracy absent
    assert set(res["missing"]) == {"tp", "model", "scaling"}


def test_page_states_numbers_and_losses(fake_root):
    text = summary.write_page(fake_root, command="facet bench summary", date="today").read_text()
    assert "3.00x: **Facet behind**" in text and "0.50x: **Facet ahead**" in text
    loses = text.split("Where Facet loses:")[1].split("##")[0]
    assert "facet-s vs mace-mp0-small, 64 atoms: 300 vs 100 ms (3.00x)" in loses
    assert "facet-s vs mace-small, structures per CPU-s (higher is better): 2 vs 5" in loses
    assert "mace-mp0-medium" not in loses
    assert "skipped: no python for peer 'sevenn'" in text
    stored = json.loads((fake_root / "summary.json").read_text())
    assert stored["findings"]["dynamics"][0]["refs"]["facet"]["where"]["model"] == "facet-s"


def _independent(root: Path, ref: dict):
    data = json.loads((root / ref["file"]).read_text())
    if "path" in ref:
        for k in ref["path"]:
            data = data[k]
        return data
    vals = []
    for r in data[ref["rows"]]:
        if r.get("warmup") or any(r.get(k) != v for k, v in ref["where"].items()):
            continue
        vals.append(r[ref["num"]] / (r[ref["den"]] if ref.get("den") else 1))
    return statistics.median(vals)


def test_committed_summary_numbers_equal_their_json(tmp_path):
    """Every number of the page generated from docs/benchmarks equals its JSON (read anew)."""
    import shutil

    root = tmp_path / "benchmarks"
    shutil.copytree(ROOT / "docs" / "benchmarks", root, ignore=shutil.ignore_patterns("quick"))
    text = summary.write_page(root, command="facet bench summary", date="now").read_text()
    res = json.loads((root / "summary.json").read_text())
    assert not res["errors"], res["errors"]
    comps = [f for fs in res["findings"].values() for f in fs if "refs" in f]
    assert len(comps) >= 5
    for f in comps:
        assert f["facet"] == _independent(root, f["refs"]["facet"]), f["what"]
        assert f["peer_value"] == _independent(root, f["refs"]["peer"]), f["what"]
        want = (f["peer_value"] / f["facet"] if f["higher_is_better"]
                else f["facet"] / f["peer_value"])  # fmt: skip
        assert f["ratio"] == pytest.approx(want, rel=1e-12)
        key = f"| {f['axis']} | {f['peer']} | {f['what']} |"
        (line,) = [ln for ln in text.splitlines() if ln.startswith(key)]
        cells = [c.strip() for c in line.split("|")]
        assert cells[4] == summary._cell(f["facet"], f["scale"])
        assert cells[5] == summary._cell(f["peer_value"], f["scale"])


def _tp_row(variant, L, ms, run):
    return {"variant": variant, "setting": "mimo", "mode": "fwd", "L": L, "channels": 1,
            "median_ms": ms, "run": run}  # fmt: skip


def test_tp_ratios_pair_rows_of_one_run(tmp_path):
    """A merged tp results.json (several runs): every ratio uses two rows of the same run, the
    newest that measured both; a newer run's lone row never pairs with an older run's row."""
    a, b = "2026-01-01T00:00:00Z-1", "2026-02-01T00:00:00Z-2"
    rows = [
        _tp_row("cg-dense", 2, 1.0, a), _tp_row("e3nn", 2, 4.0, a),
        _tp_row("gaunt-grid", 2, 2.0, a),
        _tp_row("cg-dense", 5, 3.0, a), _tp_row("e3nn", 5, 6.0, a),
        _tp_row("e3nn", 2, 100.0, b),  # run B re-measured e3nn only: no partner in B
        _tp_row("cg-dense", 5, 1.5, b), _tp_row("e3nn", 5, 6.0, b),  # newest pair at L=5
    ]  # fmt: skip
    pof = [
        {"variant": "GTP-grid", "ours": "gaunt-grid", "setting": "mimo", "mode": "fwd", "L": 2,
         "median_ms": 8.0, "run": a},
        {"variant": "CGTP-dense", "ours": "cg-dense", "setting": "mimo", "mode": "fwd", "L": 2,
         "median_ms": 3.0, "run": b},  # ours at L=2 in run B is missing: not compared
    ]  # fmt: skip
    _write(tmp_path, "tp/results.json", {"meta": {"run_id": a}, "rows": rows,
                                         "pof": {"rows": pof}})  # fmt: skip
    f = _by_what(summary.build(tmp_path))
    assert f["cg-dense vs e3nn.tensor_product at L=2"]["ratio"] == pytest.approx(0.25)
    assert f["gaunt-grid vs e3nn.tensor_product at L=2"]["ratio"] == pytest.approx(0.5)
    assert f["cg-dense vs e3nn.tensor_product at L=5"]["ratio"] == pytest.approx(0.25)
    assert f["gaunt-grid vs GTP-grid at L=2 (largest L both ran)"]["ratio"] == pytest.approx(0.25)
    assert not any("CGTP-dense" in w for w in f)


def _pof_row(variant, ours, L, ms, run, paired=None):
    r = {"variant": variant, "ours": ours, "setting": "mimo", "mode": "fwd", "L": L,
         "median_ms": ms, "run": run}  # fmt: skip
    return r | ({"paired": paired} if paired is not None else {})


def _pair(ours_ms, research_ms):
    return {"ours_median_ms": ours_ms, "ours_iqr_ms": 0.1, "research_median_ms": research_ms,
            "research_iqr_ms": 0.1, "rounds": 40}  # fmt: skip


def test_tp_research_rows_use_their_interleaved_pair(tmp_path):
    """A research row with a usable ``paired`` field is compared by that pair (ours and the
    research code timed ABBA-interleaved in one process), referenced at its path, and counts as
    "both ran" without a row of ours in its run; a row without one (or with a skipped pair) is
    compared with our row of its run as before."""
    a = "2026-01-01T00:00:00Z-1"
    rows = [
        _tp_row("cg-dense", 2, 3.0, a), _tp_row("e3nn", 2, 6.0, a),
        _tp_row("gaunt-grid", 2, 1.0, a), _tp_row("gaunt-grid", 4, 2.0, a),
        _tp_row("cg-dense", 4, 10.0, a),
    ]  # fmt: skip
    pof = [
        # cross-row: ours 3.0 vs 6.0; the pair says 2.0 vs 5.0
        _pof_row("CGTP-dense", "cg-dense", 2, 6.0, a, _pair(2.0, 5.0)),
        # L=6: no cg-dense row at L=6, but the worker timed both: the largest L both ran
        _pof_row("CGTP-sparse", "cg-dense", 4, 12.0, a),
        _pof_row("CGTP-sparse", "cg-dense", 6, 30.0, a, _pair(20.0, 40.0)),
        # a skipped pair is no pair: cross-row, at the largest L with our row (L=4, 2.0 vs 8.0)
        _pof_row("GTP-grid", "gaunt-grid", 2, 4.0, a),
        _pof_row("GTP-grid", "gaunt-grid", 4, 8.0, a, {"skipped": "ours failed"}),
    ]
    _write(tmp_path, "tp/results.json", {"meta": {"run_id": a}, "rows": rows,
                                         "pof": {"rows": pof}})  # fmt: skip
    summary.write_page(tmp_path, command="facet bench summary", date="now")
    res = json.loads((tmp_path / "summary.json").read_text())
    f = _by_what(res)
    dense = f["cg-dense vs CGTP-dense at L=2 (largest L both ran; interleaved)"]
    assert (dense["facet"], dense["peer_value"]) == (2.0, 5.0)
    assert dense["ratio"] == pytest.approx(0.4)
    assert dense["refs"]["facet"]["path"] == ["pof", "rows", 0, "paired", "ours_median_ms"]
    assert dense["refs"]["peer"]["path"] == ["pof", "rows", 0, "paired", "research_median_ms"]
    sparse = f["cg-dense vs CGTP-sparse at L=6 (largest L both ran; interleaved)"]
    assert (sparse["facet"], sparse["peer_value"], sparse["ratio"]) == (20.0, 40.0, 0.5)
    grid = f["gaunt-grid vs GTP-grid at L=4 (largest L both ran)"]
    assert (grid["facet"], grid["peer_value"], grid["ratio"]) == (2.0, 8.0, 0.25)
    assert grid["refs"]["facet"]["path"] == ["rows", 3, "median_ms"]
    assert grid["refs"]["peer"]["path"] == ["pof", "rows", 4, "median_ms"]
    research = [w for w in f if f[w]["peer"] == "PriceofFreedom research code"]
    assert len(research) == 3
    for w in research:  # every number equals the JSON value its reference names
        for side, key in (("facet", "facet"), ("peer", "peer_value")):
            assert f[w][key] == _independent(tmp_path, f[w]["refs"][side]), w
