"""Checkpoints: exact round trip, corruption and truncation detected with fallback, newer format
refused, interrupted writes ignored, pruning keeps the best."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

from facet.train import checkpoint as ck


def _trees(step):
    rng = np.random.default_rng(step)
    return {"params": {"w": rng.normal(size=(3, 4)).astype(np.float32), "b": rng.normal(size=4)},
            "counters": {"step": np.int32(step), "rng": np.array([0, step], np.uint32)}}


def _save(root, step):
    return ck.save_checkpoint(root, step, _trees(step), config_yaml=f"run: {{epochs: {step}}}\n",
                              state={"epoch": step})


def test_roundtrip_exact(tmp_path):
    p = _save(tmp_path, 5)
    template = {"params": {"w": jnp.zeros((3, 4)), "b": np.zeros(4)},
                           "counters": {"step": jnp.int32(0), "rng": jnp.zeros(2, jnp.uint32)}}
    out, meta = ck.load_checkpoint(p, template)
    ref = _trees(5)
    np.testing.assert_array_equal(out["params"]["w"], ref["params"]["w"])
    np.testing.assert_array_equal(out["counters"]["rng"], ref["counters"]["rng"])
    assert meta["step"] == 5 and meta["state"] == {"epoch": 5}
    assert meta["format"] == ck.FORMAT_VERSION
    assert (p / "config.yaml").read_text().startswith("run:")
    bad = {"params": {"w": jnp.zeros((4, 4)), "b": jnp.zeros(4)}}
    with pytest.raises(ck.CheckpointError, match=r"'params/\['w'\]'.*shape"):
        ck.load_checkpoint(p, bad)


@pytest.mark.parametrize("damage", ["truncate", "flip", "no_marker", "meta"])
def test_corrupt_latest_detected_and_previous_used(tmp_path, damage):
    _save(tmp_path, 1)
    p2 = _save(tmp_path, 2)
    arr = p2 / "arrays.npz"
    if damage == "truncate":
        arr.write_bytes(arr.read_bytes()[:-50])
    elif damage == "flip":
        b = bytearray(arr.read_bytes())
        b[len(b) // 2] ^= 0xFF
        arr.write_bytes(bytes(b))
    elif damage == "no_marker":
        (p2 / "COMPLETE").unlink()
    else:
        meta = (p2 / "meta.json").read_text()
        (p2 / "meta.json").write_text(meta.replace('"step": 2', '"step": 3'))
    with pytest.raises(ck.CheckpointError, match=str(p2.name)):
        ck.verify_checkpoint(p2)
    messages = []
    latest = ck.latest_checkpoint(tmp_path, report=messages.append)
    assert latest.name == "step_000000001"
    assert len(messages) == 1 and p2.name in messages[0]


def test_newer_format_refused(tmp_path):
    p = _save(tmp_path, 3)
    meta = json.loads((p / "meta.json").read_text())
    meta["format"] = ck.FORMAT_VERSION + 1
    data = json.dumps(meta).encode()
    (p / "meta.json").write_bytes(data)
    import hashlib

    (p / "COMPLETE").write_text(hashlib.sha256(data).hexdigest())
    with pytest.raises(ck.CheckpointFormatError, match="Upgrade facet"):
        ck.latest_checkpoint(tmp_path)


def test_interrupted_write_is_ignored_and_cleaned(tmp_path):
    _save(tmp_path, 1)
    tmp = tmp_path / ".tmp-step_000000002-999"
    tmp.mkdir()
    (tmp / "arrays.npz").write_bytes(b"partial")
    assert ck.latest_checkpoint(tmp_path).name == "step_000000001"
    _save(tmp_path, 2)
    assert not tmp.exists()
    # re-saving an existing step replaces it atomically
    ck.save_checkpoint(tmp_path, 2, _trees(7), config_yaml="x: 1\n")
    assert ck.verify_checkpoint(ck.step_dir(tmp_path, 2))["step"] == 2


def test_prune_keeps_newest_and_protected(tmp_path):
    for s in range(1, 6):
        _save(tmp_path, s)
    ck.prune_checkpoints(tmp_path, 2, protect={2})
    assert [p.name for p in ck.list_checkpoints(tmp_path)] == [
        "step_000000002", "step_000000004", "step_000000005"]
