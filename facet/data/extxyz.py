"""Extended XYZ files and ASE databases: readers to validated frames, and an exact extxyz writer.

Label conventions read (all in ASE units and sign: eV, eV/A, eV/A^3 positive = tensile):

* ``"calc"``: the calculator results ASE builds from the ``energy``/``forces``/``stress``/
  ``magmoms`` keys (matbench-discovery and MACE-MP MPTrj releases; since ASE 3.23 these land in
  ``atoms.calc``, read with ``atoms.calc.results``, never recomputed);
* a prefix such as ``"REF_"`` (MACE's convention): ``REF_energy`` (info), ``REF_forces``
  (per-atom array), ``REF_stress`` (info; 6 Voigt values ``xx yy zz yz xz xy`` or 9) or, failing
  that, ``REF_virials`` (6 or 9 values, ``W = -V sigma``, so ``sigma = -W / V``);
* ``"auto"`` (default): ``REF_`` when the frame has ``REF_energy`` or ``REF_forces``, else
  ``"calc"``.

Material id: ``info["mp_id"]``, ``info["material_id"]`` or ``info["mat_id"]``; without one every
frame is its own material (``<file stem>:<index>``). Frame id: ``info["frame_id"]``, else the
``task_id``/``calc_id``/``ionic_step`` entries joined by ``-``, else the frame index.

The writer prints every float with ``repr`` (17 significant digits), so a write/read round trip
is exact, unlike ASE's fixed ``%.8f`` columns.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .frames import (
    DEFAULT_MIN_DISTANCE,
    Frame,
    FrameError,
    FrameTask,
    OnError,
    ReadStats,
    make_frame,
    run_tasks,
)
from .neighbors import voigt_to_matrix

__all__ = [
    "iter_extxyz",
    "iter_ase_db",
    "extxyz_tasks",
    "ase_db_tasks",
    "frame_from_atoms",
    "write_extxyz",
]

_MATERIAL_KEYS = ("mp_id", "material_id", "mat_id")
_FRAME_PARTS = ("task_id", "calc_id", "ionic_step")
#: info entries that identify or label a frame and are therefore not copied to Frame.info
_RESERVED = {"frame_id", *(_MATERIAL_KEYS)}


def _stress_from(value, *, virial: bool, volume: float) -> np.ndarray:
    s = np.asarray(value, dtype=np.float64).reshape(-1)
    m = voigt_to_matrix(s)
    return -m / volume if virial else m


def _labels(atoms, info: dict, arrays: dict, keys: str) -> dict[str, Any]:
    """energy/forces/stress/magmom (ASE units) following the ``keys`` convention."""
    if keys == "auto":
        keys = "REF_" if ("REF_energy" in info or "REF_forces" in arrays) else "calc"
    if keys == "calc":
        res = dict(getattr(atoms.calc, "results", {}) or {}) if atoms.calc is not None else {}
        stress = res.get("stress")
        return {
            "energy": res.get("energy"),
            "forces": res.get("forces"),
            "stress": None if stress is None else voigt_to_matrix(np.asarray(stress).reshape(-1)),
            "magmom": res.get("magmoms"),
        }
    p = keys
    stress = None
    if f"{p}stress" in info:
        stress = _stress_from(info[f"{p}stress"], virial=False, volume=1.0)
    elif f"{p}virials" in info:
        vol = abs(float(np.linalg.det(atoms.cell[:])))
        if vol <= 0:
            raise FrameError(f"{p}virials given for a structure without volume", reason="bad_shape")
        stress = _stress_from(info[f"{p}virials"], virial=True, volume=vol)
    return {
        "energy": info.get(f"{p}energy"),
        "forces": arrays.get(f"{p}forces"),
        "stress": stress,
        "magmom": arrays.get(f"{p}magmoms"),
    }


def _ids(info: dict, source: str, index: int) -> tuple[str, str]:
    mid = next((str(info[k]) for k in _MATERIAL_KEYS if info.get(k) is not None), None)
    if "frame_id" in info:
        fid = str(info["frame_id"])
    elif any(k in info for k in _FRAME_PARTS):
        fid = "-".join(str(info[k]) for k in _FRAME_PARTS if k in info)
    else:
        fid = str(index)
    if mid is None:
        mid = f"{Path(source).stem}:{index}"
    return mid, fid


def frame_from_atoms(
    atoms,
    *,
    source: str = "",
    index: int = 0,
    keys: str = "auto",
    require: tuple[str, ...] = ("energy", "forces"),
    info: dict | None = None,
    arrays: dict | None = None,
    min_distance: float = DEFAULT_MIN_DISTANCE,
) -> Frame:
    """An ``ase.Atoms`` with labels (see the module docstring) to a validated :class:`Frame`.

    ``require`` names the labels that must be present (missing ones raise ``missing_key``).
    """
    info = dict(atoms.info if info is None else info)
    arrays = dict(atoms.arrays if arrays is None else arrays)
    mid, fid = _ids(info, source, index)
    loc = {"source": source, "material_id": mid, "frame_id": fid}
    try:
        labels = _labels(atoms, info, arrays, keys)
    except FrameError as e:
        raise e.located(**loc) from None
    except ValueError as e:
        raise FrameError(f"bad label: {e}", reason="bad_shape", **loc) from None
    missing = [k for k in require if labels.get(k) is None]
    if missing:
        raise FrameError(
            f"missing label(s) {missing} (label keys {keys!r}; info keys {sorted(info)}, "
            f"array keys {sorted(arrays)})",
            reason="missing_key",
            **loc,
        )
    extra = {
        k: (v.item() if isinstance(v, np.generic) else v)
        for k, v in info.items()
        if k not in _RESERVED and not k.startswith("REF_") and np.ndim(v) == 0
    }
    return make_frame(
        atoms.positions,
        atoms.numbers,
        atoms.cell[:],
        atoms.pbc,
        min_distance=min_distance,
        info=extra,
        **labels,
        **loc,
    )


def _atoms_task(parse, source, index, keys, require, min_distance) -> Frame:
    """One reading task: ``parse()`` gives ``(atoms, info, arrays)`` (or raises FrameError)."""
    atoms, info, arrays = parse()
    return frame_from_atoms(
        atoms, source=source, index=index, keys=keys, require=require, info=info, arrays=arrays,
        min_distance=min_distance,
    )  # fmt: skip


def _split_xyz(fh, source: str):
    """Yield ``(index, first_line_number, text, complete)`` per frame, from the atom-count lines.

    A count line that is not an integer cannot be resynchronised from and raises; a last frame
    cut short (fewer lines than its count, or a last line without its newline) is yielded with
    ``complete=False`` and reported as truncated for that frame.
    """
    index = 0
    lineno = 0
    while True:
        first = fh.readline()
        lineno += 1
        if not first:
            return
        if not first.strip():
            continue  # trailing blank lines
        try:
            n = int(first.split()[0])
            if n < 0:
                raise ValueError(n)
        except ValueError:
            raise FrameError(
                f"line {lineno}: expected the atom count of frame {index}, got "
                f"{first.strip()[:60]!r}; the file cannot be read past this point",
                reason="malformed",
                source=source,
                frame_id=str(index),
                skippable=False,
            ) from None
        lines = [first]
        for _ in range(n + 1):
            line = fh.readline()
            if not line:
                break
            lines.append(line)
        # A last line without its newline is where a truncated file was cut (possibly inside a
        # number, which would still parse): the frame counts as truncated.
        yield index, lineno, "".join(lines), len(lines) == n + 2 and lines[-1].endswith("\n")
        lineno += len(lines) - 1
        index += 1


def _header_material(text: str) -> str | None:
    """Best-effort material id from a frame's comment line, for error messages."""
    from ase.io.extxyz import key_val_str_to_dict

    try:
        info = key_val_str_to_dict(text.split("\n", 2)[1])
    except Exception:  # noqa: BLE001 - only used to name the frame in an error
        return None
    return next((str(info[k]) for k in _MATERIAL_KEYS if k in info), None)


