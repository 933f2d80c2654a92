"""Convert a source dataset once into HDF5 shards with precomputed neighbour lists.

Pipeline: :func:`facet.data.sources.read_frames` (streaming, validated, units converted) ->
:func:`facet.data.neighbors.graph_from_frame` (cutoff) -> split by material -> shards
(:mod:`facet.data.shards`) -> ``manifest.json``.

Split: a material goes to validation when ``u(material_id) < val_fraction`` with
``u = int(sha256(f"{seed}:{material_id}")[:16], 16) / 2**64``. The decision needs no global view
of the data (it streams, and the 11 GB MPTrj never has to be held or read twice), is the same for
every frame of a material (no material in both splits), is stable when the source grows, and
changes with ``seed``. The validation share is ``val_fraction`` in expectation over materials.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import multiprocessing
import os
import platform
import re
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

from tqdm import tqdm

from ..errors import InputError
from ..nn.config import ModelConfig
from ..version import __version__
from .batch import Graph
from .frames import (
    DEFAULT_MIN_DISTANCE,
    FrameError,
    FrameTask,
    OnError,
    ReadStats,
    check_min_distance,
)
from .neighbors import graph_from_frame
from .shards import SHARD_FORMAT_VERSION, write_shard
from .sources import detect_format, frame_tasks, sha256_file
from .stats import DatasetStats

__all__ = ["PreprocessConfig", "preprocess", "split_of", "MANIFEST", "SPLITS"]

MANIFEST = "manifest.json"
SPLITS = ("train", "val")


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that determines the content of a preprocessed directory.

    Attributes:
        cutoff: neighbour-list radius, Angstrom (the model's cutoff must not exceed it).
        label: MPTrj energy label (see :data:`facet.data.mptrj.ENERGY_LABELS`).
        keys: extxyz/ASE-db label convention (``"auto"``, ``"calc"``, ``"REF_"``, ...).
        val_fraction: expected share of materials in the validation split, in [0, 1].
        seed: split seed.
        on_error: ``"raise"`` or ``"skip"`` (skips are counted by reason in the manifest).
        shard_size: frames per shard file.
        min_distance: physical minimum interatomic distance, Angstrom.
        format: source format name, or None to detect it from the suffix.
    """

    cutoff: float = ModelConfig.cutoff  # the model's default cutoff, owned by ModelConfig
    label: str = "uncorrected_total_energy"
    keys: str = "auto"
    val_fraction: float = 0.05
    seed: int = 0
    on_error: OnError = "raise"
    shard_size: int = 10_000
    min_distance: float = DEFAULT_MIN_DISTANCE
    format: str | None = None

    def __post_init__(self):
        if not (self.cutoff > 0):
            raise ValueError(f"cutoff must be positive, got {self.cutoff}")
        if not (0.0 <= self.val_fraction <= 1.0):
            raise ValueError(f"val_fraction must be in [0, 1], got {self.val_fraction}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        if self.on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {self.on_error!r}")


def split_of(material_id: str, *, seed: int, val_fraction: float) -> str:
    """``"val"`` or ``"train"`` for a material (see the module docstring)."""
    h = hashlib.sha256(f"{seed}:{material_id}".encode()).hexdigest()
    return "val" if int(h[:16], 16) / 2.0**64 < val_fraction else "train"


def _graph_task(
    task: FrameTask, *, cutoff: float, min_distance: float
) -> tuple[Graph, tuple] | FrameError:
    """Read one frame and build its graph: ``(graph, labels dropped)``; a bad frame is returned
    (not raised) as FrameError so that the caller applies the error policy in order, whichever
    process ran the task."""
    if isinstance(task, FrameError):
        return task
    try:
        frame = task()
        graph = graph_from_frame(frame, cutoff)
        if min_distance > 0:
            check_min_distance(frame, min_distance, edges=(graph.senders, graph.receivers,
                                                           graph.shifts))  # fmt: skip
    except FrameError as err:
        return err
    return graph, frame.dropped


def _bounded_map(pool, fn, items: Iterable, *, window: int, chunksize: int) -> Iterator:
    """``pool.map`` in windows of ``window`` items, in order: ``map`` alone would submit a whole
    streaming source (the 11 GB MPTrj) at once."""
    it = iter(items)
    while block := list(itertools.islice(it, window)):
        yield from pool.map(fn, block, chunksize=chunksize)


