"""``facet bench train --quick`` with a supplementary recorded run (``train/facet_m/``).

Checked through the real command line on tiny recorded runs: a model that failed in the main run
is taken from the supplement where it is ok (its numbers, its ``source`` and index, the main
run's failure under ``replaces``, the supplement's note in meta and report), the rows the main
run measured keep the main run's numbers, and the summary compares the replaced Facet row with
the MACE row of the SAME supplementary run (a loss reported as a loss: ratio 4 here, not the
2 that mixing runs would give). A model failed in every run stays failed, with each run's
reason, and the selection exits 1; an unreadable supplement is named in the report.
"""

from __future__ import annotations

import json

import pytest

from facet.bench import summary
from facet.cli import main

MAIN = {
    "command": "python scripts/bench_train_peers.py --rounds 2",
    "note": "facet-m was OOM-killed",
    "summary": [
        {"trainer": "facet", "model": "facet-s", "status": "ok", "params": 250,
         "structures_per_cpu_s": 8.0, "ratio_vs_mace_structures_per_cpu_s": 2.0},
        {"trainer": "mace", "model": "mace-small", "status": "ok", "params": 1200,
         "structures_per_cpu_s": 4.0},
        {"trainer": "facet", "model": "facet-m", "blocks": 0,
         "status": "failed: Facet block facet-m failed (exit -9):"},
        {"trainer": "mace", "model": "mace-medium", "status": "ok", "params": 1600,
         "structures_per_cpu_s": 1.0},
    ],
}  # fmt: skip
SUPPLEMENT = {
    "command": "python scripts/bench_train_peers.py --presets facet-m --rounds 1",
    "note": "facet-m alone on a quiet machine",
    "summary": [
        {"trainer": "facet", "model": "facet-m", "status": "ok", "params": 1000,
         "structures_per_cpu_s": 0.5, "peak_rss_mb": 5600.0,
         "ratio_vs_mace_structures_per_cpu_s": 0.25},
        {"trainer": "mace", "model": "mace-medium", "status": "ok", "params": 1600,
         "structures_per_cpu_s": 2.0},
    ],
}  # fmt: skip
SUPPLEMENT_PATH = "train/facet_m/train_peers.json"


def _root(tmp_path, supplement):
    files = {"train/train_peers.json": MAIN}
    if supplement is not None:
        files[SUPPLEMENT_PATH] = supplement
    for rel, obj in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(json.dumps(obj))
    return tmp_path


def _rows(root):
    res = json.loads((root / "quick" / "train" / "results.json").read_text())
    return res, {r["model"]: r for r in res["rows"]}


def test_failed_main_row_taken_from_the_supplement(tmp_path):
    root = _root(tmp_path, SUPPLEMENT)
    assert main(["bench", "train", "--quick", "--root", str(root)]) == 0
    res, rows = _rows(root)
    fm = rows["facet-m"]
    assert fm["status"] == "ok" and fm["source"] == str(root / SUPPLEMENT_PATH)
    assert fm["source_index"] == 0 and fm["structures_per_cpu_s"] == 0.5 and fm["params"] == 1000
    assert fm["ratio_vs_mace_structures_per_cpu_s"] == 0.25
    assert fm["replaces"].startswith("failed: Facet block facet-m failed (exit -9):")
    assert fm["paired"] == {"model": "mace-medium", "source_index": 1, "params": 1600,
                            "structures_per_cpu_s": 2.0}  # fmt: skip
    for m, i in (("facet-s", 0), ("mace-small", 1), ("mace-medium", 3)):  # main run's rows
        assert rows[m]["source"] == str(root / "train/train_peers.json")
        assert rows[m]["structures_per_cpu_s"] == MAIN["summary"][i]["structures_per_cpu_s"]
    (sup,) = res["meta"]["supplements"]
    assert sup["models"] == ["facet-m"] and sup["note"] == SUPPLEMENT["note"]
    assert sup["command"] == SUPPLEMENT["command"]
    text = (root / "quick" / "train" / "report.md").read_text()
    assert str(root / SUPPLEMENT_PATH) in text and "facet-m alone on a quiet machine" in text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("| facet | facet-m |")]
    assert line.rstrip().endswith("| 0.25 | supplement |")
    assert "same-run mace-medium: 2 structures per CPU-s" in text

    page = summary.write_page(root / "quick", command="facet bench summary --quick", date="now")
    found = {f["what"]: f for f in summary.build(root / "quick")["findings"]["train"]}
    what = f"facet-m vs mace-medium (both from the supplementary run {root / SUPPLEMENT_PATH})"
    thr = found[f"{what}, structures per CPU-s (higher is better)"]
    assert (thr["facet"], thr["peer_value"]) == (0.5, 2.0)
    assert thr["ratio"] == pytest.approx(4.0)  # Facet's cost per structure: 4x MACE's
    assert found[what]["ratio"] == pytest.approx(1000 / 1600)  # parameters, same run
    assert found["facet-s vs mace-small, structures per CPU-s (higher is better)"][
        "ratio"
    ] == pytest.approx(0.5)
    loses = page.read_text().split("Where Facet loses:")[1]
    assert f"{what}, structures per CPU-s (higher is better): 0.5 vs 2" in loses


@pytest.mark.parametrize("supplement", ["failed", "absent"])
def test_row_failed_everywhere_stays_failed(tmp_path, supplement):
    sup = None
    if supplement == "failed":
        sup = json.loads(json.dumps(SUPPLEMENT))
        sup["summary"][0] = {"trainer": "facet", "model": "facet-m", "status": "failed: exit -9"}
    root = _root(tmp_path, sup)
    assert main(["bench", "train", "--quick", "--root", str(root)]) == 1
    res, rows = _rows(root)
    fm = rows["facet-m"]
    assert fm["status"].startswith("failed: Facet block facet-m failed (exit -9):")
    assert fm["source"] == str(root / "train/train_peers.json") and "replaces" not in fm
    (meta_sup,) = res["meta"]["supplements"]
    text = (root / "quick" / "train" / "report.md").read_text()
    if supplement == "failed":
        assert fm["status"].endswith(f"; {root / SUPPLEMENT_PATH}: failed: exit -9")
        assert meta_sup["models"] == []
    else:
        assert meta_sup["status"].startswith("skipped: no recorded run")
        assert f"Supplementary run `{root / SUPPLEMENT_PATH}` not used: skipped" in text
    notes = [f["note"] for f in summary.build(root / "quick")["findings"]["train"] if "note" in f]
    assert any(n.startswith("not compared (facet-m: failed:") for n in notes)