def _parse_xyz_frame(text: str, complete: bool, source: str, index: int, lineno: int):
    from ase.data import atomic_numbers
    from ase.io.extxyz import read_xyz

    loc = {"source": source, "frame_id": str(index), "material_id": _header_material(text)}
    if not complete:
        raise FrameError(
            f"frame {index} (line {lineno}) is truncated: fewer atom lines than its count, or "
            "its last line has no newline (add one if the file is complete)",
            reason="malformed",
            **loc,
        )
    try:
        (atoms,) = list(read_xyz(io.StringIO(text), slice(None)))
    except KeyError as e:
        sym = e.args[0] if e.args else "?"
        if isinstance(sym, str) and sym not in atomic_numbers:
            raise FrameError(f"unknown element {sym!r}", reason="unknown_element", **loc) from None
        raise FrameError(f"cannot parse (KeyError: {e})", reason="malformed", **loc) from None
    except Exception as e:  # noqa: BLE001 - whatever ASE's parser raises, locate it
        raise FrameError(
            f"cannot parse frame at line {lineno} ({type(e).__name__}: {e})",
            reason="malformed",
            **loc,
        ) from None
    return atoms, atoms.info, atoms.arrays


def extxyz_tasks(
    path: str | os.PathLike,
    *,
    keys: str = "auto",
    require: tuple[str, ...] = ("energy", "forces"),
    min_distance: float = DEFAULT_MIN_DISTANCE,
) -> Iterator[FrameTask]:
    """Split an extxyz file into per-frame reading tasks (parsing happens in the task)."""
    source = os.fspath(path)
    n = 0
    with open(source, encoding="utf-8") as fh:
        frames = _split_xyz(fh, source)
        while True:
            try:
                index, lineno, text, complete = next(frames)
            except StopIteration:
                break
            except UnicodeDecodeError as e:
                raise FrameError(
                    f"after {n} frames: the file is not UTF-8 text ({e}); the file cannot be "
                    "read past this point",
                    reason="malformed", source=source, skippable=False,
                ) from None  # fmt: skip
            n += 1
            parse = partial(_parse_xyz_frame, text, complete, source, index, lineno)
            yield partial(_atoms_task, parse, source, index, keys, require, min_distance)


