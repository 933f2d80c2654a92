"""The shards of ``data/distill2`` on disk: paths, reading and writing, cleaning of teacher
outliers, the per-split MPTrj files and the counts of what is labelled.

A shard is ``shards/shard-NNNN.json.gz`` (the MPTrj layout ``{mp_id: {frame_id: frame}}`` of
consecutive materials, gzip) with its sidecar ``shard-NNNN.meta.json`` (each material's
metadata, written last: a shard counts as done only when both are there). Pure JSON and ASE:
everything here runs in either environment (the teacher's or facet's). The labelling itself is
:mod:`facet.teacher.distill2`, which re-exports these names.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
from collections import Counter

import numpy as np
from ase import Atoms

from facet.teacher.common import collapsed_pair, write_json


def shard_path(out: str, k: int) -> str:
    return os.path.join(out, "shards", f"shard-{k:04d}.json.gz")


def meta_path(path: str) -> str:
    return path[: -len(".json.gz")] + ".meta.json"


def write_shard(path: str, results: list[dict]) -> None:
    """The shard (MPTrj layout, gzip) and its sidecar of material metadata; the sidecar is
    written last, so a shard counts as done only when both are there."""
    data = {r["meta"]["mp_id"]: r["frames"] for r in results if r["frames"]}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path + ".tmp", data, compress=True)
    os.replace(path + ".tmp", path)
    with open(meta_path(path) + ".tmp", "w") as f:
        json.dump([r["meta"] for r in results], f, separators=(",", ":"))
    os.replace(meta_path(path) + ".tmp", meta_path(path))


def _frame_atoms(frame: dict):
    """ASE atoms of one MPTrj-layout frame (fractional ``abc`` sites, periodic)."""
    st = frame["structure"]
    cell = np.asarray(st["lattice"]["matrix"], float)
    return Atoms([s["species"][0]["element"] for s in st["sites"]],
                 scaled_positions=[s["abc"] for s in st["sites"]], cell=cell, pbc=True)


# Teacher labels outside these bounds are the teacher failing, not chemistry (SevenNet-0 gave
# F14 in a diamond lattice 1.7e5 eV/A and +25 keV/atom): frames beyond them are removed and
# counted. 99.9 % of the first labelling's frames have |F| < 43 eV/A and a cohesive energy
# (per atom, above the teacher's isolated atoms) between -8.8 and +3.3 eV/atom.
MAX_FORCE = 100.0  # eV/A, largest force component
COHESIVE_RANGE = (-15.0, 5.0)  # eV/atom


def bad_frame(frame: dict, e0: dict[str, float]) -> str | None:
    """Why a labelled frame must not be trained on (collapsed atoms, a force component beyond
    ``MAX_FORCE``, a cohesive energy outside ``COHESIVE_RANGE`` against the teacher's
    isolated-atom energies ``e0``), or ``None``."""
    why = collapsed_pair(_frame_atoms(frame))
    if why is not None:
        return f"collapsed: {why}"
    fmax = float(np.abs(np.asarray(frame["force"], float)).max())
    if fmax > MAX_FORCE:
        return f"teacher outlier: force component {fmax:.4g} eV/A > {MAX_FORCE:g}"
    els = [site["species"][0]["element"] for site in frame["structure"]["sites"]]
    coh = (frame["uncorrected_total_energy"] - sum(e0[x] for x in els)) / len(els)
    lo, hi = COHESIVE_RANGE
    if not lo <= coh <= hi:
        return (f"teacher outlier: cohesive energy {coh:.4g} eV/atom outside "
                f"[{lo:g}, {hi:g}]")
    return None


def clean_results(results: list[dict], e0: dict[str, float]) -> dict[str, str]:
    """Remove the :func:`bad_frame` frames from labelled materials (``{"meta", "frames"}``),
    recording each in its material's ``dropped`` list and updating ``n_frames``."""
    gone: dict[str, str] = {}
    for res in results:
        meta, frames = res["meta"], res["frames"]
        for fid in list(frames):
            why = bad_frame(frames[fid], e0)
            if why is None:
                continue
            del frames[fid]
            gone[fid] = why
            meta.setdefault("dropped", []).append(f"{fid}: {why}")
            meta["n_frames"] = len(frames)
    return gone


def clean_shards(data_dir: str) -> dict[str, str]:
    """Apply :func:`clean_results` to the shards already written in ``data_dir`` (the labelling
    applies it to each shard before writing it). Only shards holding a bad frame are
    rewritten; running it again changes nothing. Returns ``{frame_id: reason}``."""
    with open(os.path.join(data_dir, "teacher_e0.json")) as f:
        e0 = json.load(f)
    gone: dict[str, str] = {}
    for path in shard_paths(data_dir):
        metas, data = read_shard(path)
        results = [{"meta": m, "frames": data.get(m["mp_id"], {})} for m in metas]
        here = clean_results(results, e0)
        if here:
            write_shard(path, results)
            gone.update(here)
    return gone


def shard_done(path: str) -> bool:
    return os.path.exists(path) and os.path.exists(meta_path(path))


def shard_paths(data_dir: str) -> list[str]:
    """The complete shards of ``data_dir`` (shard and sidecar both written), in order."""
    paths = sorted(glob.glob(os.path.join(data_dir, "shards", "shard-*.json.gz")))
    return [p for p in paths if shard_done(p)]


def read_shard_meta(path: str) -> list[dict]:
    with open(meta_path(path)) as f:
        return json.load(f)


def material_kinds(data_dir: str) -> dict[str, str]:
    """``{material id: kind}`` (``prototype``, ``surface``, ...) of every material in the
    shards present, from their metadata files alone."""
    return {m["mp_id"]: m["kind"] for p in shard_paths(data_dir) for m in read_shard_meta(p)}


