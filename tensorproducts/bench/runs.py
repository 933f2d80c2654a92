"""Results of several benchmark runs in one file: run ids, merging, and which rows to compare.

A run (one ``facet bench tp`` invocation) stamps its id on every row, ours and the research
code's (``run``; the id starts with the UTC start time, so ids sort by time). A run that
measured only some settings (``--settings``, ``--variants``) can be merged into an earlier
result (``--merge-into``): :func:`merge` keeps every measured row of every run, drops a skipped
row when another run measured that case (and keeps only the newest skip of a case nobody
measured), and lists the runs with their options in ``runs``.

Rules for reading a merged result:

* **Tables and coverage** show one row per case, :func:`current`: the newest run's
  measurement, else the newest skip.
* **Comparisons** (acceptance checks, losses, slopes) never pair rows of different runs: they
  read pairs of one run (:func:`partner_index`, :func:`newest_pairs`) or the rows of one run
  (:func:`one_run`). A research row with a usable ``paired`` field (:func:`paired_times`: ours
  and the research code timed ABBA-interleaved in one process) is compared by that pair
  instead of our row of its run.
"""

from __future__ import annotations

__all__ = [
    "CASE",
    "MergeError",
    "case_key",
    "check_compatible",
    "current",
    "merge",
    "newest_pairs",
    "one_run",
    "paired_times",
    "partner_index",
    "research_settings",
    "run_of",
    "runs_of",
    "stamp",
]

CASE = ("variant", "setting", "L", "channels", "mode")  # what identifies a case
# configuration that must agree for rows of two runs to sit in one table
COMPARABLE = ("dtype", "batch", "edges", "warmup", "repeats", "seed", "max_call_s")


class MergeError(ValueError):
    """Two results that cannot be merged (the message names the file and the key)."""


def case_key(row: dict) -> tuple:
    return tuple(row.get(k, 1 if k == "channels" else None) for k in CASE)


def run_of(row: dict, default: str = "") -> str:
    return row.get("run") or default


def stamp(rows: list[dict], run_id: str | None) -> list[dict]:
    """``rows`` with ``run`` set to ``run_id`` where they carry none (results written before
    the research rows were stamped: they came from the same invocation as ``meta.run_id``)."""
    return [r if r.get("run") or not run_id else dict(r, run=run_id) for r in rows]


def paired_times(row: dict) -> tuple[float, float] | None:
    """``(ours, research)`` median ms of a research row's ``paired`` field: both timed in the
    research worker's process, ABBA-interleaved (:mod:`tensorproducts.bench.pof_pairing`); None
    when the row has none (results written before the worker paired) or ours was not timed
    there (``skipped``)."""
    p = row.get("paired") or {}
    if p.get("ours_median_ms") and p.get("research_median_ms") is not None:
        return p["ours_median_ms"], p["research_median_ms"]
    return None


_DEFAULTS = {"channels": 1, "mode": "fwd"}


def partner_index(row: dict, rows: list[dict], **over) -> int | None:
    """Index in ``rows`` of the first measured row of ``row``'s case and run with the fields
    ``over`` replaced (e.g. ``variant=...``): same setting, L, channels, mode and run (rows
    stamped, :func:`stamp`); None when there is none."""
    want = {k: row.get(k, _DEFAULTS.get(k)) for k in ("setting", "L", "channels", "mode", "run")}
    want.update(over)
    for i, x in enumerate(rows):
        if x.get("median_ms") is not None and all(
            x.get(k, _DEFAULTS.get(k)) == v for k, v in want.items()
        ):
            return i
    return None


def newest_pairs(cands: list[dict], rows: list[dict], partner) -> dict[tuple, tuple[int, int]]:
    """Per case of the measured rows ``cands``: ``(index in cands, index in rows)`` of the row
    and its partner from the newest run in which ``rows`` hold the partner (``partner(row)``: the
    fields that differ, e.g. its variant; the rest of the case and the run equal, as in
    :func:`partner_index`). Cases without a partner in any run are absent."""
    out: dict[tuple, tuple[int, int]] = {}
    for i, r in enumerate(cands):
        if r.get("median_ms") is None:
            continue
        j = partner_index(r, rows, **partner(r))
        k = case_key(r)
        if j is not None and (k not in out or run_of(r) > run_of(cands[out[k][0]])):
            out[k] = (i, j)
    return out


def current(rows: list[dict]) -> list[dict]:
    """One row per case: the newest run's measured row, else the newest row; input order kept."""
    best: dict[tuple, int] = {}
    for i, r in enumerate(rows):
        k = case_key(r)
        j = best.get(k)
        if j is None or _rank(r) >= _rank(rows[j]):
            best[k] = i
    keep = set(best.values())
    return [r for i, r in enumerate(rows) if i in keep]


def _rank(r: dict) -> tuple:
    return ("median_ms" in r, run_of(r))


