"""Streaming reader and writer for the MPTrj JSON layout (Deng et al., CHGNet, Nat. Mach. Intell.
5, 1031 (2023); the ``MPtrj_2022.9_full.json`` release).

Layout: one JSON object ``{mp_id: {"<task_id>-<calc_id>-<ionic_step>": frame}}``; a frame has
``structure`` (a pymatgen ``Structure.as_dict()``), ``uncorrected_total_energy`` and
``corrected_total_energy`` (eV; the latter with the MP2020 corrections), ``energy_per_atom``
(corrected, eV/atom), ``ef_per_atom``, ``e_per_atom_relaxed``, ``ef_per_atom_relaxed``,
``force`` (``(n, 3)`` eV/A), ``stress`` (``(3, 3)`` **kBar, VASP sign: positive = compressive**),
``magmom`` (per atom or null), ``bandgap`` and ``mp_id``.

The 11 GB file is never loaded whole: :func:`iter_mptrj` walks it with ijson (C backend), holding
one material at a time. Stress is converted once, here, to ASE's eV/A^3 positive-tensile
convention (:func:`facet.data.frames.stress_from_vasp_kbar`). Which energy becomes the label is
a recorded choice (:data:`ENERGY_LABELS`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any, Literal, get_args

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
    stress_from_vasp_kbar,
    stress_to_vasp_kbar,
)

__all__ = [
    "ENERGY_LABELS",
    "EnergyLabel",
    "iter_mptrj",
    "mptrj_tasks",
    "write_mptrj",
    "structure_from_dict",
]

EnergyLabel = Literal["uncorrected_total_energy", "corrected_total_energy"]

#: Energy label choices and who trained on them.
ENERGY_LABELS: dict[str, str] = {
    "uncorrected_total_energy": "raw VASP total energy, eV (SevenNet-0, MACE-MP-0)",
    "corrected_total_energy": "MP2020-corrected total energy, eV (CHGNet; = energy_per_atom * n)",
}
assert set(ENERGY_LABELS) == set(get_args(EnergyLabel))

#: Scalar frame entries kept verbatim in ``Frame.info``.
INFO_KEYS = (
    "uncorrected_total_energy",
    "corrected_total_energy",
    "energy_per_atom",
    "ef_per_atom",
    "e_per_atom_relaxed",
    "ef_per_atom_relaxed",
    "bandgap",
    "mp_id",
)



def open_maybe_gzip(path):
    """Open ``path`` for binary reading, decompressing on the fly when it ends in ``.gz``
    (the bundled distillation set is ``mptrj_distill.json.gz``); nothing is unpacked to disk."""
    import gzip

    if os.fspath(path).endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")

def _symbol_table() -> dict[str, int]:
    from ase.data import atomic_numbers

    return {s: z for s, z in atomic_numbers.items() if 1 <= z <= 118 and s != "X"}


_SYMBOLS: dict[str, int] | None = None


def structure_from_dict(d: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Positions, numbers, cell, pbc from a pymatgen ``Structure.as_dict()``, without pymatgen.

    Follows ``Structure.from_dict``: Cartesian positions are ``abc @ lattice.matrix`` (``xyz`` is
    used only when ``abc`` is absent); ``lattice.pbc`` defaults to periodic. Raises
    ``KeyError``/``TypeError``/``ValueError`` on a malformed dict (the caller locates it) and
    :class:`FrameError` (``disordered_site``, ``unknown_element``) for partial occupancies and
    unknown symbols.
    """
    global _SYMBOLS
    if _SYMBOLS is None:
        _SYMBOLS = _symbol_table()
    lattice = d["lattice"]
    cell = np.asarray(lattice["matrix"], dtype=np.float64)
    pbc = np.asarray(lattice.get("pbc", (True, True, True)), dtype=bool)
    sites = d["sites"]
    numbers = np.empty(len(sites), np.int64)
    coords = []
    use_abc = bool(sites) and "abc" in sites[0]
    for k, site in enumerate(sites):
        species = site["species"]
        if len(species) != 1 or abs(float(species[0].get("occu", 1.0)) - 1.0) > 1e-8:
            raise FrameError(f"site {k} is disordered ({species})", reason="disordered_site")
        sym = species[0]["element"]
        z = _SYMBOLS.get(sym)
        if z is None:
            raise FrameError(f"site {k}: unknown element {sym!r}", reason="unknown_element")
        numbers[k] = z
        coords.append(site["abc"] if use_abc else site["xyz"])
    coords = np.asarray(coords, dtype=np.float64).reshape(-1, 3)
    positions = coords @ cell if use_abc else coords
    return positions, numbers, cell, pbc


