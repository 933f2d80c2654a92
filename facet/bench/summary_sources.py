"""The extractors of the summary page: one per report, each returning findings and notes.

See :mod:`facet.bench.summary_refs` for the reference format and the meaning of ``ratio``;
:data:`EXTRACTORS` (at the end) is the table :mod:`facet.bench.summary` reads, in page order.
"""

from __future__ import annotations

from pathlib import Path

from tensorproducts.bench.runs import newest_pairs, paired_times, partner_index, run_of, stamp

from .common import fmt, read_json
from .summary_refs import finding, note, resolve


def _is_quick(root: Path) -> bool:
    return Path(root).name == "quick"


def _tp(root: Path) -> list[dict]:
    f = "tp/results.json"
    data, cache = read_json(root / f, "tp rows"), {}
    # A merged results.json holds rows of several runs (tensorproducts.bench.runs): a ratio
    # pairs two rows of one run only, the newest run that measured both (stamping keeps the
    # indices, which the references below point at).
    run0 = data.get("meta", {}).get("run_id", "")
    rows = stamp(data.get("rows", []), run0)
    with_e3nn = newest_pairs(rows, rows, lambda r: {"variant": "e3nn"})

    def mimo_fwd(v: str, L: int) -> tuple:
        return (v, "mimo", L, 1, "fwd")

    out = []
    mimo = sorted({k[2] for k in with_e3nn if k == mimo_fwd("cg-dense", k[2])})
    for L in (mimo[:1] + mimo[-1:]) if len(mimo) > 1 else mimo:
        for ours in ("cg-dense", "gaunt-grid"):
            if mimo_fwd(ours, L) not in with_e3nn:
                continue
            i_ours, i_e3nn = with_e3nn[mimo_fwd(ours, L)]
            out.append(
                finding(
                    "tensor product (mimo forward, ms per batch)",
                    "e3nn-jax tensor_product",
                    f"{ours} vs e3nn.tensor_product at L={L}",
                    {"file": f, "path": ["rows", i_ours, "median_ms"]},
                    {"file": f, "path": ["rows", i_e3nn, "median_ms"]},
                    root,
                    "ms",
                    cache=cache,
                )
            )
    # the research code against ours at the largest L both ran: the pair timed interleaved in
    # the research worker (its ``paired`` field) where the row has one, else our row of its run
    pof = stamp(data.get("pof", {}).get("rows", []), run0)
    best: dict[str, tuple] = {}
    for j, r in enumerate(pof):
        if (r["setting"], r.get("mode", "fwd")) != ("mimo", "fwd") or not r.get("median_ms"):
            continue
        inter = r.get("ours") is not None and paired_times(r) is not None
        i = partner_index(r, rows, variant=r.get("ours"))
        if (inter or i is not None) and (
            r["variant"] not in best or (r["L"], run_of(r)) > best[r["variant"]][:2]
        ):
            best[r["variant"]] = (r["L"], run_of(r), j, i, inter)
    for v, (L, _, j, i, inter) in sorted(best.items()):
        at = ["pof", "rows", j]
        refs = (
            ([*at, "paired", "ours_median_ms"], [*at, "paired", "research_median_ms"])
            if inter
            else (["rows", i, "median_ms"], [*at, "median_ms"])
        )
        out.append(
            finding(
                "tensor product (mimo forward, ms per batch)",
                "PriceofFreedom research code",
                f"{pof[j]['ours']} vs {v} at L={L} (largest L both ran"
                + ("; interleaved)" if inter else ")"),
                {"file": f, "path": refs[0]},
                {"file": f, "path": refs[1]},
                root,
                "ms",
                cache=cache,
            )
        )
    if not pof:
        out.append(
            note(
                "tensor product",
                "PriceofFreedom research code",
                f"skipped: {data.get('pof', {}).get('meta', {}).get('pof', 'not run')}",
            )
        )
    return out


def _model(root: Path) -> list[dict]:
    f = "model/results.json"
    data = read_json(root / f, "model rows")
    ok = [(i, r) for i, r in enumerate(data["rows"]) if r.get("status") == "ok"]
    out = [note("model throughput", "-", "Facet-only selection (peers per step: dynamics).")]
    for i, r in ok:
        v = resolve(root, {"file": f, "path": ["rows", i, "atoms_per_s"]})
        out.append(
            note(
                "model throughput",
                "-",
                f"{r['preset']} ({r['product']}) on {r['atoms']} "
                f"atoms: {fmt(v)} atoms/s, cost split {r['split']}",
            )
        )
    for r in data["rows"]:
        if r.get("status") != "ok":
            out.append(note("model throughput", "-", r["status"]))
    return out


