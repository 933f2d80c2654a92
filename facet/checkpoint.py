"""Atomic, versioned, checksummed checkpoints (one directory per step): the format of a trained
model, written by training (:mod:`facet.train`) and read for inference (:mod:`facet.model_io`).

Layout of ``<root>/step_<step:09d>/``:

* ``arrays.npz``: every array of the saved pytrees, keyed ``<tree>/<jax keystr path>``;
* ``config.yaml``: the run configuration (readable by :func:`facet.train.config.load_config`;
  :mod:`facet.model_io` reads its ``model`` section to rebuild the network);
* ``meta.json``: ``format`` (:data:`FORMAT_VERSION`), ``facet_version``, ``step``, free-form
  ``state`` (data-loader position, best metric...) and the SHA-256 of ``arrays.npz`` and
  ``config.yaml``;
* ``COMPLETE``: written last, holding the SHA-256 of ``meta.json``.

Protocol: everything is written into a hidden temporary directory, each file is flushed and
``fsync``-ed, the directory is ``fsync``-ed, then renamed into place with ``os.replace`` and the
parent directory ``fsync``-ed. A process killed at any moment therefore leaves either a complete
checkpoint or a temporary directory that readers ignore (and the next save removes). A truncated
or corrupted file is detected by its checksum; :func:`latest_checkpoint` reports it and falls back
to the previous complete checkpoint. A checkpoint whose ``format`` is newer than this code is
refused with :class:`CheckpointFormatError` rather than misread.

Why not Orbax: the state of a Facet run is a few MB of replicated arrays; a single-writer NumPy
archive with our own atomic protocol has no extra dependency, no background threads, and is
byte-for-byte verifiable. In a multi-host run only process 0 writes (parameters are replicated).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .data.sources import sha256_file
from .version import __version__

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "CheckpointFormatError",
    "save_checkpoint",
    "verify_checkpoint",
    "load_checkpoint",
    "read_arrays",
    "step_dir",
    "list_checkpoints",
    "latest_checkpoint",
    "prune_checkpoints",
    "atomic_write_text",
]

FORMAT_VERSION = 1
_PREFIX = "step_"


class CheckpointError(RuntimeError):
    """A checkpoint is incomplete, truncated, corrupted or does not match the model."""


class CheckpointFormatError(CheckpointError):
    """A checkpoint was written by a newer format than this code can read."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a small text file atomically (temporary file, fsync, ``os.replace``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _write_bytes(tmp, text.encode())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _flatten(name: str, tree: Any) -> dict[str, np.ndarray]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    out = {}
    for path, leaf in leaves:
        key = f"{name}/{jax.tree_util.keystr(path)}"
        out[key] = np.asarray(jax.device_get(leaf))
    return out


def step_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"{_PREFIX}{step:09d}"