def _structure_via_pymatgen(d: Any):
    from pymatgen.core import Structure

    s = Structure.from_dict(d)
    if not s.is_ordered:
        raise FrameError("structure is disordered", reason="disordered_site")
    return (
        np.asarray(s.cart_coords, dtype=np.float64),
        np.asarray(s.atomic_numbers, dtype=np.int64),
        np.asarray(s.lattice.matrix, dtype=np.float64),
        np.asarray(s.lattice.pbc, dtype=bool),
    )


def frame_from_mptrj(
    raw: Any,
    *,
    material_id: str,
    frame_id: str,
    source: str,
    label: EnergyLabel = "uncorrected_total_energy",
    min_distance: float = DEFAULT_MIN_DISTANCE,
    use_pymatgen: bool = False,
) -> Frame:
    """One MPTrj frame dict to a validated :class:`Frame` (stress to ASE units and sign)."""
    loc = {"source": source, "material_id": material_id, "frame_id": frame_id}
    if not isinstance(raw, dict):
        raise FrameError(
            f"frame is a {type(raw).__name__}, not an object", reason="malformed", **loc
        )
    missing = [k for k in ("structure", label, "force", "stress") if raw.get(k) is None]
    if missing:
        raise FrameError(f"missing key(s) {missing}", reason="missing_key", **loc)
    try:
        parse = _structure_via_pymatgen if use_pymatgen else structure_from_dict
        positions, numbers, cell, pbc = parse(raw["structure"])
    except FrameError as e:
        raise e.located(**loc) from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise FrameError(
            f"structure is not a valid pymatgen dict ({type(e).__name__}: {e})",
            reason="malformed",
            **loc,
        ) from None
    try:
        stress_kbar = np.asarray(raw["stress"], dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise FrameError(f"stress is not numeric: {e}", reason="bad_shape", **loc) from None
    if stress_kbar.shape != (3, 3):
        raise FrameError(
            f"stress has shape {stress_kbar.shape}, expected (3, 3) kBar", reason="bad_shape", **loc
        )
    info = {k: raw[k] for k in INFO_KEYS if k in raw and k != label}
    try:
        return make_frame(
            positions,
            numbers,
            cell,
            pbc,
            energy=raw[label],
            forces=raw["force"],
            stress=stress_from_vasp_kbar(stress_kbar),
            magmom=raw.get("magmom"),
            info=info,
            min_distance=min_distance,
            **loc,
        )
    except FrameError as e:
        raise e.located(**loc) from None


class _FirstKeyWins(dict):
    """A JSON object that keeps the first value of a repeated key and records the repeats
    (``dict`` would silently keep the last and lose the others)."""

    __slots__ = ("repeated",)

    def __init__(self):
        super().__init__()
        self.repeated: list[str] = []

    def __setitem__(self, key, value):
        if key in self:
            self.repeated.append(key)
            return
        super().__setitem__(key, value)


def _check_top_level(path, source: str) -> None:
    """Raise a (not skippable) FrameError unless the file is a JSON object."""
    import ijson

    with open_maybe_gzip(path) as fh:
        try:
            first = next(ijson.parse(fh), None)
        except (ijson.JSONError, EOFError, OSError, UnicodeDecodeError) as e:
            first = ("", "error", f"{type(e).__name__}: {e}")
    if first is None or first[1] == "error":
        why = "the file is empty" if first is None else f"not JSON ({first[2]})"
        raise FrameError(
            f"no frames read from {source}: {why}", reason="malformed", source=source,
            skippable=False,
        )  # fmt: skip
    if first[1] != "start_map":
        kind = {"start_array": "a list"}.get(first[1], f"a {first[1]}")
        raise FrameError(
            f"no frames read from {source}: its top level is {kind}, not an object "
            "{material_id: {frame_id: frame}} (the MPTrj layout)",
            reason="malformed", source=source, skippable=False,
        )  # fmt: skip


def mptrj_tasks(
    path: str | os.PathLike,
    *,
    label: EnergyLabel = "uncorrected_total_energy",
    min_distance: float = DEFAULT_MIN_DISTANCE,
    use_pymatgen: bool = False,
) -> Iterator[FrameTask]:
    """Split an MPTrj-layout file into per-frame reading tasks (see :func:`iter_mptrj`).

    Only the JSON parsing happens here; each task converts and validates one frame, so tasks can
    run in worker processes. A material entry that is not an object of frames becomes a
    ``malformed`` FrameError task; a frame id repeated inside a material becomes a
    ``duplicate_id`` FrameError task (the first frame with the id is kept); truncated or
    malformed JSON, or a top level that is not an object, raises here.
    """
    import ijson

    from ..errors import InputError

    if label not in ENERGY_LABELS:
        raise InputError(f"unknown energy label {label!r}; choose one of {list(ENERGY_LABELS)}")
    source = os.fspath(path)
    _check_top_level(path, source)
    last_material: str | None = None
    n_frames = 0
    with open_maybe_gzip(path) as fh:
        items = ijson.kvitems(fh, "", use_float=True, map_type=_FirstKeyWins)
        while True:
            try:
                item = next(items)
            except StopIteration:
                break
            except (ijson.JSONError, EOFError, OSError, UnicodeDecodeError) as e:
                # EOF/OSError: truncated gzip
                where = (
                    f"after material {last_material!r}" if last_material else "before any material"
                )
                raise FrameError(
                    f"truncated or malformed JSON {where} ({e}); {n_frames} frames read so far",
                    reason="malformed",
                    source=source,
                    material_id=last_material,
                    skippable=False,
                ) from None
            material_id, frames = item
            last_material = material_id
            if not isinstance(frames, dict) or not frames:
                n_frames += 1
                yield FrameError(
                    "material entry is not a non-empty object of frames",
                    reason="malformed",
                    source=source,
                    material_id=material_id,
                )
                continue
            for frame_id, raw in frames.items():
                n_frames += 1
                yield partial(
                    frame_from_mptrj,
                    raw,
                    material_id=material_id,
                    frame_id=frame_id,
                    source=source,
                    label=label,
                    min_distance=min_distance,
                    use_pymatgen=use_pymatgen,
                )
            for frame_id in getattr(frames, "repeated", ()):
                n_frames += 1
                yield FrameError(
                    "duplicate id: the material has another frame with this id (the first is "
                    "kept)",
                    reason="duplicate_id", source=source, material_id=material_id,
                    frame_id=str(frame_id),
                )  # fmt: skip


def iter_mptrj(
    path: str | os.PathLike,
    *,
    label: EnergyLabel = "uncorrected_total_energy",
    on_error: OnError = "raise",
    stats: ReadStats | None = None,
    min_distance: float = DEFAULT_MIN_DISTANCE,
    use_pymatgen: bool = False,
) -> Iterator[Frame]:
    """Stream the frames of an MPTrj-layout JSON file, one material in memory at a time.

    Args:
        path: the JSON file.
        label: which energy is ``Frame.energy`` (:data:`ENERGY_LABELS`); the others go to
            ``Frame.info``.
        on_error: ``"raise"`` stops at the first bad frame with a :class:`FrameError`;
            ``"skip"`` counts it in ``stats.skipped`` by reason and continues.
        stats: a :class:`ReadStats` updated in place (``read == kept + skipped``).
        min_distance: physical minimum interatomic distance, Angstrom.
        use_pymatgen: parse structures with ``Structure.from_dict`` (slow) instead of the
            equivalent direct parser.

    Truncated or malformed JSON always raises :class:`FrameError` (reason ``malformed``) naming the
    file and the last complete material: the stream cannot be resumed past it.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if label not in ENERGY_LABELS:
        raise ValueError(f"unknown energy label {label!r}; choose one of {list(ENERGY_LABELS)}")
    stats = ReadStats() if stats is None else stats
    tasks = mptrj_tasks(path, label=label, min_distance=min_distance, use_pymatgen=use_pymatgen)
    yield from run_tasks(tasks, on_error=on_error, stats=stats)


def structure_to_dict(frame: Frame) -> dict:
    """A pymatgen-compatible ``Structure.as_dict()`` of a frame (loads with ``from_dict``)."""
    from ase.data import chemical_symbols

    cell = frame.cell
    frac = np.linalg.solve(cell.T, frame.positions.T).T
    sites = []
    for z, abc, xyz in zip(
        frame.numbers.tolist(), frac.tolist(), frame.positions.tolist(), strict=True
    ):
        sym = chemical_symbols[z]
        sites.append(
            {
                "species": [{"element": sym, "occu": 1}],
                "abc": abc,
                "xyz": xyz,
                "properties": {},
                "label": sym,
            }  # fmt: skip
        )
    return {
        "@module": "pymatgen.core.structure",
        "@class": "Structure",
        "charge": 0,
        "lattice": {"matrix": cell.tolist(), "pbc": frame.pbc.tolist()},
        "properties": {},
        "sites": sites,
    }


def _frame_to_mptrj(frame: Frame, energy_key: str) -> dict:
    if frame.energy is None or frame.forces is None or frame.stress is None:
        raise ValueError(
            f"frame {frame.key} needs energy, forces and stress to be written as MPTrj"
        )
    out: dict[str, Any] = {"structure": structure_to_dict(frame)}
    out.update({k: v for k, v in frame.info.items() if k in INFO_KEYS})
    out[energy_key] = frame.energy
    out["force"] = frame.forces.tolist()
    out["stress"] = stress_to_vasp_kbar(frame.stress).tolist()
    out["magmom"] = None if frame.magmom is None else frame.magmom.tolist()
    out["mp_id"] = frame.material_id
    return out


def write_mptrj(
    path: str | os.PathLike,
    frames: Iterable[Frame],
    *,
    energy_key: EnergyLabel = "uncorrected_total_energy",
) -> int:
    """Write frames in the MPTrj layout, streaming; returns the number of frames written.

    ``Frame.energy`` is written under ``energy_key``; other MPTrj scalars found in ``Frame.info``
    are written too; stress goes back to kBar, VASP sign. Frames of one material must be
    consecutive (as :func:`iter_mptrj` yields them); a material that reappears later raises
    ``ValueError`` rather than producing a JSON object with a duplicate key.
    """
    if energy_key not in ENERGY_LABELS:
        raise ValueError(f"unknown energy key {energy_key!r}; choose one of {list(ENERGY_LABELS)}")
    n = 0
    done: set[str] = set()
    current: str | None = None
    seen_frames: set[str] = set()
    with open(path, "w") as fh:
        fh.write("{")
        for frame in frames:
            mid = frame.material_id
            if not mid:
                raise ValueError(f"frame {frame.frame_id!r} has no material_id")
            if mid != current:
                if mid in done:
                    raise ValueError(f"material {mid} is not consecutive in the input frames")
                if current is not None:
                    done.add(current)
                    fh.write("},")
                fh.write(f"\n{json.dumps(mid)}: {{")
                current, seen_frames = mid, set()
            else:
                fh.write(",")
            if frame.frame_id in seen_frames:
                raise ValueError(f"duplicate frame id {frame.frame_id!r} in material {mid}")
            seen_frames.add(frame.frame_id)
            fh.write(f"\n  {json.dumps(frame.frame_id)}: ")
            # allow_nan=False: NaN/Infinity literals are not JSON and no reader should meet them.
            fh.write(json.dumps(_frame_to_mptrj(frame, energy_key), allow_nan=False))
            n += 1
        fh.write("}\n}\n" if current is not None else "}\n")
    return n