def _scaling(root: Path, f: str = "scaling/results.json") -> list[dict]:
    data = read_json(root / f, "scaling rows")
    d, hw = data.get("derived", {}), data["meta"]["hardware"]
    where = f"{hw.get('device_kind')} ({hw.get('backend')})"
    out = []
    if "time_vs_atoms_slope" in d:
        a, b = d["slope_atoms_range"]
        out.append(
            note(
                f"scaling on {where}",
                "-",
                f"time ~ atoms^{d['time_vs_atoms_slope']:.2f} from {a} "
                f"to {b} atoms; {fmt(d['us_per_atom_largest'])} us/atom at "
                f"{d['largest_atoms']} atoms",
            )
        )
    if "best_frac_matmul_fwd_bwd" in d:
        out.append(
            note(
                f"FLOP rate on {where}",
                "the machine's matmul rate",
                f"forward+backward reaches {100 * d['best_frac_matmul_fwd_bwd']:.1f} % of "
                f"the {d['matmul_n']}^3 matmul's FLOP rate (best configuration)",
            )
        )
    out += [note("scaling", "-", f"not measured: {s}") for s in d.get("not_ok", [])]
    return out


def _scaling_h200(root: Path) -> list[dict]:
    f = "scaling/h200/results.json"  # optional: a GPU run, where one was made
    return _scaling(root, f) if (root / f).exists() else []


#: Facet-S's comparison partners in the dynamics report, per task.
DYN_PAIRS = {
    "relax_step": ("mace-mp0-small", "mace-mp0-medium"),
    "md": ("mace-mp0-small", "mace-mp0-medium"),
    "converge": ("sevennet-0", "chgnet-0.3.0", "nequix-mp-1"),
}


def _dynamics(root: Path) -> list[dict]:
    f = "dynamics/results.json"
    data, cache = read_json(root / f, "dynamics rows"), {}
    rows = [r for r in data["rows"] if not r.get("warmup") and "time_s" in r]
    out = []
    what = {
        "relax_step": ("relaxation (ms per FIRE step, Si cell)", "time_s", "steps"),
        "md": ("MD (ms per velocity-Verlet step, Si cell)", "time_s", "steps"),
        "converge": ("relaxation of MP structures (ms per FIRE step)", "time_s", "steps"),
    }
    for task, peers in DYN_PAIRS.items():
        axis, num, den = what[task]
        sizes = sorted({r["size"] for r in rows if r["task"] == task and r["model"] == "facet-s"})
        for peer in peers:
            if peer in data["info"].get("skipped", {}):
                out.append(note(axis, peer, f"skipped: {data['info']['skipped'][peer]}"))
                continue
            for size in sizes if task != "converge" else [None]:
                where = {"task": task} | ({"size": size} if size is not None else {})
                if not any(
                    r["model"] == peer and all(r.get(k) == v for k, v in where.items())
                    for r in rows
                ):
                    continue
                label = f"{size} atoms" if size is not None else "median over structures"
                out.append(
                    finding(
                        axis,
                        peer,
                        f"facet-s vs {peer}, {label}",
                        {
                            "file": f,
                            "rows": "rows",
                            "where": {**where, "model": "facet-s"},
                            "num": num,
                            "den": den,
                        },
                        {
                            "file": f,
                            "rows": "rows",
                            "where": {**where, "model": peer},
                            "num": num,
                            "den": den,
                        },
                        root,
                        "ms",
                        scale=1e3,
                        cache=cache,
                    )
                )
    return out


def _same_run(rows: list[dict], fi: int, mi: int, rows_key: str):
    """Paths (without the value's key) of a Facet row and a MACE row of ONE recorded run: a row
    that :mod:`facet.bench.train_rows` took from a supplementary run is compared with that run's
    partner (its ``paired``), never with the main run's; None when it has no such partner."""
    if rows[fi].get("source") == rows[mi].get("source"):
        return [rows_key, fi], [rows_key, mi]
    if rows[fi].get("paired"):
        return [rows_key, fi], [rows_key, fi, "paired"]
    if rows[mi].get("paired"):
        return [rows_key, mi, "paired"], [rows_key, mi]
    return None


