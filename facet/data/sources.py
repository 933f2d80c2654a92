"""One entry point over every source format: a registry from format name to reader.

``read_frames(path)`` picks the reader from the file name (``.json`` MPTrj layout, ``.extxyz``/
``.xyz`` extended XYZ, ``.db``/``.aselmdb`` ASE database) unless ``format`` is given, and streams
validated :class:`~facet.data.frames.Frame` objects, counting read/kept/skipped frames in
``stats``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .frames import DEFAULT_MIN_DISTANCE, Frame, FrameTask, OnError, ReadStats, run_tasks

__all__ = [
    "SOURCE_FORMATS",
    "SourceFormat",
    "detect_format",
    "frame_tasks",
    "read_frames",
    "sha256_file",
]


@dataclass(frozen=True)
class SourceFormat:
    """A source format: ``tasks(path, *, label, keys, min_distance)`` splits a file into
    picklable per-frame reading tasks (:data:`facet.data.frames.FrameTask`)."""

    name: str
    suffixes: tuple[str, ...]
    description: str
    tasks: Callable[..., Iterator[FrameTask]]


def _mptrj(path, *, label, keys, min_distance):
    from .mptrj import mptrj_tasks

    return mptrj_tasks(path, label=label, min_distance=min_distance)


def _extxyz(path, *, label, keys, min_distance):
    from .extxyz import extxyz_tasks

    return extxyz_tasks(path, keys=keys, min_distance=min_distance)


def _asedb(path, *, label, keys, min_distance):
    from .extxyz import ase_db_tasks

    return ase_db_tasks(path, keys=keys, min_distance=min_distance)


SOURCE_FORMATS: dict[str, SourceFormat] = {
    f.name: f
    for f in (
        SourceFormat("mptrj", (".json",), "MPTrj JSON layout {mp_id: {frame_id: frame}}", _mptrj),
        SourceFormat("extxyz", (".extxyz", ".xyz"), "extended XYZ (ASE/MACE keys)", _extxyz),
        SourceFormat("asedb", (".db", ".aselmdb"), "ASE database", _asedb),
    )
}


def detect_format(path: str | os.PathLike) -> str:
    p = Path(path)
    # "x.json.gz" is read as "x.json" through a decompressing stream (MPTrj JSON only).
    suffix = Path(p.stem).suffix.lower() if p.suffix.lower() == ".gz" else p.suffix.lower()
    for f in SOURCE_FORMATS.values():
        if suffix in f.suffixes:
            return f.name
    known = {f.name: f.suffixes for f in SOURCE_FORMATS.values()}
    raise ValueError(
        f"cannot tell the format of {os.fspath(path)!r} from its suffix; known: {known}; "
        "pass the format explicitly"
    )


def read_frames(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    label: str = "uncorrected_total_energy",
    keys: str = "auto",
    on_error: OnError = "raise",
    stats: ReadStats | None = None,
    min_distance: float = DEFAULT_MIN_DISTANCE,
) -> Iterator[Frame]:
    """Stream validated frames from any registered format (see :data:`SOURCE_FORMATS`).

    ``label`` selects the MPTrj energy (ignored for other formats, whose energy is whatever the
    file calls energy under ``keys``); ``keys`` selects the extxyz/ASE-db label convention.
    """
    stats = ReadStats() if stats is None else stats
    return run_tasks(
        frame_tasks(path, format=format, label=label, keys=keys, min_distance=min_distance),
        on_error=on_error,
        stats=stats,
    )


def frame_tasks(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    label: str = "uncorrected_total_energy",
    keys: str = "auto",
    min_distance: float = DEFAULT_MIN_DISTANCE,
) -> Iterator[FrameTask]:
    """The per-frame reading tasks of a source (for :func:`read_frames` or worker processes)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"source {os.fspath(path)!r} does not exist")
    name = format or detect_format(path)
    if name not in SOURCE_FORMATS:
        raise ValueError(f"unknown format {name!r}; choose one of {list(SOURCE_FORMATS)}")
    return SOURCE_FORMATS[name].tasks(path, label=label, keys=keys, min_distance=min_distance)


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