def iter_extxyz(
    path: str | os.PathLike,
    *,
    keys: str = "auto",
    require: tuple[str, ...] = ("energy", "forces"),
    on_error: OnError = "raise",
    stats: ReadStats | None = None,
    min_distance: float = DEFAULT_MIN_DISTANCE,
) -> Iterator[Frame]:
    """Stream frames from an extended XYZ file, one frame in memory at a time.

    Frames are split on their atom-count lines and each is parsed by ASE's extxyz parser, so a
    frame ASE cannot parse (an unknown element, a bad number, a truncated last frame) is reported
    for that frame and can be skipped. Bad frames raise :class:`FrameError` naming file, material
    (when known) and frame or, with ``on_error="skip"``, are counted in ``stats``. A count line that
    is not an integer always raises: the stream cannot be resynchronised.
    """
    stats = ReadStats() if stats is None else stats
    tasks = extxyz_tasks(path, keys=keys, require=require, min_distance=min_distance)
    yield from run_tasks(tasks, on_error=on_error, stats=stats)


def _db_row_parts(atoms, key_value_pairs, data):
    info = dict(key_value_pairs)
    arrays = dict(atoms.arrays)
    # row.data holds both per-atom arrays and per-frame vectors (a 9-value stress of a 9-atom
    # cell is ambiguous by shape): offer each entry to both lookups.
    for k, v in dict(data or {}).items():
        info.setdefault(k, v)
        arrays.setdefault(k, v)
    return atoms, info, arrays