class _SplitWriter:
    def __init__(self, out: Path, split: str, cfg: PreprocessConfig):
        self.out, self.split, self.cfg = out, split, cfg
        self.buffer = []
        self.shards: list[dict] = []
        self.stats = DatasetStats()

    def add(self, graph) -> None:
        self.buffer.append(graph)
        self.stats.add(graph, n_edges=graph.n_edge)
        if len(self.buffer) >= self.cfg.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        name = f"{self.split}-{len(self.shards):05d}.h5"
        counts = write_shard(self.out / name, self.buffer, cutoff=self.cfg.cutoff)
        self.shards.append({"file": name, **counts})
        self.buffer = []

    def finish(self) -> dict:
        self.flush()
        for s in self.shards:
            path = self.out / s["file"]
            s["bytes"] = path.stat().st_size
            s["sha256"] = sha256_file(path)
        return {"shards": self.shards, "stats": self.stats.as_dict()}


#: names of the files a preprocess run writes (and may therefore remove when overwriting):
#: shards ``train-00000.h5``/``val-00003.h5`` (and their ``.partial`` while written) and the
#: manifest's temporary file; ``train-final-weights.h5`` is not one of them.
_OWN_FILE = re.compile(
    rf"^(?:(?:{'|'.join(SPLITS)})-\d{{5,}}\.h5(?:\.partial)?|{re.escape(MANIFEST)}\.partial)$"
)