def save_checkpoint(
    root: str | Path,
    step: int,
    trees: dict[str, Any],
    *,
    config_yaml: str,
    state: dict | None = None,
    facet_version: str | None = None,
    supported_elements: list[str] | None = None,
) -> Path:
    """Atomically write ``trees`` (name -> pytree of arrays) as checkpoint ``step`` under
    ``root`` and return its directory. ``state`` must be JSON-serialisable.

    Nothing non-finite is ever written: a NaN or inf in any floating array raises
    :class:`CheckpointError` naming the array before a byte is written. ``supported_elements``
    (sorted element symbols the model was trained on) goes to ``meta.json``
    (:mod:`facet.elements`)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(f".tmp-{_PREFIX}*"):  # left by a process killed mid-write
        shutil.rmtree(stale, ignore_errors=True)
    final = step_dir(root, step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()

    arrays: dict[str, np.ndarray] = {}
    for name, tree in trees.items():
        arrays |= _flatten(name, tree)
    bad = [k for k, a in arrays.items()
           if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a))]
    if bad:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(
            f"refusing to write checkpoint step {step} under {root}: {len(bad)} arrays hold NaN "
            f"or inf (first: {bad[0]})"
        )
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _write_bytes(tmp / "arrays.npz", buf.getvalue())
    _write_bytes(tmp / "config.yaml", config_yaml.encode())
    meta = {
        "format": FORMAT_VERSION,
        "facet_version": facet_version or __version__,
        "step": int(step),
        "trees": sorted(trees),
        "state": state or {},
        **({"supported_elements": list(supported_elements)} if supported_elements else {}),
        "sha256": {f: sha256_file(tmp / f) for f in ("arrays.npz", "config.yaml")},
    }
    _write_bytes(tmp / "meta.json", json.dumps(meta, indent=1).encode())
    _write_bytes(tmp / "COMPLETE", sha256_file(tmp / "meta.json").encode())
    _fsync_dir(tmp)
    if final.exists():  # re-saving a step (e.g. after a resume): move the old one aside first
        old = root / f".tmp-old-{final.name}-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(root)
    return final


def verify_checkpoint(path: str | Path) -> dict:
    """Check completeness, format version and checksums; return ``meta``.

    Raises :class:`CheckpointFormatError` for a newer format and :class:`CheckpointError`
    (naming the file) for anything missing, truncated or corrupted.
    """
    path = Path(path)
    marker = path / "COMPLETE"
    if not marker.is_file():
        raise CheckpointError(f"checkpoint {path} is incomplete (no COMPLETE marker)")
    try:
        meta_bytes = (path / "meta.json").read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path}: cannot read meta.json ({exc})") from exc
    if hashlib.sha256(meta_bytes).hexdigest() != marker.read_text().strip():
        raise CheckpointError(f"checkpoint {path}: meta.json is corrupted (checksum mismatch)")
    meta = json.loads(meta_bytes)
    fmt = meta.get("format")
    if not isinstance(fmt, int) or fmt > FORMAT_VERSION:
        raise CheckpointFormatError(
            f"checkpoint {path} has format {fmt!r}, written by facet {meta.get('facet_version')}; "
            f"this facet reads formats <= {FORMAT_VERSION}. Upgrade facet to load it."
        )
    for fname, digest in meta["sha256"].items():
        f = path / fname
        if not f.is_file():
            raise CheckpointError(f"checkpoint {path}: {fname} is missing")
        if sha256_file(f) != digest:
            raise CheckpointError(
                f"checkpoint {path}: {fname} is truncated or corrupted (checksum mismatch)"
            )
    return meta


def load_checkpoint(path: str | Path, templates: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """Verify and read a checkpoint into pytrees shaped like ``templates`` (name -> pytree).

    Every leaf of every template must be present with the same shape; dtypes are cast to the
    template's. Raises :class:`CheckpointError` naming the first missing or mismatched key.
    """
    path = Path(path)
    meta = verify_checkpoint(path)
    with np.load(path / "arrays.npz") as npz:
        stored = {k: npz[k] for k in npz.files}
    out = {}
    for name, template in templates.items():
        leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
        new = []
        for kp, leaf in leaves:
            key = f"{name}/{jax.tree_util.keystr(kp)}"
            if key not in stored:
                raise CheckpointError(f"checkpoint {path} has no array '{key}'")
            arr = stored[key]
            want = np.shape(leaf)
            if arr.shape != want:
                raise CheckpointError(
                    f"checkpoint {path}: array '{key}' has shape {arr.shape}, the model expects "
                    f"{want} (different model configuration?)"
                )
            # ``leaf.dtype`` also for abstract templates (``jax.ShapeDtypeStruct``).
            new.append(arr.astype(np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else arr.dtype))
        out[name] = jax.tree_util.tree_unflatten(treedef, new)
    return out, meta


def read_arrays(path: str | Path, tree: str) -> dict[str, np.ndarray]:
    """The raw arrays of one saved tree, keyed by keystr path (verified first)."""
    path = Path(path)
    verify_checkpoint(path)
    prefix = f"{tree}/"
    with np.load(path / "arrays.npz") as npz:
        return {k[len(prefix):]: npz[k] for k in npz.files if k.startswith(prefix)}


def list_checkpoints(root: str | Path) -> list[Path]:
    """Step directories under ``root`` (complete or not), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    dirs = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX)]
    return sorted(dirs, key=lambda p: int(p.name[len(_PREFIX):]))


def latest_checkpoint(root: str | Path, *, report=print) -> Path | None:
    """The newest checkpoint under ``root`` that verifies; corrupt or incomplete ones are
    reported (``report(message)``) and skipped. A newer-format checkpoint raises."""
    for path in reversed(list_checkpoints(root)):
        try:
            verify_checkpoint(path)
        except CheckpointFormatError:
            raise
        except CheckpointError as exc:
            report(f"warning: {exc}; falling back to the previous checkpoint")
            continue
        return path
    return None


def prune_checkpoints(root: str | Path, keep: int, protect: set[int] = frozenset()) -> None:
    """Delete all but the ``keep`` newest step directories, never those in ``protect``."""
    if keep <= 0:
        return
    paths = list_checkpoints(root)
    for p in paths[:-keep]:
        if int(p.name[len(_PREFIX):]) not in protect:
            shutil.rmtree(p, ignore_errors=True)
