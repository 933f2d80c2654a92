"""ABBA-interleaved timing of ours beside the research code (tensorproducts.bench.pof_pairing),
used by the research worker of tensorproducts.bench.pof and by
tensorproducts.bench.pof_interleaved; the research code itself is replaced by stand-ins, so no
PriceofFreedom checkout is needed."""

from __future__ import annotations

import json
import sys
import time
import types
from pathlib import Path

import e3nn_jax as e3nn
import jax
import numpy as np
import pytest

from tensorproducts.bench import pof, pof_interleaved, pof_pairing

pp = pof_pairing


def test_abba_alternates_who_goes_first():
    order = pp.abba(6)
    assert order == [(0, 1), (1, 0)] * 3
    firsts = [o[0] for o in order]
    assert firsts.count(0) == firsts.count(1) == 3  # each side leads half of the rounds
    assert all(sorted(o) == [0, 1] for o in order)  # both sides run in every round


def test_summarise_median_and_iqr():
    s = pp.summarise([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s == {"median_ms": 3.0, "iqr_ms": 2.0, "n": 5}  # the outlier moves neither
    assert np.isclose(pp.summarise([5.0])["iqr_ms"], 0.0)


def _fake_pair(cost_a: float, cost_b: float):
    """Two callables of known cost on a fake clock (seconds), and the log of their calls."""
    now, log = [0.0], []

    def make(name, cost):
        def f():
            log.append(name)
            now[0] += cost

        return f

    return make("a", cost_a), make("b", cost_b), (lambda: now[0]), log


def test_interleave_calls_in_abba_order_and_times_each_side():
    fa, fb, clock, log = _fake_pair(0.003, 0.001)
    a, b, n = pp.interleave(fa, fb, 4, warmup=2, clock=clock)
    assert log == ["a", "a", "b", "b"] + ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert n == 4 and a["n"] == b["n"] == 4
    assert a["median_ms"] == pytest.approx(3.0) and b["median_ms"] == pytest.approx(1.0)
    # the same with the sides swapped: the times follow the callables, not the positions
    fa, fb, clock, _ = _fake_pair(0.001, 0.003)
    a, b, _ = pp.interleave(fa, fb, 4, warmup=0, clock=clock)
    assert a["median_ms"] < b["median_ms"]


def test_interleave_stops_adding_rounds_past_the_time_cap():
    fa, fb, clock, _ = _fake_pair(3.0, 1.0)  # 4 s a round
    assert pp.interleave(fa, fb, 15, warmup=0, max_s=20.0, min_rounds=5, clock=clock)[2] == 6
    fa, fb, clock, _ = _fake_pair(3.0, 1.0)
    assert pp.interleave(fa, fb, 15, warmup=0, max_s=1.0, min_rounds=5, clock=clock)[2] == 5
    fa, fb, clock, _ = _fake_pair(3.0, 1.0)
    assert pp.interleave(fa, fb, 15, warmup=0, clock=clock)[2] == 15  # no cap: every round


def test_interleave_times_with_the_monotonic_clock_by_default():
    # The timing logic is checked above on a fake clock (no assertion here depends on how long
    # a real sleep takes on a busy machine); by default it reads time.perf_counter.
    import inspect

    assert inspect.signature(pp.interleave).parameters["clock"].default is time.perf_counter


def _case(lmax=1, batch=8):
    ir = e3nn.s2_irreps(lmax)
    k = jax.random.split(jax.random.PRNGKey(0), 2)
    x, y = e3nn.normal(ir, k[0], (batch,)), e3nn.normal(ir, k[1], (batch,))
    return x, y, e3nn.s2_irreps(2 * lmax)


def test_paired_times_our_variant_beside_a_research_stand_in():
    x, y, out = _case()
    research = jax.jit(lambda a, b: e3nn.tensor_product(a, b, filter_ir_out=out))
    got = pp.paired(research, "cg-dense", "mimo", 1, x, y, out, rounds=3, max_s=30.0)
    assert set(got) == {"ours_median_ms", "ours_iqr_ms", "research_median_ms",
                        "research_iqr_ms", "rounds", "ours_flops"}  # fmt: skip
    assert got["rounds"] == 3 and got["ours_median_ms"] > 0 and got["ours_flops"] > 0
    # "vsh": the research side takes its own inputs, ours runs on the mimo irreps at that L
    vsh = pp.paired(research, "vector-gaunt-grid", "vsh", 1, x, y, out, rounds=2, max_s=30.0)
    assert vsh["rounds"] == 2, vsh
    # ours that cannot be built, is too slow, or is not requested: a reason, never an exception
    bad = pp.paired(research, "no-such-variant", "mimo", 1, x, y, out, rounds=3)
    assert bad["skipped"].startswith("failed: KeyError")
    slow = pp.paired(research, "cg-dense", "mimo", 1, x, y, out, rounds=3, max_call_s=0.0)
    assert slow["skipped"].startswith("ours too slow")
    assert "skipped" in pp.paired(research, "cg-dense", "mimo", 1, x, y, out, rounds=0)


def _stand_in_research(monkeypatch):
    """A fake ``freedom`` package: every research product is e3nn's tensor product."""

    def product(x, y, filter_ir_out=None, **_):
        return e3nn.tensor_product(x, y, filter_ir_out=filter_ir_out)

    functional = types.ModuleType("freedom.tensor_products.functional")
    for name in ("clebsch_gordan_tensor_product_dense", "clebsch_gordan_tensor_product_sparse",
                 "gaunt_tensor_product_s2grid", "gaunt_tensor_product_2D_fourier",
                 "matrix_tensor_product", "vector_gaunt_tensor_product_s2grid"):  # fmt: skip
        setattr(functional, name, product)
    vsh = types.ModuleType("freedom.tensor_products.vector_spherical_harmonics")
    vsh.VSHCoeffs = type("VSHCoeffs", (), {})
    tp = types.ModuleType("freedom.tensor_products")
    tp.functional, tp.vector_spherical_harmonics = functional, vsh
    freedom = types.ModuleType("freedom")
    freedom.tensor_products = tp
    for mod in (freedom, tp, functional, vsh):
        monkeypatch.setitem(sys.modules, mod.__name__, mod)


def test_worker_records_the_pair_on_every_research_row(monkeypatch, capsys):
    _stand_in_research(monkeypatch)
    # our side of Matrix-TP cannot be built: its research row stays, with the reason
    monkeypatch.setitem(pof.POF_VARIANTS, "Matrix-TP", "no-such-variant")
    config = {"settings": ["mimo"], "lmaxes": {"mimo": [1]}, "batch": {"1": 8}, "warmup": 1,
              "repeats": 2, "max_call_s": 30.0, "dtype": "float32", "paired_rounds": 3,
              "variants": ["CGTP-dense", "Matrix-TP"]}  # fmt: skip
    pof._worker(config, deadline=time.time() + 600)
    lines = [json.loads(s) for s in capsys.readouterr().out.splitlines() if s.startswith("{")]
    assert "3 rounds" in lines[0]["meta"]["paired"]
    rows = {r["variant"]: r for r in lines[1:]}
    assert set(rows) == {"pof:CGTP-dense", "pof:Matrix-TP"}
    dense = rows["pof:CGTP-dense"]
    assert dense["median_ms"] > 0 and dense["n_timed"] == 2  # its own timing, as before
    assert dense["paired"]["rounds"] == 3 and dense["paired"]["ours_median_ms"] > 0
    matrix = rows["pof:Matrix-TP"]
    assert matrix["median_ms"] > 0 and matrix["paired"]["skipped"].startswith("failed")


def test_interleaved_script_times_with_the_shared_pairing(monkeypatch):
    pi = pof_interleaved
    x, y, out = _case()
    a, b = pi.time_pair(lambda p, q: p.array * 2.0, lambda p, q: p.array + q.array, x, y, 3, 1)
    assert a["n"] == b["n"] == 3 and not hasattr(pi, "abba")  # no copy of the pairing logic


def test_report_paths_are_shown_relative_to_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert pof_interleaved._shown(tmp_path / "docs" / "x") == "docs/x"
    assert pof_interleaved._shown(Path("/elsewhere/x")) == "/elsewhere/x"
