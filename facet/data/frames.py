"""Validated frames, units and the error/skip policy shared by every reader.

A :class:`Frame` is one labelled structure in Facet's internal units and conventions:

* positions, cell: Angstrom; cell vectors as rows (ASE);
* energy: total energy, eV (which DFT energy it is, e.g. MPTrj's uncorrected or MP2020-corrected
  total energy, is a recorded choice of the reader, see :mod:`facet.data.mptrj`);
* forces: eV/A;
* stress: ``(3, 3)`` eV/A^3, **ASE sign: positive = tensile** (``sigma = (1/V) dE/d(strain)``);
* magmom: Bohr magneton per atom.

Readers convert units and signs exactly once, when they build a frame (e.g. VASP/MPTrj stress in
kBar, positive = compressive, through :func:`stress_from_vasp_kbar`); nothing downstream converts
again.

Bad input raises :class:`FrameError`, whose message names the source file, the material and the
frame, and whose ``reason`` is one of :data:`SKIP_REASONS`. Readers called with
``on_error="skip"`` catch it, count it by reason in a :class:`ReadStats` and move on, so that
``read == kept + skipped`` always holds and no frame disappears silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import DROP_REASONS, SKIP_REASONS, FrameError, OnError, ReadStats
from .neighbors import periodic_volume_ratio

__all__ = [
    "KBAR_PER_EV_A3",
    "MAX_ATOMIC_NUMBER",
    "SKIP_REASONS",
    "DROP_REASONS",
    "Frame",
    "FrameError",
    "ReadStats",
    "OnError",
    "stress_from_vasp_kbar",
    "stress_to_vasp_kbar",
    "validate_frame",
    "check_min_distance",
    "make_frame",
    "FrameTask",
    "run_tasks",
]

#: 1 eV/A^3 = 160.21766208 GPa = 1602.1766208 kBar (CODATA 2014 e, as ASE's ``units.GPa``).
KBAR_PER_EV_A3 = 1602.1766208

#: Elements 1..118 are accepted; 0 (a dummy or padding atom) and anything above are not.
MAX_ATOMIC_NUMBER = 118

#: Default physical minimum interatomic distance (Angstrom); closer atoms mark a broken frame.
DEFAULT_MIN_DISTANCE = 0.5


def stress_from_vasp_kbar(stress_kbar: Any) -> np.ndarray:
    """VASP stress in kBar (positive = compressive) to ASE stress in eV/A^3 (positive = tensile).

    .. math::  \\sigma_{\\rm ASE} = -\\sigma_{\\rm kBar} / 1602.1766208
    """
    return -np.asarray(stress_kbar, dtype=np.float64) / KBAR_PER_EV_A3


def stress_to_vasp_kbar(stress_ase: Any) -> np.ndarray:
    """Inverse of :func:`stress_from_vasp_kbar`."""
    return -np.asarray(stress_ase, dtype=np.float64) * KBAR_PER_EV_A3


@dataclass(frozen=True, eq=False)
class Frame:
    """One labelled structure in internal units (see the module docstring).

    Attributes:
        positions: ``(n, 3)`` float64, Angstrom.
        numbers: ``(n,)`` int64 atomic numbers.
        cell: ``(3, 3)`` float64, rows are cell vectors (zeros for a molecule).
        pbc: ``(3,)`` bool.
        energy: total energy in eV, or None.
        forces: ``(n, 3)`` eV/A, or None.
        stress: ``(3, 3)`` eV/A^3, ASE sign (positive = tensile), or None.
        magmom: ``(n,)`` Bohr magneton, or None.
        material_id: material (e.g. ``mp-1234``); the unit of the train/validation split.
        frame_id: frame within the material (e.g. MPTrj's ``task-calc-ionic_step``).
        source: the file it came from (as the user gave it).
        info: other scalar labels kept verbatim (e.g. ``corrected_total_energy``, ``bandgap``).
        dropped: labels the reader dropped, by reason (:data:`DROP_REASONS`): a stress given
            for a frame not periodic in all three directions (the model predicts none there).
    """

    positions: np.ndarray
    numbers: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    magmom: np.ndarray | None = None
    material_id: str = ""
    frame_id: str = ""
    source: str = ""
    info: dict = field(default_factory=dict)
    dropped: tuple = ()

    @property
    def n_atoms(self) -> int:
        return int(self.numbers.shape[0])

    @property
    def key(self) -> str:
        """``"<material_id>/<frame_id>"``; a ``/`` inside the frame id is written ``%2F`` so
        that the material is always everything before the last ``/``."""
        return f"{self.material_id}/{self.frame_id.replace('/', '%2F')}"


def _err(frame_or_loc, detail, reason):
    f = frame_or_loc
    return FrameError(
        detail,
        reason=reason,
        source=f.source or None,
        material_id=f.material_id or None,
        frame_id=f.frame_id or None,
    )


def closest_pair(positions, cell, pbc, min_distance) -> tuple[float, int, int] | None:
    """Closest pair (including periodic images of an atom itself) below ``min_distance``:
    ``(distance, receiver, sender)``, or None."""
    from .neighbors import neighbor_list

    # vesin's cell list gets slow for very small radii (about 1 ms at 0.5 A, 0.15 ms at 1.5 A for
    # 10 atoms): search a little wider and filter.
    s, r, sh = neighbor_list(positions, cell, pbc, max(min_distance, 1.5))
    if len(s) == 0:
        return None
    d = np.linalg.norm(positions[s] + sh @ cell - positions[r], axis=1)
    k = int(np.argmin(d))
    if d[k] >= min_distance:
        return None
    return float(d[k]), int(r[k]), int(s[k])


def validate_frame(frame: Frame, *, min_distance: float = DEFAULT_MIN_DISTANCE) -> Frame:
    """Check a frame and return it unchanged; raise :class:`FrameError` naming what is wrong.

    Checks, in order: an empty structure; shapes (positions ``(n, 3)``, numbers ``(n,)``, cell
    ``(3, 3)``, pbc ``(3,)``, forces ``(n, 3)``, stress ``(3, 3)``, magmom ``(n,)``); atomic
    numbers in 1..118; NaN/inf anywhere; periodic cell vectors that are (nearly) linearly
    dependent; any two atoms (or an atom and its own periodic image) closer than
    ``min_distance`` Angstrom (``min_distance <= 0`` disables that check).
    """
    n = frame.numbers.shape[0] if frame.numbers.ndim == 1 else -1
    if n == 0 or np.shape(frame.positions)[:1] == (0,):
        raise _err(frame, "empty structure (no atoms)", "empty_structure")
    expect = {
        "positions": (frame.positions, (n, 3)),
        "numbers": (frame.numbers, (n,)),
        "cell": (frame.cell, (3, 3)),
        "pbc": (frame.pbc, (3,)),
        "forces": (frame.forces, (n, 3)),
        "stress": (frame.stress, (3, 3)),
        "magmom": (frame.magmom, (n,)),
    }
    for name, (arr, shape) in expect.items():
        if arr is not None and tuple(np.shape(arr)) != shape:
            raise _err(
                frame, f"{name} has shape {tuple(np.shape(arr))}, expected {shape}", "bad_shape"
            )
    bad = (frame.numbers < 1) | (frame.numbers > MAX_ATOMIC_NUMBER)
    if bad.any():
        raise _err(
            frame,
            f"unknown element: atomic numbers {sorted(set(frame.numbers[bad].tolist()))} at atoms "
            f"{np.flatnonzero(bad)[:10].tolist()} (expected 1..{MAX_ATOMIC_NUMBER})",
            "unknown_element",
        )
    for name in ("positions", "cell", "forces", "stress", "magmom"):
        arr = getattr(frame, name)
        if arr is not None and not np.all(np.isfinite(arr)):
            where = np.argwhere(~np.isfinite(np.asarray(arr)))[:5].tolist()
            raise _err(frame, f"{name} contains NaN/inf at indices {where}", "non_finite")
    if frame.energy is not None and not np.isfinite(frame.energy):
        raise _err(frame, f"energy is {frame.energy}", "non_finite")
    if frame.pbc.any() and periodic_volume_ratio(frame.cell, frame.pbc) <= 1e-6:
        raise _err(
            frame,
            "singular cell: vectors of periodic directions "
            f"{np.flatnonzero(frame.pbc).tolist()} are (nearly) linearly dependent "
            f"(cell = {np.round(frame.cell, 6).tolist()})",
            "singular_cell",
        )
    if min_distance > 0:
        check_min_distance(frame, min_distance)
    return frame


def check_min_distance(frame: Frame, min_distance: float, *, edges=None) -> None:
    """Raise ``atoms_too_close`` if two atoms (or an atom and its own image) are closer than
    ``min_distance``. ``edges = (senders, receivers, shifts)`` of a neighbour list with a cutoff
    of at least ``min_distance`` saves building another one."""
    if edges is None:
        close = closest_pair(frame.positions, frame.cell, frame.pbc, min_distance)
    else:
        s, r, sh = edges
        close = None
        if len(s):
            d = np.linalg.norm(frame.positions[s] + sh @ frame.cell - frame.positions[r], axis=1)
            k = int(np.argmin(d))
            close = (float(d[k]), int(r[k]), int(s[k])) if d[k] < min_distance else None
    if close is not None:
        d, i, j = close
        what = "its own periodic image" if i == j else f"atom {j}"
        raise _err(
            frame,
            f"atom {i} is {d:.4f} A from {what}, closer than the physical minimum {min_distance} A",
            "atoms_too_close",
        )


def make_frame(
    positions: Any,
    numbers: Any,
    cell: Any = None,
    pbc: Any = False,
    *,
    energy: float | None = None,
    forces: Any = None,
    stress: Any = None,
    magmom: Any = None,
    material_id: str = "",
    frame_id: str = "",
    source: str = "",
    info: dict | None = None,
    min_distance: float = DEFAULT_MIN_DISTANCE,
) -> Frame:
    """Convert raw arrays to a :class:`Frame` (float64/int64/bool) and validate it.

    Values must already be in internal units and signs. Conversion failures (ragged lists,
    strings) raise :class:`FrameError` with reason ``bad_shape``/``malformed``. A stress given
    for a frame that is not periodic in all three directions is dropped (after validation) and
    recorded in ``Frame.dropped`` as ``stress_not_periodic``.
    """
    loc = Frame(np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros((3, 3)), np.zeros(3, bool),
                material_id=material_id, frame_id=frame_id, source=source)  # fmt: skip

    def conv(name, x, dtype):
        if x is None:
            return None
        try:
            return np.asarray(x, dtype=dtype)
        except (ValueError, TypeError) as e:
            raise _err(
                loc, f"{name} cannot be read as a {np.dtype(dtype)} array: {e}", "bad_shape"
            ) from None

    cell = np.zeros((3, 3)) if cell is None else cell
    pbc_arr = conv("pbc", pbc, bool)
    if pbc_arr is not None and pbc_arr.ndim == 0:
        pbc_arr = np.repeat(pbc_arr, 3)
    if energy is not None:
        try:
            energy = float(energy)
        except (TypeError, ValueError) as e:
            raise _err(loc, f"energy {energy!r} is not a number: {e}", "malformed") from None
    numbers_raw = conv("numbers", numbers, np.float64)
    if numbers_raw is not None and not np.array_equal(numbers_raw, np.round(numbers_raw)):
        msg = f"atomic numbers are not integers: {numbers_raw[:10].tolist()}"
        raise _err(loc, msg, "bad_shape")
    frame = Frame(
        positions=conv("positions", positions, np.float64),
        numbers=conv("numbers", numbers, np.int64),
        cell=conv("cell", cell, np.float64),
        pbc=pbc_arr,
        energy=energy,
        forces=conv("forces", forces, np.float64),
        stress=conv("stress", stress, np.float64),
        magmom=conv("magmom", magmom, np.float64),
        material_id=str(material_id),
        frame_id=str(frame_id),
        source=str(source),
        info=dict(info or {}),
    )
    frame = validate_frame(frame, min_distance=min_distance)
    if frame.stress is not None and not frame.pbc.all():
        import dataclasses

        frame = dataclasses.replace(frame, stress=None, dropped=("stress_not_periodic",))
    return frame


#: A unit of reading work: a picklable callable returning one validated Frame (or raising
#: FrameError), or a FrameError already found while splitting the source into tasks.
FrameTask = Callable[[], Frame] | FrameError


def run_tasks(
    tasks: Iterable[FrameTask], *, on_error: OnError, stats: ReadStats
) -> Iterator[Frame]:
    """Run reading tasks in order with the error policy: count every task in ``stats.read``; a
    failure (a second frame with the key of an earlier one included: ``duplicate_id``) raises
    (``on_error="raise"``) or is counted by reason (``"skip"``); labels dropped from kept frames
    are counted in ``stats.dropped``."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    for task in tasks:
        stats.read += 1
        try:
            if isinstance(task, FrameError):
                raise task
            frame = task()
            stats.keep(frame.key, frame.dropped, source=frame.source or None)
        except FrameError as err:
            if on_error == "raise" or not err.skippable:
                raise
            stats.skip(err)
            continue
        yield frame
