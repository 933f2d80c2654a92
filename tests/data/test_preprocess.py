"""Preprocessing and the shard reader: content equals the source, split by material, manifest
accounting and checksums, corruption detection, deterministic host sharding, batches whose padding
contributes nothing, and the CLI."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from data_factories import build_mptrj, write_json

from facet.cli import main as facet_main
from facet.data.dataset import DatasetError, PreprocessedDataset
from facet.data.frames import FrameError
from facet.data.mptrj import iter_mptrj
from facet.data.neighbors import neighbor_list
from facet.data.preprocess import PreprocessConfig, preprocess, split_of
from facet.data.sources import sha256_file

CUTOFF = 4.0


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    data = build_mptrj(np.random.default_rng(123), 14, frames_per_material=3)
    return write_json(d / "mptrj.json", data)


@pytest.fixture(scope="module")
def prepared(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "ds"
    cfg = PreprocessConfig(cutoff=CUTOFF, val_fraction=0.3, seed=7, shard_size=8)
    manifest = preprocess(source, out, cfg, progress=False)
    return out, manifest


def test_manifest_records_everything(source, prepared):
    out, m = prepared
    assert m == json.loads((out / "manifest.json").read_text())
    assert m["source"]["path"] == source and m["source"]["sha256"] == sha256_file(source)
    assert m["label"] == "uncorrected_total_energy" and m["cutoff"] == CUTOFF
    c = m["counts"]
    assert c["read"] == c["kept"] == 42 and c["skipped"] == 0
    tr, va = m["splits"]["train"], m["splits"]["val"]
    assert tr["stats"]["frames"] + va["stats"]["frames"] == 42
    assert tr["stats"]["frames"] % 3 == 0 and va["stats"]["frames"] % 3 == 0  # whole materials
    assert va["stats"]["frames"] > 0 and tr["stats"]["frames"] > 0
    for entry in (tr, va):
        assert sum(s["frames"] for s in entry["shards"]) == entry["stats"]["frames"]
        assert all(s["frames"] <= 8 for s in entry["shards"])
        for s in entry["shards"]:
            assert sha256_file(out / s["file"]) == s["sha256"]


def test_shards_hold_exactly_the_source_frames(source, prepared):
    out, m = prepared
    ref = {f.key: f for f in iter_mptrj(source)}
    seen = {}
    for split in ("train", "val"):
        for g in PreprocessedDataset(out, split).graphs():
            seen[g.key] = split
            f = ref[g.key]
            np.testing.assert_array_equal(g.positions, f.positions)
            np.testing.assert_array_equal(g.numbers, f.numbers)
            np.testing.assert_array_equal(g.cell, f.cell)
            assert g.energy == f.energy
            np.testing.assert_array_equal(g.forces, f.forces)
            np.testing.assert_array_equal(g.stress, f.stress)
            assert (g.magmom is None) == (f.magmom is None)
            s, r, sh = neighbor_list(f.positions, f.cell, f.pbc, CUTOFF)
            np.testing.assert_array_equal(g.senders, s)
            np.testing.assert_array_equal(g.receivers, r)
            np.testing.assert_array_equal(g.shifts, sh)
    assert set(seen) == set(ref)
    by_material = {}
    for key, split in seen.items():
        mid = key.rsplit("/", 1)[0]
        by_material.setdefault(mid, set()).add(split)
        assert split == split_of(mid, seed=7, val_fraction=0.3)
    assert all(len(v) == 1 for v in by_material.values())  # never in both splits


def test_split_rule_is_seeded_and_near_fraction():
    ids = [f"mp-{i}" for i in range(4000)]
    a = [split_of(i, seed=0, val_fraction=0.1) for i in ids]
    b = [split_of(i, seed=1, val_fraction=0.1) for i in ids]
    assert a != b
    frac = a.count("val") / len(a)
    assert abs(frac - 0.1) < 4 * np.sqrt(0.1 * 0.9 / len(a))


def test_host_sharding_partitions_each_epoch(prepared):
    ds = PreprocessedDataset(prepared[0], "train")
    everything = sorted(g.key for g in ds.graphs())
    for epoch in (0, 1):
        parts = [
            [
                g.key
                for g in ds.graphs(shuffle=True, seed=3, epoch=epoch, shard_index=k, shard_count=3)
            ]
            for k in range(3)
        ]
        flat = [k for p in parts for k in p]
        assert sorted(flat) == everything  # each frame exactly once across readers
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        again = [g.key for g in ds.graphs(shuffle=True, seed=3, epoch=epoch, shard_count=3)]
        assert again == parts[0]  # deterministic
    e0 = [g.key for g in ds.graphs(shuffle=True, seed=3, epoch=0)]
    e1 = [g.key for g in ds.graphs(shuffle=True, seed=3, epoch=1)]
    assert e0 != e1 and sorted(e0) == sorted(e1) == everything


def _pair_energy_numpy(g):
    vec = g.positions[g.senders] + g.shifts @ g.cell - g.positions[g.receivers]
    d = np.linalg.norm(vec, axis=1)
    return 0.5 * np.sum(np.exp(-d) * g.numbers[g.receivers])


def test_batches_padding_contributes_nothing(prepared, x64):
    """A masked pair energy over padded batches equals the per-structure NumPy sum; one jit
    compilation serves every batch of the epoch."""
    import jax
    import jax.numpy as jnp

    ds = PreprocessedDataset(prepared[0], "train")
    graphs = list(ds.graphs())
    budget = ds.suggest_budget(4)
    traces = []

    @jax.jit
    def energies(b):
        traces.append(1)
        vec = (
            b.positions[b.senders]
            + jnp.einsum("ei,eij->ej", b.shifts, b.cell[b.node_graph[b.senders]])
            - b.positions[b.receivers]
        )
        d = jnp.linalg.norm(jnp.where(b.edge_mask[:, None], vec, 1.0), axis=1)
        e_edge = jnp.where(b.edge_mask, 0.5 * jnp.exp(-d) * b.numbers[b.receivers], 0.0)
        per_graph = jax.ops.segment_sum(e_edge, b.node_graph[b.receivers], b.cell.shape[0])
        return per_graph * b.graph_mask

    got = []
    n_batches = 0
    for b in ds.batches(**budget, dtype=np.float64):
        n_batches += 1
        assert b.positions.shape[0] == budget["max_nodes"]
        e = np.asarray(energies(jax.tree.map(jnp.asarray, b)))
        got += e[b.graph_mask].tolist()
        assert e[~b.graph_mask].sum() == 0
        assert b.energy[b.graph_mask].tolist() == [
            g.energy for g in graphs[len(got) - b.graph_mask.sum() : len(got)]
        ]
    assert n_batches > 1 and len(traces) == 1
    np.testing.assert_allclose(got, [_pair_energy_numpy(g) for g in graphs], rtol=1e-12)


def test_corrupt_and_missing_shards_are_reported(source, tmp_path):
    out = tmp_path / "ds"
    preprocess(source, out, PreprocessConfig(cutoff=3.0, shard_size=20), progress=False)
    ds = PreprocessedDataset(out, "train")
    shard = out / ds.shards[0]["file"]
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=f"{shard.name}.*sha256"):
        list(PreprocessedDataset(out, "train").graphs())
    shard.write_bytes(bytes(raw[:-10]))
    with pytest.raises(DatasetError, match=f"{shard.name}.*bytes"):
        list(PreprocessedDataset(out, "train", verify="size").graphs())
    shard.unlink()
    with pytest.raises(DatasetError, match=f"{shard.name}.*missing"):
        list(PreprocessedDataset(out, "train").graphs())
    (out / "manifest.json").unlink()
    with pytest.raises(DatasetError, match="manifest.json does not exist"):
        PreprocessedDataset(out, "train")


def test_bad_frames_abort_or_are_counted(tmp_path):
    rng = np.random.default_rng(9)
    data = build_mptrj(rng, 4, frames_per_material=2)
    fid = next(iter(data["mp-1002"]))
    data["mp-1002"][fid]["force"] = [[0.0, 0.0]]
    data["mp-1003"][next(iter(data["mp-1003"]))].pop("stress")
    # Two atoms 0.2 A apart: found on the graph's edges (the reader skips that check here).
    close = copy.deepcopy(list(data["mp-1003"].values())[-1])
    sites = close["structure"]["sites"]
    sites.append(copy.deepcopy(sites[0]))
    sites[-1]["abc"] = [sites[0]["abc"][0] + 0.04, *sites[0]["abc"][1:]]  # 0.16-0.24 A
    close["force"].append([0.0, 0.0, 0.0])
    close["magmom"] = None
    data["mp-1003"]["t-close"] = close
    src = write_json(tmp_path / "bad.json", data)
    with pytest.raises(FrameError, match=rf"bad\.json.*mp-1002.*{fid}"):
        preprocess(src, tmp_path / "a", PreprocessConfig(cutoff=3.0), progress=False)
    assert not (tmp_path / "a" / "manifest.json").exists()
    m = preprocess(
        src, tmp_path / "b", PreprocessConfig(cutoff=3.0, on_error="skip"), progress=False
    )
    c = m["counts"]
    assert c["read"] == 9 and c["kept"] == 6
    assert c["skipped_by_reason"] == {"atoms_too_close": 1, "bad_shape": 1, "missing_key": 1}
    assert sum(m["splits"][s]["stats"]["frames"] for s in ("train", "val")) == 6
    only_close = write_json(tmp_path / "close.json", {"mp-1003": {"t-close": close}})
    with pytest.raises(FrameError, match=r"close\.json.*mp-1003, frame t-close.*physical minimum"):
        preprocess(only_close, tmp_path / "c", PreprocessConfig(cutoff=3.0), progress=False)
    # Same source and settings: reused as is. Different settings: refused without overwrite.
    again = preprocess(
        src, tmp_path / "b", PreprocessConfig(cutoff=3.0, on_error="skip"), progress=False
    )
    assert again["reused"] and again["splits"] == m["splits"]
    with pytest.raises(FileExistsError, match="different source or configuration"):
        preprocess(src, tmp_path / "b", PreprocessConfig(cutoff=3.0), progress=False)
    m2 = preprocess(
        src, tmp_path / "b", PreprocessConfig(cutoff=3.5, on_error="skip"), progress=False,
        overwrite=True,
    )  # fmt: skip
    assert m2["cutoff"] == 3.5 and "reused" not in m2
    assert sorted(p.name for p in (tmp_path / "b").glob("*.h5")) == sorted(
        s["file"] for sp in m2["splits"].values() for s in sp["shards"]
    )


def test_cli_preprocess_and_info(source, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = facet_main(
        ["preprocess", source, "--out", str(out), "--cutoff", "3.5", "--val-fraction", "0.2",
         "--label", "corrected_total_energy", "--no-progress"]
    )  # fmt: skip
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["read"] == summary["kept"] == 42 and summary["train"] + summary["val"] == 42
    m = json.loads((out / "manifest.json").read_text())
    assert m["label"] == "corrected_total_energy" and m["cutoff"] == 3.5
    g = next(PreprocessedDataset(out, "train").graphs())
    raw = json.loads(open(source).read())
    mid, fid = g.key.rsplit("/", 1)
    assert g.energy == raw[mid][fid]["corrected_total_energy"]

    assert facet_main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "jax" in text and "cutoff 3.5" in text and "read 42" in text and "train" in text
    assert facet_main(["info", source, "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["stats"]["frames"] == 42 and st["counts"]["kept"] == 42
    n_atoms = sum(len(fr["structure"]["sites"]) for mat in raw.values() for fr in mat.values())
    assert st["stats"]["atoms"] == n_atoms
    assert facet_main(["info", str(tmp_path / "nothing")]) == 1


def test_random_access_matches_streaming(prepared):
    from facet.data.dataset import open_dataset

    out, m = prepared
    both = open_dataset(out)  # "all": train then val
    train, val = PreprocessedDataset(out, "train"), PreprocessedDataset(out, "val")
    assert len(both) == len(train) + len(val) == m["counts"]["kept"]
    streamed = [g.key for g in train.graphs()] + [g.key for g in val.graphs()]
    assert [both[i].key for i in range(len(both))] == streamed
    assert both[-1].key == streamed[-1] and both.cutoff == CUTOFF
    n_nodes, n_edges = both.sizes()
    assert n_nodes.tolist() == [both[i].n_node for i in range(len(both))]
    assert n_edges.tolist() == [both[i].n_edge for i in range(len(both))]
    with pytest.raises(IndexError, match="out of range"):
        both[len(both)]


def test_shard_storage_is_narrow_and_graphs_are_wide(prepared):
    import h5py

    out, m = prepared
    with h5py.File(out / m["splits"]["train"]["shards"][0]["file"]) as h:
        assert h["senders"].dtype == np.uint16 and h["shifts"].dtype == np.int8
        assert h["numbers"].dtype == np.uint8
    g = next(g for g in PreprocessedDataset(out, "train").graphs() if g.n_edge)
    assert g.senders.dtype == g.receivers.dtype == g.shifts.dtype == g.numbers.dtype == np.int64
    # Offsetting by a large node count (as collate does) must not wrap around.
    assert (g.senders + 70000).min() >= 70000


def test_worker_processes_give_identical_output(source, prepared, tmp_path):
    out, m = prepared
    cfg = PreprocessConfig(cutoff=CUTOFF, val_fraction=0.3, seed=7, shard_size=8)
    m2 = preprocess(source, tmp_path / "w", cfg, progress=False, workers=2)
    assert m2["counts"] == m["counts"]
    for split in ("train", "val"):
        assert m2["splits"][split]["stats"] == m["splits"][split]["stats"]
        a = list(PreprocessedDataset(out, split).graphs())
        b = list(PreprocessedDataset(tmp_path / "w", split).graphs())
        assert [g.key for g in a] == [g.key for g in b]
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x.positions, y.positions)
            np.testing.assert_array_equal(x.senders, y.senders)
            np.testing.assert_array_equal(x.shifts, y.shifts)
            assert x.energy == y.energy


def test_slash_in_frame_id_keeps_the_material(tmp_path):
    from facet.data.extxyz import write_extxyz
    from facet.data.frames import make_frame

    frames = [
        make_frame(
            [[0, 0, 0], [1.5, 1.5, 1.5]],
            [11, 17],
            np.eye(3) * 3.0,
            True,
            energy=-1.0 - k,
            forces=np.zeros((2, 3)),
            material_id="mp-7/a",
            frame_id=fid,
        )  # fmt: skip
        for k, fid in enumerate(["relax/0", "relax/1", "md"])
    ]
    assert frames[0].key == "mp-7/a/relax%2F0"
    src = tmp_path / "slash.extxyz"
    write_extxyz(src, frames)
    m = preprocess(src, tmp_path / "o", PreprocessConfig(cutoff=3.0, val_fraction=0.5, seed=3),
                   progress=False)  # fmt: skip
    counts = {s: m["splits"][s]["stats"] for s in ("train", "val")}
    assert sorted(c["frames"] for c in counts.values()) == [0, 3]  # one material, one split
    assert max(c["materials"] for c in counts.values()) == 1
    g = PreprocessedDataset(tmp_path / "o", "all")[0]
    assert g.key == "mp-7/a/relax%2F0" and g.energy == -1.0


def test_info_sections_are_extensible(capsys):
    from facet.cli import info

    before = list(info.SECTIONS)
    try:
        info.register_section("model presets", lambda args: ["facet-s  252,989 parameters"])
        assert facet_main(["info"]) == 0
        out = capsys.readouterr().out
        assert out.index("== versions") < out.index("== model presets")
        assert "facet-s  252,989 parameters" in out and "== dataset" not in out  # no path given
    finally:
        info.SECTIONS[:] = before