def one_run(rows: list[dict], **match) -> list[dict]:
    """The rows matching ``match`` of the single run that measured most of them (ties: the
    newest), so that variants are compared within one run."""
    sel = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    counts: dict[str, int] = {}
    for r in sel:
        if "median_ms" in r:
            counts[run_of(r)] = counts.get(run_of(r), 0) + 1
    if not counts:
        return []
    run = max(counts, key=lambda k: (counts[k], k))
    return [r for r in sel if run_of(r) == run]


def research_settings(settings) -> list[str]:
    """The research run's settings for our ``settings``: the chosen ones of siso, simo, mimo,
    and ``vsh`` with mimo (its vector Gaunt product takes VSH coefficients, shown beside our
    mimo rows); ``edge`` has no research counterpart."""
    out = [s for s in ("siso", "simo", "mimo") if s in settings]
    return out + (["vsh"] if "mimo" in settings else [])


def runs_of(result: dict) -> list[dict]:
    """The runs of ``result``: its ``runs`` list, or one record built from ``meta``/``config``
    for a single-run result. Each record: ``run_id``, ``date_utc`` (end), ``wall_s``,
    ``load_average_at_start``, ``command``, ``options`` (the run-shaping options, or None when
    the run did not record them), ``config`` and ``pof`` (the research run's meta)."""
    if result.get("runs"):
        return result["runs"]
    meta = result.get("meta", {})
    run_id = meta.get("run_id") or next((r["run"] for r in result.get("rows", []) if r.get("run")),
                                        None)  # fmt: skip
    if run_id is None:
        return []
    pof_meta = {k: v for k, v in result.get("pof", {}).get("meta", {}).items()
                if not k.startswith("worker_error")}  # fmt: skip
    return [{
        "run_id": run_id,
        "date_utc": meta.get("date_utc"),
        "wall_s": meta.get("wall_s"),
        "load_average_at_start": meta.get("load_average_at_start"),
        "versions": {k: meta.get(k) for k in ("jax", "jaxlib", "e3nn_jax", "cpu", "cores")},
        "command": result.get("command", ""),
        "options": meta.get("options"),
        "config": result.get("config", {}),
        "pof": pof_meta,
    }]  # fmt: skip


def check_compatible(base_config: dict, new_config: dict, where: str) -> None:
    """Raise :class:`MergeError` when the two runs' batch sizes, dtype, edges, warm-up or
    repeats differ: their rows would then not be comparable side by side in one table."""
    for key in COMPARABLE:
        a, b = base_config.get(key), new_config.get(key)
        if key == "batch" and a is not None and b is not None:
            a = {str(k): v for k, v in a.items()}
            b = {str(k): v for k, v in b.items()}
        if a is not None and b is not None and a != b:
            raise MergeError(
                f"{where}: cannot merge: config key {key!r} differs ({a!r} in the file, {b!r} in "
                "this run), so its rows would not be comparable; write to another --out instead"
            )


def merge(base: dict, new: dict, where: str = "results.json") -> dict:
    """``new`` merged into ``base`` (neither is modified): rows of both runs, each with its run
    id; a skipped row is dropped when a run measured that case; ``runs`` lists every run."""
    check_compatible(base.get("config", {}), new.get("config", {}), where)
    base_runs, new_runs = runs_of(base), runs_of(new)
    old_ids = {r["run_id"] for r in base_runs}
    for r in new_runs:
        if r["run_id"] in old_ids:
            raise MergeError(f"{where}: run {r['run_id']} is already in the file")
    base_id = base_runs[-1]["run_id"] if len(base_runs) == 1 else None
    new_id = new_runs[-1]["run_id"] if new_runs else None
    rows = _prune(stamp(base.get("rows", []), base_id) + stamp(new.get("rows", []), new_id))
    pof_rows = _prune(
        stamp(base.get("pof", {}).get("rows", []), base_id)
        + stamp(new.get("pof", {}).get("rows", []), new_id)
    )
    out = dict(new, rows=rows, runs=base_runs + new_runs)
    out["pof"] = dict(new.get("pof", {}), rows=pof_rows)
    if not new.get("expressivity") and base.get("expressivity"):
        out["expressivity"] = base["expressivity"]
    out.pop("slopes", None)  # recomputed by the report
    return out


def _prune(rows: list[dict]) -> list[dict]:
    """Keep every measured row; of a case with none measured, keep only the newest skip."""
    measured = {case_key(r) for r in rows if "median_ms" in r}
    newest: dict[tuple, int] = {}
    for i, r in enumerate(rows):
        if "median_ms" not in r and case_key(r) not in measured:
            j = newest.get(case_key(r))
            if j is None or run_of(r) >= run_of(rows[j]):
                newest[case_key(r)] = i
    keep = set(newest.values())
    return [r for i, r in enumerate(rows) if "median_ms" in r or i in keep]