def ase_db_tasks(
    path: str | os.PathLike,
    *,
    keys: str = "auto",
    require: tuple[str, ...] = ("energy", "forces"),
    min_distance: float = DEFAULT_MIN_DISTANCE,
    selection: Any = None,
) -> Iterator[FrameTask]:
    """Per-row reading tasks of an ASE database (rows are fetched here, converted in the task).

    A file that is not an ASE database (or whose tables are corrupt) raises a FrameError that
    cannot be skipped; a row that cannot be turned into a structure is a ``malformed`` task.
    """
    import ase.db

    source = os.fspath(path)
    if not Path(source).exists():
        raise FileNotFoundError(f"ASE database {source} does not exist")
    index = 0
    try:
        db = ase.db.connect(source)
        rows = iter(db.select(selection))
        while True:
            try:
                row = next(rows)
            except StopIteration:
                break
            try:
                parts = (row.toatoms(), row.key_value_pairs, row.get("data"))
            except Exception as e:  # noqa: BLE001 - a corrupt row: locate it, skip or raise
                yield FrameError(
                    f"row {index} cannot be read ({type(e).__name__}: {e})",
                    reason="malformed", source=source, frame_id=str(index),
                )  # fmt: skip
            else:
                parse = partial(_db_row_parts, *parts)
                yield partial(_atoms_task, parse, source, index, keys, require, min_distance)
            index += 1
    except FrameError:
        raise
    except Exception as e:  # noqa: BLE001 - sqlite3/JSON errors of a file that is no database
        raise FrameError(
            f"after {index} rows: not a readable ASE database ({type(e).__name__}: {e})",
            reason="malformed", source=source, skippable=False,
        ) from None  # fmt: skip


def iter_ase_db(
    path: str | os.PathLike,
    *,
    keys: str = "auto",
    require: tuple[str, ...] = ("energy", "forces"),
    on_error: OnError = "raise",
    stats: ReadStats | None = None,
    min_distance: float = DEFAULT_MIN_DISTANCE,
    selection: Any = None,
) -> Iterator[Frame]:
    """Stream frames from an ASE database (``.db``/``.aselmdb``/``.json`` via ``ase.db.connect``).

    Ids and ``REF_*`` scalars come from the row's key-value pairs, per-atom ``REF_*`` arrays from
    ``row.data``; calculator results stored with the row are the ``"calc"`` labels.
    """
    stats = ReadStats() if stats is None else stats
    tasks = ase_db_tasks(
        path, keys=keys, require=require, min_distance=min_distance, selection=selection
    )
    yield from run_tasks(tasks, on_error=on_error, stats=stats)


def _fmt(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "T" if v else "F"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    s = str(v)
    if s and not any(c in s for c in ' ="\t\n'):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_extxyz(path: str | os.PathLike, frames: Iterable[Frame], *, prefix: str = "") -> int:
    """Write frames as extended XYZ with exact (``repr``) floats; returns the number written.

    With ``prefix=""`` the labels are ``energy``/``forces``/``stress`` (9 values)/``magmoms``, which
    ASE reads into ``atoms.calc``; with ``prefix="REF_"`` they are MACE's ``REF_*`` keys. The
    material and frame ids go to ``mp_id`` and ``frame_id``; scalar ``Frame.info`` entries follow.
    """
    from ase.data import chemical_symbols

    n = 0
    with open(path, "w") as fh:
        for f in frames:
            props = ["species:S:1", "pos:R:3"]
            cols = [f.positions]
            if f.forces is not None:
                props.append(f"{prefix}forces:R:3")
                cols.append(f.forces)
            if f.magmom is not None:
                props.append(f"{prefix}magmoms:R:1")
                cols.append(f.magmom[:, None])
            head = {}
            if f.pbc.any() or np.any(f.cell):
                head["Lattice"] = " ".join(repr(float(x)) for x in f.cell.reshape(-1))
            head["Properties"] = ":".join(props)
            head["mp_id"] = f.material_id
            head["frame_id"] = f.frame_id
            if f.energy is not None:
                head[f"{prefix}energy"] = f.energy
            if f.stress is not None:
                head[f"{prefix}stress"] = " ".join(repr(float(x)) for x in f.stress.reshape(-1))
            for k, v in f.info.items():
                if np.ndim(v) == 0 and v is not None and k not in head and k not in _RESERVED:
                    head[k] = v
            head["pbc"] = " ".join("T" if p else "F" for p in f.pbc)
            fh.write(f"{f.n_atoms}\n")
            fh.write(
                " ".join(
                    f"{k}={_fmt(v)}" if k not in ("Lattice", "stress", f"{prefix}stress", "pbc")
                    else f'{k}="{v}"'
                    for k, v in head.items()
                )
                + "\n"
            )  # fmt: skip
            table = np.concatenate(cols, axis=1)
            for z, row in zip(f.numbers.tolist(), table.tolist(), strict=True):
                fh.write(chemical_symbols[z] + " " + " ".join(repr(x) for x in row) + "\n")
            n += 1
    return n