def read_shard(path: str) -> tuple[list[dict], dict]:
    with open(meta_path(path)) as f:
        metas = json.load(f)
    with gzip.open(path, "rt") as f:
        return metas, json.load(f)


def write_split_files(data_dir: str, out_dir: str, max_shards: int | None = None,
                      splits: tuple[str, ...] = ("train", "val", "test")) -> dict[str, dict]:
    """One MPTrj JSON (gzip) per split of ``splits.json`` from the shards present in
    ``data_dir`` (or the first ``max_shards`` of them: the catalog order is seeded, so a prefix
    is a balanced subset for learning curves against data size).

    Returns ``{split: {"path", "materials", "frames", "pending", "empty"}}``. Nothing is
    dropped silently: a material of ``splits.json`` that is absent from the shards read is not
    labelled yet (``"pending"``); one labelled without a usable frame (skipped, or every frame
    dropped: see its ``dropped`` list) is counted under ``"empty"``; a labelled material that
    ``splits.json`` does not name is an error.
    """
    with open(os.path.join(data_dir, "splits.json")) as f:
        split_of = {m: name for name, ids in json.load(f).items() for m in ids}
    paths = shard_paths(data_dir)
    if max_shards is not None:
        paths = paths[:max_shards]
    if not paths:
        raise FileNotFoundError(f"{data_dir}: no complete shard in shards/")
    out: dict[str, dict] = {name: {} for name in splits}
    seen = set()
    for p in paths:
        metas, data = read_shard(p)
        seen.update(m["mp_id"] for m in metas)
        for mid, frames in data.items():
            if mid not in split_of:
                raise ValueError(f"{p}: material {mid} is not in {data_dir}/splits.json")
            seen.add(mid)
            if split_of[mid] in out:
                out[split_of[mid]][mid] = frames
    os.makedirs(out_dir, exist_ok=True)
    result = {}
    for name, data in out.items():
        path = os.path.join(out_dir, f"{name}.json.gz")
        write_json(path, data, compress=True)
        result[name] = {"path": path, "materials": len(data),
                        "frames": sum(len(v) for v in data.values()),
                        "pending": sum(1 for m, s in split_of.items()
                                       if s == name and m not in seen),
                        "empty": sum(1 for m, s in split_of.items()
                                     if s == name and m in seen and m not in data)}
    return result


def summarize(data_dir: str, seed: int = 0) -> dict:
    """Counts of the shards present: per kind (materials, frames, held-out materials and
    frames), per split, and each element's number of training materials. Pure JSON: runs in
    either environment."""
    with open(os.path.join(data_dir, "splits.json")) as f:
        split_of = {m: name for name, ids in json.load(f).items() for m in ids}
    paths = shard_paths(data_dir)
    kinds: dict[str, Counter] = {}
    splits: dict[str, Counter] = {}
    train_elements: Counter = Counter()
    skipped, dropped, atoms = [], 0, 0
    for p in paths:
        metas, data = read_shard(p)
        for m in metas:
            mid, kind, n = m["mp_id"], m["kind"], m["n_frames"]
            if m.get("skipped"):
                skipped.append(f"{mid} ({m['name']}): {m['skipped']}")
                continue
            dropped += len(m.get("dropped", []))
            split = split_of[mid]
            kc = kinds.setdefault(kind, Counter())
            kc["materials"] += 1
            kc["frames"] += n
            kc[f"{split}_materials"] += 1
            kc[f"{split}_frames"] += n
            sc = splits.setdefault(split, Counter())
            sc["materials"] += 1
            sc["frames"] += n
            frames = data.get(mid, {})
            atoms += sum(len(fr["force"]) for fr in frames.values())
            if split == "train" and frames:
                first = next(iter(frames.values()))
                train_elements.update({s["species"][0]["element"]
                                       for s in first["structure"]["sites"]})
    return {"shards": len(paths), "kinds": {k: dict(v) for k, v in sorted(kinds.items())},
            "splits": {k: dict(v) for k, v in sorted(splits.items())},
            "atoms": atoms, "dropped_frames": dropped, "skipped_materials": skipped,
            "train_materials_per_element": dict(sorted(train_elements.items()))}


def summary_markdown(s: dict, total_shards: int | None = None) -> str:
    """The tables of docs/datasets.md for :func:`summarize`'s output."""
    done = f"{s['shards']} of {total_shards}" if total_shards else str(s["shards"])
    lines = [f"Shards labelled: {done}; dropped frames (non-finite teacher labels, collapsed "
             "atoms, teacher outliers): "
             f"{s['dropped_frames']}; skipped materials: {len(s['skipped_materials'])}.", "",
             "| kind | materials | frames | test materials | test frames | val materials |",
             "|---|---|---|---|---|---|"]
    tot = Counter()
    for kind, c in s["kinds"].items():
        lines.append(f"| {kind} | {c['materials']} | {c['frames']} | {c.get('test_materials', 0)}"
                     f" | {c.get('test_frames', 0)} | {c.get('val_materials', 0)} |")
        tot.update(c)
    lines.append(f"| **all** | {tot['materials']} | {tot['frames']} | {tot['test_materials']} | "
                 f"{tot['test_frames']} | {tot['val_materials']} |")
    per = s["train_materials_per_element"]
    if per:
        lo = sorted(per.items(), key=lambda kv: kv[1])[:8]
        lines += ["", f"Elements with training materials: {len(per)}; fewest: "
                  + ", ".join(f"{el} {n}" for el, n in lo) + "."]
    return "\n".join(lines) + "\n"
