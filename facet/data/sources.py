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

from .frames import DEFAULT_MIN_DISTANCE, Frame, OnError, ReadStats

__all__ = ["SOURCE_FORMATS", "SourceFormat", "detect_format", "read_frames", "sha256_file"]


@dataclass(frozen=True)
class SourceFormat:
    name: str
    suffixes: tuple[str, ...]
    description: str
    open: Callable[..., Iterator[Frame]]


def _mptrj(path, *, label, keys, on_error, stats, min_distance):
    from .mptrj import iter_mptrj

    return iter_mptrj(path, label=label, on_error=on_error, stats=stats, min_distance=min_distance)


def _extxyz(path, *, label, keys, on_error, stats, min_distance):
    from .extxyz import iter_extxyz

    return iter_extxyz(path, keys=keys, on_error=on_error, stats=stats, min_distance=min_distance)


def _asedb(path, *, label, keys, on_error, stats, min_distance):
    from .extxyz import iter_ase_db

    return iter_ase_db(path, keys=keys, on_error=on_error, stats=stats, min_distance=min_distance)


SOURCE_FORMATS: dict[str, SourceFormat] = {
    f.name: f
    for f in (
        SourceFormat("mptrj", (".json",), "MPTrj JSON layout {mp_id: {frame_id: frame}}", _mptrj),
        SourceFormat("extxyz", (".extxyz", ".xyz"), "extended XYZ (ASE/MACE keys)", _extxyz),
        SourceFormat("asedb", (".db", ".aselmdb"), "ASE database", _asedb),
    )
}


def detect_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
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
    if not Path(path).exists():
        raise FileNotFoundError(f"source {os.fspath(path)!r} does not exist")
    name = format or detect_format(path)
    if name not in SOURCE_FORMATS:
        raise ValueError(f"unknown format {name!r}; choose one of {list(SOURCE_FORMATS)}")
    stats = ReadStats() if stats is None else stats
    return SOURCE_FORMATS[name].open(
        path, label=label, keys=keys, on_error=on_error, stats=stats, min_distance=min_distance
    )


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