def _clear_output(out: Path, overwrite: bool) -> None:
    """Prepare ``out``: create it, or refuse a non-empty folder that holds no manifest unless
    ``overwrite``, and then remove only files this tool writes (never anything else)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output {out} is a file, not a directory")
    has_manifest = (out / MANIFEST).exists()
    if out.is_dir() and not has_manifest and any(out.iterdir()) and not overwrite:
        names = sorted(p.name for p in out.iterdir())
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        # (``--overwrite`` then removes only files matching _OWN_FILE)
        raise FileExistsError(
            f"output {out} is not empty ({shown}) and holds no {MANIFEST}: it was not written by "
            "facet preprocess; choose an empty or new directory, or pass --overwrite (which "
            "removes only shards and manifests, never other files)"
        )
    out.mkdir(parents=True, exist_ok=True)
    own: set[Path] = set()
    if has_manifest:
        try:
            old = json.loads((out / MANIFEST).read_text())
            for split in old.get("splits", {}).values():
                own |= {out / s["file"] for s in split.get("shards", []) if "file" in s}
        except (ValueError, TypeError, AttributeError):
            pass  # an unreadable manifest: fall back to the name patterns
    own |= {p for p in out.iterdir() if _OWN_FILE.match(p.name)}
    (out / MANIFEST).unlink(missing_ok=True)
    for path in sorted(own):
        if path.parent == out and path.is_file():
            path.unlink()


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("facet-mlip", "numpy", "h5py", "vesin", "ase", "pymatgen", "ijson"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _reused(out: Path, source_sha: str | None, config_record: dict, overwrite: bool):
    """The manifest of ``out`` when it already holds this dataset (same source bytes, same
    settings; ``None`` when there is none or ``overwrite``); another dataset is refused."""
    if not (out / MANIFEST).exists() or overwrite:
        return None
    old = json.loads((out / MANIFEST).read_text())
    if (
        old.get("format_version") == SHARD_FORMAT_VERSION
        and old.get("source", {}).get("sha256") == source_sha
        and old.get("config") == config_record
    ):
        return old | {"reused": True}  # same source bytes, same settings: nothing to do
    raise FileExistsError(
        f"{out} already holds a dataset preprocessed from {old.get('source', {}).get('path')}"
        " with a different source or configuration; pass overwrite=True (--overwrite) or "
        "choose another output directory"
    )


@contextmanager
def _graph_results(source, fmt: str, config: PreprocessConfig, workers: int):
    """The reader's frames turned into graphs, in source order: ``(Graph, dropped)`` or the
    :class:`FrameError` of a bad frame, on ``workers`` processes when ``workers > 1``."""
    # The minimum-distance check needs a neighbour list; when the cutoff covers it, check it on
    # the graph's edges instead of building a second list in the reader (same error, same count).
    late_check = config.min_distance > 0 and config.cutoff >= config.min_distance
    tasks = frame_tasks(
        source, format=fmt, label=config.label, keys=config.keys,
        min_distance=0.0 if late_check else config.min_distance,
    )  # fmt: skip
    work = partial(
        _graph_task, cutoff=config.cutoff, min_distance=config.min_distance if late_check else 0.0
    )
    if workers <= 1:
        yield map(work, tasks)
        return
    # spawn, not fork: the parent may hold JAX or other threads that fork would copy badly.
    # An executor (not multiprocessing.Pool) so that a worker that dies raises
    # BrokenProcessPool instead of being respawned forever.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield _bounded_map(pool, work, tasks, window=workers * 512, chunksize=64)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _split_and_write(bar: tqdm, writers: dict, stats: ReadStats, source,
                     config: PreprocessConfig) -> None:
    """Count every result (iterated through the progress ``bar``) in ``stats``; write the good
    graphs to their material's split and raise or skip (counted) the bad frames as
    ``config.on_error`` says."""
    for result in bar:
        stats.read += 1
        if not isinstance(result, FrameError):
            result, dropped = result
            try:
                stats.keep(result.key, dropped, source=os.fspath(source))
            except FrameError as err:
                result = err
        if isinstance(result, FrameError):
            if config.on_error == "raise" or not result.skippable:
                raise result
            stats.skip(result)
            bar.set_postfix(skipped=stats.n_skipped, refresh=False)
            continue
        material_id = result.key.rpartition("/")[0]
        split = split_of(material_id, seed=config.seed, val_fraction=config.val_fraction)
        writers[split].add(result)


def _finished_splits(writers: dict, stats: ReadStats, source) -> dict:
    """Close the shards of both splits; check that every kept frame was written once and that
    no material is in both splits."""
    stats.check()
    if stats.read == 0:
        raise InputError(f"no frames read from {os.fspath(source)}: the source holds no frame")
    splits = {s: w.finish() for s, w in writers.items()}
    kept = sum(v["stats"]["frames"] for v in splits.values())
    if kept != stats.kept:
        raise AssertionError(f"wrote {kept} frames but the reader kept {stats.kept}")
    train_ids = writers["train"].stats.materials
    if not train_ids.isdisjoint(writers["val"].stats.materials):
        raise AssertionError("a material landed in both splits")
    return splits


def _manifest(source, fmt: str, source_sha, config: PreprocessConfig, config_record: dict,
              stats: ReadStats, splits: dict, seconds: float) -> dict:
    return {
        "format": "facet-hdf5-shards",
        "format_version": SHARD_FORMAT_VERSION,
        "facet_version": __version__,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "source": {
            "path": os.fspath(source),
            "format": fmt,
            "sha256": source_sha,
            "bytes": Path(source).stat().st_size if Path(source).is_file() else None,
        },
        "config": config_record,
        "label": config.label if fmt == "mptrj" else f"extxyz keys {config.keys!r}",
        "cutoff": config.cutoff,
        "split": {
            "by": "material_id",
            "rule": "val iff int(sha256(f'{seed}:{material_id}')[:16], 16) / 2**64 < val_fraction",
            "seed": config.seed,
            "val_fraction": config.val_fraction,
        },
        "counts": stats.as_dict(),
        "splits": splits,
        "seconds": round(seconds, 3),
        "versions": _versions(),
    }


def preprocess(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: PreprocessConfig = PreprocessConfig(),
    *,
    progress: bool = True,
    overwrite: bool = False,
    workers: int = 1,
) -> dict:
    """Read ``source``, build neighbour lists, split by material, write shards and a manifest.

    Returns the manifest (also written to ``out_dir/manifest.json``, last, so that a directory
    without a manifest is recognisably incomplete). If ``out_dir`` already holds a dataset made
    from the same source bytes (sha256) with the same configuration, it is kept and its manifest
    returned with ``"reused": True``; a different one raises ``FileExistsError`` unless
    ``overwrite``. A non-empty ``out_dir`` without a manifest raises ``FileExistsError`` unless
    ``overwrite``; even then only the files an earlier preprocess wrote (shards named in its
    manifest, or named like ours: ``train-*.h5``, ``val-*.h5``, ``*.partial``) are removed,
    never another file. With ``on_error="raise"`` the first bad frame aborts with a
    :class:`~facet.data.frames.FrameError` naming file, material and frame, and no manifest is
    written. A source that yields no frame at all raises :class:`facet.errors.InputError`
    ("no frames read from ...").
    """
    out = Path(out_dir)
    if not Path(source).exists():
        raise FileNotFoundError(f"source {os.fspath(source)!r} does not exist")
    fmt = config.format or detect_format(source)
    t0 = time.perf_counter()
    source_sha = sha256_file(source) if Path(source).is_file() else None
    config_record = asdict(config) | {"format": fmt}
    if (old := _reused(out, source_sha, config_record, overwrite)) is not None:
        return old
    _clear_output(out, overwrite)
    stats = ReadStats()
    writers = {s: _SplitWriter(out, s, config) for s in SPLITS}
    with _graph_results(source, fmt, config, workers) as results:
        bar = tqdm(results, disable=not progress, unit="frame",
                   desc=f"preprocess {Path(source).name}")
        _split_and_write(bar, writers, stats, source, config)
    bar.close()
    splits = _finished_splits(writers, stats, source)
    manifest = _manifest(source, fmt, source_sha, config, config_record, stats, splits,
                         time.perf_counter() - t0)
    tmp = out / (MANIFEST + ".partial")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, out / MANIFEST)
    return manifest
