"""Acceptance checks against the research code read the interleaved pair of a research row
(its ``paired`` field, timed in one process) over the cross-row pairing with our row."""

from __future__ import annotations

from tensorproducts.bench import verdicts as bv

RUN = "2025-01-01T00:00:00Z-1"
TITLE = "cg-dense at least as fast as the research implementation"


def _result(research_ms: float, paired: dict | None, ours_ms: float | None = 1.0) -> dict:
    """Our cg-dense (mimo, L=2) at ``ours_ms`` (None: no row of ours) and the research row at
    ``research_ms``, with equal XLA FLOPs; ``paired``: its interleaved pair, if any."""
    case = {"setting": "mimo", "L": 2, "channels": 1, "mode": "fwd", "run": RUN}
    ours = dict(case, variant="cg-dense", median_ms=ours_ms, iqr_ms=0.01, flops=100.0)
    research = dict(case, variant="pof:CGTP-dense", ours="cg-dense", median_ms=research_ms,
                    iqr_ms=0.01, flops=100.0)  # fmt: skip
    if paired is not None:
        research["paired"] = paired
    rows = [ours] if ours_ms is not None else []
    return {"meta": {"run_id": RUN}, "rows": rows, "pof": {"meta": {}, "rows": [research]}}


def _pair(ours_ms: float, research_ms: float) -> dict:
    return {"ours_median_ms": ours_ms, "ours_iqr_ms": 0.02, "research_median_ms": research_ms,
            "research_iqr_ms": 0.03, "rounds": 15, "ours_flops": 100.0}  # fmt: skip


def _check(result) -> tuple[str, str]:
    got = {c: (m, v) for c, m, v in bv.checks(result)}
    return got[TITLE]


def test_paired_ratio_overrides_the_cross_row_one():
    # across rows the research code looks twice as fast; timed interleaved, ours is faster
    m, v = _check(_result(0.5, _pair(1.0, 1.2)))
    assert v == "yes" and "min 1.20x over 1 cases (1 interleaved;" in m
    # and vice versa: across rows ours looks twice as fast, interleaved it is slower
    m, v = _check(_result(2.0, _pair(1.0, 0.8)))
    assert v == "NO: mimo L=2 (0.80x)" and "(1 interleaved;" in m
    # a pair needs no row of ours in the run: the worker timed ours beside it
    m, v = _check(_result(0.5, _pair(1.0, 1.2), ours_ms=None))
    assert v == "yes" and "without a row of ours" not in m


def test_rows_without_a_pair_keep_the_cross_row_comparison():
    for paired in (None, {"skipped": "failed: KeyError: 'x'"}):
        m, v = _check(_result(0.5, paired))
        assert v == "NO: mimo L=2 (0.50x)" and "over 1 cases (0 interleaved;" in m
    assert bv.paired_ratio({"paired": {"skipped": "x"}}) is None
    assert bv.paired_ratio({"paired": _pair(2.0, 1.0)}) == 0.5
    got = {c: (m, v) for c, m, v in bv.checks(_result(0.5, None, ours_ms=None))}
    m, v = got["cg-dense vs research implementation"]
    assert v == "n/a" and "1 without a row of ours in their run" in m


def test_losses_say_not_interleaved_only_for_unpaired_losses():
    drift = "not interleaved"
    unpaired = "\n".join(bv._versus_research(_result(0.5, None)))
    assert "slower in 1 of 1 cases: mimo L=2 (research/ours time 0.50, XLA FLOPs ours/research " \
        "1.00)" in unpaired and drift in unpaired  # fmt: skip
    paired = "\n".join(bv._versus_research(_result(2.0, _pair(1.0, 0.8))))
    assert "slower in 1 of 1 cases (1 interleaved): mimo L=2 (research/ours time 0.80, XLA " \
        "FLOPs ours/research 1.00, interleaved)" in paired  # fmt: skip
    assert drift not in paired and "alternating call by call (ABBA)" in paired
    # the cross-row loss that the pair shows to be drift is no loss at all
    won = "\n".join(bv._versus_research(_result(0.5, _pair(1.0, 1.2))))
    assert "not slower in any of the 1 cases (1 interleaved)" in won and drift not in won