def _train(root: Path) -> list[dict]:
    # the rows `train` rendered (results.json: the recorded run plus the supplementary runs
    # that measured what it could not; in quick/ a train_peers.json would be a smoke run of
    # the script); a full root without them: the recorded run itself
    f, rows_key = "train/results.json", "rows"
    if not _is_quick(root) and not (root / f).exists():
        f, rows_key = "train/train_peers.json", "summary"
    data = read_json(root / f, "training throughput rows")
    rows = data[rows_key]
    idx = {r["model"]: i for i, r in enumerate(rows)}
    out = []
    for facet_m, mace_m in (("facet-s", "mace-small"), ("facet-m", "mace-medium")):
        fi, mi = idx.get(facet_m), idx.get(mace_m)
        bad = [
            m
            for m, i in ((facet_m, fi), (mace_m, mi))
            if i is None or rows[i].get("status", "ok") != "ok"
        ]
        if bad:
            why = "; ".join(f"{m}: {rows[idx[m]]['status'] if m in idx else 'absent'}" for m in bad)
            out.append(note("training throughput", f"MACE {mace_m}", f"not compared ({why})"))
            continue
        pair, refs = f"{facet_m} vs {mace_m}", _same_run(rows, fi, mi, rows_key)
        if refs is None:
            why = f"{facet_m} and {mace_m} come from different runs, neither with its partner"
            out.append(note("training throughput", f"MACE {mace_m}", f"not compared ({why})"))
            continue
        if rows[fi].get("source") != rows[mi].get("source"):
            sup = rows[fi] if rows[fi].get("paired") else rows[mi]
            pair += f" (both from the supplementary run {sup['source']})"
        for axis, what, key, unit, higher in (
            (
                "training throughput",
                f"{pair}, structures per CPU-s (higher is better)",
                "structures_per_cpu_s",
                "structures per CPU-s",
                True,
            ),
            ("parameters", pair, "params", "parameters", False),
        ):
            out.append(
                finding(
                    axis,
                    f"MACE {mace_m}",
                    what,
                    {"file": f, "path": [*refs[0], key]},
                    {"file": f, "path": [*refs[1], key]},
                    root,
                    unit,
                    higher_is_better=higher,
                )
            )
    return out


def _accuracy(root: Path) -> list[dict]:
    f = "accuracy/accuracy.json"  # as for training: quick/ holds re-rendered rows
    if _is_quick(root) or not (root / f).exists():
        f = "accuracy/results.json"
    if not (root / f).exists():
        return [
            note(
                "accuracy",
                "MACE",
                "no recorded run (docs/benchmarks/accuracy/accuracy.json absent)",
            )
        ]
    data = read_json(root / f, "accuracy rows")
    rows_key = "trainers" if "trainers" in data else "rows"
    rows = data[rows_key]
    fi = next((i for i, r in enumerate(rows) if r.get("trainer") == "facet"), None)
    mi = next((i for i, r in enumerate(rows) if r.get("trainer") == "mace"), None)
    out = []
    for i, who in ((fi, "facet"), (mi, "mace")):
        if i is None or (rows_key == "rows" and rows[i].get("status") != "ok"):
            why = "absent" if i is None else rows[i]["status"]
            out.append(note("accuracy", "MACE", f"{who}: {why}"))
    if out:
        return out
    sub = ["test"] if rows_key == "trainers" else []
    for key, unit in (
        ("energy_mae", "meV/atom"),
        ("forces_mae", "meV/A"),
        ("stress_mae", "meV/A^3"),
    ):
        out.append(
            finding(
                "accuracy (test MAE, equal training time)",
                rows[mi].get("model"),
                f"{key.replace('_', ' ')}",
                {"file": f, "path": [rows_key, fi, *sub, key]},
                {"file": f, "path": [rows_key, mi, *sub, key]},
                root,
                unit,
            )
        )
    return out


#: Report name -> its extractor, in the order of the page.
EXTRACTORS = {
    "tp": _tp,
    "model": _model,
    "scaling": _scaling,
    "scaling_h200": _scaling_h200,
    "dynamics": _dynamics,
    "train": _train,
    "accuracy": _accuracy,
}
