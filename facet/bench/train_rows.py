"""Rows of the ``train`` selection from recorded ``scripts/bench_train_peers.py`` runs.

:func:`train_result` turns the ``summary`` of a ``train_peers.json`` (the main run) into one row
per trainer/model, tagged with ``source`` (the JSON it was read from) and ``source_index``. A
model that failed or is missing in the main run is taken from the first supplementary run that
measured it (:data:`facet.bench.wrapped._RECORDED`), with that run's path as its ``source`` and
its same-run partner's figures under ``paired``: a Facet/MACE ratio is only ever formed between
rows of one run (the machine's load differs between runs).
"""

from __future__ import annotations

#: The models of a full run, in report order (scripts/bench_train_peers.py PAIRS).
TRAIN_MODELS = ("facet-s", "mace-small", "facet-m", "mace-medium")
TRAIN_KEYS = (
    "params",
    "structures_per_s",
    "structures_per_s_min",
    "structures_per_s_max",
    "atoms_per_s",
    "structures_per_cpu_s",
    "structures_per_cpu_s_min",
    "structures_per_cpu_s_max",
    "atoms_per_cpu_s",
    "cpu_share",
    "ratio_vs_mace_structures_per_s",
    "ratio_vs_mace_structures_per_cpu_s",
    "ratio_vs_mace_atoms_per_cpu_s",
    "params_ratio_vs_mace",
    "blocks",
)

#: Facet preset <-> the MACE-MP-0 size it is trained against, both ways.
TRAIN_PAIRS = {
    "facet-s": "mace-small",
    "mace-small": "facet-s",
    "facet-m": "mace-medium",
    "mace-medium": "facet-m",
}
#: Values of a row's same-run partner kept with a row taken from a supplementary run.
PAIRED_KEYS = ("params", "structures_per_s", "structures_per_cpu_s", "atoms_per_cpu_s")


def _train_rows(raw: dict | None, source: str) -> list[dict]:
    """One row per entry of a ``train_peers.json`` ``summary``, tagged with its source."""
    rows = []
    for i, s in enumerate((raw or {}).get("summary", [])):
        row = {
            "kind": "train",
            "trainer": s.get("trainer"),
            "model": s.get("model"),
            "status": s.get("status", "ok"),
            "source": source,
            "source_index": i,
        }
        row.update({k: s[k] for k in TRAIN_KEYS if k in s})
        rows.append(row)
    return rows


def _from_supplement(row: dict, supplements: list, used: dict) -> dict:
    """``row`` (not ok in the main run) replaced by the first supplement's ok row of its model,
    with ``replaces`` (the main run's status) and ``paired`` (the partner model of that same
    run, so ratios never mix runs); otherwise ``row`` with the supplements' statuses appended."""
    tried = []
    for source, raw, _ in supplements:
        rows = _train_rows(raw, source)
        mine = [r for r in rows if r["model"] == row["model"]]
        ok = next((r for r in mine if r["status"] == "ok"), None)
        if ok is None:
            tried += [f"{source}: {r['status']}" for r in mine]
            continue
        ok["replaces"] = f"{row['status']} (in {row['source']})"
        partner = [r for r in rows if r["model"] == TRAIN_PAIRS.get(row["model"])]
        if partner and partner[0]["status"] == "ok":
            keep = ("model", "source_index", *PAIRED_KEYS)
            ok["paired"] = {k: partner[0][k] for k in keep if k in partner[0]}
        used.setdefault(source, []).append(row["model"])
        return ok
    return {**row, "status": "; ".join([row["status"], *tried])} if tried else row


def train_result(
    raw: dict | None,
    source: str,
    meta: dict,
    reason: str | None = None,
    supplements: list[tuple[str, dict | None, str | None]] = (),
) -> dict:
    """One row per trainer/model of a ``train_peers.json``; absent models as skipped rows.

    A row that is not ``ok`` in the main run is taken from the first supplementary run where
    it is ok (:func:`_from_supplement`; ``supplements``: ``(source, raw or None, reason)`` from
    :func:`facet.bench.wrapped._supplements`). ``meta["supplements"]`` lists every supplement
    with its command, note and the models taken from it (or why it could not be read). A row
    that is ok nowhere keeps its status (a ``failed`` one fails the selection).
    """
    rows = _train_rows(raw, source)
    seen = {r["model"] for r in rows}
    for m in TRAIN_MODELS:
        if m not in seen:
            why = reason or f"skipped: not in the recorded run {source} (see its note)"
            rows.append(
                {
                    "kind": "train",
                    "trainer": m.split("-")[0],
                    "model": m,
                    "status": why,
                    "source": source,
                }
            )
    used: dict[str, list[str]] = {}
    rows = [r if r["status"] == "ok" else _from_supplement(r, supplements, used) for r in rows]
    if raw:
        meta["recorded"] = {k: raw.get(k) for k in ("command", "data", "elapsed_s", "note")}
    if supplements:
        meta["supplements"] = [
            {"source": src, "status": why}
            if sup is None
            else {"source": src, "models": used.get(src, [])}
            | {k: sup.get(k) for k in ("command", "elapsed_s", "note")}
            for src, sup, why in supplements
        ]
    return {"meta": meta, "rows": rows}
