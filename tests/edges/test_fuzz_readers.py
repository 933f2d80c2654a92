"""Property-based fuzzing of the readers with hypothesis (issue 17): random truncations, byte
flips, deleted keys, NaN/inf, wrong shapes and duplicated ids applied to valid MPTrj JSON,
extxyz and ASE db files.

Properties, for every mutated file read with ``on_error="skip"``:

* the only exception that may escape is :class:`facet.errors.InputError` (a ``FrameError`` for
  the whole file, or "no frames read") and its message names the file;
* otherwise ``read == kept + skipped``, and keys are unique;
* a targeted mutation (deleted key, NaN/inf, wrong shape, duplicated id) of one frame skips that
  frame with the expected reason and keeps every other frame with exactly its original values;
* after a truncation, every kept frame is one of the originals with its original values.

The default run takes a few seconds per format; ``-m slow`` runs ``FUZZ_EXAMPLES`` (default
5000) examples per format and prints the counts.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facet.data.errors import ReadStats
from facet.data.sources import read_frames
from facet.errors import InputError

FAST = 25  # examples per property in the default run
SLOW = int(os.environ.get("FUZZ_EXAMPLES", "5000"))
COUNTS: dict[str, int] = {}


# -- valid sources ------------------------------------------------------------------------------


def _mptrj_source(d: Path) -> Path:
    from data_factories import build_mptrj

    data = build_mptrj(np.random.default_rng(11), 3, frames_per_material=2)
    path = d / "src.json"
    path.write_text(json.dumps(data))
    return path


def _atoms_list():
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(5)
    out = []
    for k in range(5):
        a = bulk("NaCl", "rocksalt", a=5.6 + 0.05 * k) if k % 2 else bulk("Si", "diamond", a=5.43)
        a.rattle(0.05, seed=k)
        n = len(a)
        a.calc = SinglePointCalculator(a, energy=float(rng.uniform(-5, -3) * n),
                                       forces=rng.normal(0, 0.3, (n, 3)),
                                       stress=rng.normal(0, 0.01, 6))
        a.info.update(mp_id=f"mp-{k // 2}", frame_id=f"f{k}")
        out.append(a)
    return out


def _extxyz_source(d: Path) -> Path:
    from facet.data.extxyz import frame_from_atoms, write_extxyz

    path = d / "src.extxyz"
    write_extxyz(path, [frame_from_atoms(a, source="x") for a in _atoms_list()])
    return path


def _db_rows():
    return _atoms_list()


def _write_db(path: Path, rows) -> Path:
    import ase.db

    if path.exists():
        path.unlink()
    with ase.db.connect(str(path), append=False) as db:
        for a, kv, data in rows:
            db.write(a, key_value_pairs=kv, data=data)
    return path


def _db_source(d: Path) -> Path:
    rows = [(a, dict(a.info), {}) for a in _db_rows()]
    return _write_db(d / "src.db", rows)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    out = {"mptrj": _mptrj_source(d), "extxyz": _extxyz_source(d), "asedb": _db_source(d)}
    ref = {}
    for fmt, path in out.items():
        stats = ReadStats()
        ref[fmt] = {f.key: f for f in read_frames(path, stats=stats)}
        assert stats.read == stats.kept == len(ref[fmt]) >= 5
    return out, ref


# -- checking -----------------------------------------------------------------------------------


def _same(a, b) -> bool:
    for name in ("positions", "numbers", "cell", "pbc", "forces", "stress"):
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y)):
            return False
    return a.energy == b.energy


def _read(path: Path, fmt: str):
    """``(frames, stats)`` or ``(None, error)`` when the file fails as a whole."""
    stats = ReadStats()
    frames = []
    try:
        for f in read_frames(path, format=fmt, on_error="skip", stats=stats):
            frames.append(f)
    except InputError as err:  # FrameError for the whole file, "no frames read", ...
        assert path.name in str(err), f"error does not name the file: {err}"
        return None, err
    stats.check()
    assert stats.read == stats.kept + stats.n_skipped == len(frames) + stats.n_skipped
    assert len({f.key for f in frames}) == len(frames)
    return frames, stats


def _expect_one_skipped(path, fmt, ref, target_key, reasons, *, file_error_ok=False):
    frames, stats = _read(path, fmt)
    if frames is None:
        assert file_error_ok, f"whole file refused: {stats}"
        return
    kept = {f.key: f for f in frames}
    for key, orig in ref.items():
        if key == target_key:
            continue
        assert key in kept, f"untouched frame {key} lost ({dict(stats.skipped)})"
        assert _same(kept[key], orig), f"frame {key} changed"
    if target_key in kept:  # a mutation that leaves a valid frame must not have changed others
        raise AssertionError(f"mutated frame {target_key} kept ({dict(stats.skipped)})")
    assert set(stats.skipped) <= set(reasons), dict(stats.skipped)
    assert stats.n_skipped == 1


def _check_truncated(path, fmt, ref):
    frames, stats = _read(path, fmt)
    if frames is None:
        return
    for f in frames:
        assert f.key in ref and _same(f, ref[f.key]), f"truncation changed frame {f.key}"


def _check_flipped(path, fmt):
    _read(path, fmt)  # only InputError may escape; accounting holds


def _count(name):
    COUNTS[name] = COUNTS.get(name, 0) + 1


# -- byte-level mutations (all formats) ---------------------------------------------------------

BYTE_OPS = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0.0, 1.0)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)),
                                        min_size=1, max_size=4)),
)


def _byte_case(src: Path, tmp: Path, op) -> tuple[Path, str]:
    data = bytearray(src.read_bytes())
    kind, arg = op
    if kind == "truncate":
        data = data[: int(arg * len(data))]
    else:
        for pos, x in arg:
            i = min(int(pos * len(data)), len(data) - 1)
            data[i] ^= x
    out = tmp / f"mut{src.suffix}"
    out.write_bytes(bytes(data))
    return out, kind


def _byte_property(fmt, sources, tmp, op):
    (paths, ref) = sources
    path, kind = _byte_case(paths[fmt], tmp, op)
    if kind == "truncate":
        _check_truncated(path, fmt, ref[fmt])
    else:
        _check_flipped(path, fmt)
    _count(fmt)


# -- targeted mutations -------------------------------------------------------------------------


def _mptrj_targeted(src: Path, tmp: Path, ref, kind: str, which: int, sub: int):
    data = json.loads(src.read_text())
    keys = [(m, f) for m, frames in data.items() for f in frames]
    mid, fid = keys[which % len(keys)]
    frame = data[mid][fid]
    n = len(frame["force"])
    if kind == "delete":
        choices = [("structure",), ("force",), ("stress",), ("uncorrected_total_energy",),
                   ("structure", "lattice"), ("structure", "sites"),
                   ("structure", "lattice", "matrix")]
        path = choices[sub % len(choices)]
        node = frame
        for p in path[:-1]:
            node = node[p]
        del node[path[-1]]
        reasons = {"missing_key", "malformed"}
    elif kind == "shape":
        choices = ["force_row", "force_col", "stress_row", "lattice_row", "abc"]
        c = choices[sub % len(choices)]
        if c == "force_row":
            frame["force"] = frame["force"][:-1] if n > 1 else []
        elif c == "force_col":
            frame["force"][0] = frame["force"][0][:2]
        elif c == "stress_row":
            frame["stress"] = frame["stress"][:2]
        elif c == "lattice_row":
            frame["structure"]["lattice"]["matrix"] = frame["structure"]["lattice"]["matrix"][:2]
        else:
            frame["structure"]["sites"][0]["abc"] = [0.1, 0.2]
        reasons = {"bad_shape", "malformed"}
    elif kind == "nan":  # strict JSON has no NaN: the file is refused as a whole (named)
        text = json.dumps(data).replace(json.dumps(frame["force"][0][0]), "NaN", 1)
        out = tmp / "mut.json"
        out.write_text(text)
        return out, f"{mid}/{fid}", {"non_finite"}, True
    else:  # duplicate the frame id inside its material
        body = json.dumps(frame)
        text = json.dumps(data)
        anchor = json.dumps(mid) + ": {"
        dup = json.dumps(fid) + ": " + body + ", "
        text = text.replace(anchor, anchor + dup, 1)
        out = tmp / "mut.json"
        out.write_text(text)
        frames, stats = _read(out, "mptrj")
        assert frames is not None
        assert dict(stats.skipped) == {"duplicate_id": 1} and stats.kept == len(ref)
        kept = {f.key: f for f in frames}
        assert all(_same(kept[k], v) for k, v in ref.items())
        return None
    out = tmp / "mut.json"
    out.write_text(json.dumps(data))
    return out, f"{mid}/{fid}", reasons, False


def _xyz_blocks(text: str) -> list[list[str]]:
    lines = text.splitlines(keepends=True)
    blocks, i = [], 0
    while i < len(lines):
        n = int(lines[i].split()[0])
        blocks.append(lines[i : i + n + 2])
        i += n + 2
    return blocks


def _extxyz_targeted(src: Path, tmp: Path, ref, kind: str, which: int, sub: int):
    blocks = _xyz_blocks(src.read_text())
    b = which % len(blocks)
    block = blocks[b]
    head = block[1]
    mid = re.search(r"mp_id=(\S+)", head).group(1)
    fid = re.search(r"frame_id=(\S+)", head).group(1)
    atom = 2 + sub % (len(block) - 2)
    if kind == "delete":
        choices = [r"energy=\S+ ?", r"Lattice=\"[^\"]*\" ?"]
        block[1] = re.sub(choices[sub % 2], "", head, count=1)
        reasons = {"missing_key", "malformed", "bad_shape"}
        if sub % 2 == 1:  # no Lattice: a molecule (pbc stays in the header) -> refused or not
            reasons |= {"singular_cell"}
    elif kind == "nan":
        parts = block[atom].split()
        parts[1 + sub % (len(parts) - 1)] = ["nan", "inf", "-inf"][sub % 3]
        block[atom] = " ".join(parts) + "\n"
        reasons = {"non_finite"}
    elif kind == "shape":
        parts = block[atom].split()
        block[atom] = " ".join(parts[:-1]) + "\n"
        reasons = {"malformed", "bad_shape"}
    else:
        blocks.insert(b + 1, list(block))
        out = tmp / "mut.extxyz"
        out.write_text("".join("".join(x) for x in blocks))
        frames, stats = _read(out, "extxyz")
        assert frames is not None
        assert dict(stats.skipped) == {"duplicate_id": 1} and stats.kept == len(ref)
        return None
    out = tmp / "mut.extxyz"
    out.write_text("".join("".join(x) for x in blocks))
    return out, f"{mid}/{fid}", reasons, False


def _db_targeted(src: Path, tmp: Path, ref, kind: str, which: int, sub: int):
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = _db_rows()
    k = which % len(atoms)
    rows = [(a, dict(a.info), {}) for a in atoms]
    a = atoms[k].copy()
    res = dict(atoms[k].calc.results)
    target = f"{a.info['mp_id']}/{a.info['frame_id']}"
    if kind == "delete":
        res.pop(["energy", "forces"][sub % 2])
        a.calc = SinglePointCalculator(a, **res)
        reasons = {"missing_key"}
    elif kind == "nan":
        field = ["forces", "stress", "energy"][sub % 3]
        v = np.array(res[field], dtype=float)
        if v.ndim:
            v.reshape(-1)[sub % v.size] = [np.nan, np.inf][sub % 2]
        else:
            v = np.array([np.nan, np.inf][sub % 2])
        res[field] = v if v.ndim else float(v)
        a.calc = SinglePointCalculator(a, **res)
        # SQLite stores a NaN scalar as NULL: ASE reads the energy back as absent
        reasons = {"non_finite", "missing_key"} if field == "energy" else {"non_finite"}
    elif kind == "shape":  # MACE-style REF_ labels in row data, one with a wrong shape
        rows = [(x, dict(x.info, REF_energy=float(x.calc.results["energy"])),
                 {"REF_forces": np.asarray(x.calc.results["forces"]),
                  "REF_stress": np.asarray(x.calc.results["stress"])}) for x in atoms]
        for x, _, _ in rows:
            x.calc = None
        bad = np.asarray(res["forces"])
        data = {"REF_forces": bad[:-1] if sub % 2 else bad[:, :2],
                "REF_stress": np.asarray(res["stress"])}
        rows[k] = (a, dict(a.info, REF_energy=float(res["energy"])), data)
        out = _write_db(tmp / "mut.db", rows)
        return out, target, {"bad_shape"}, False
    else:
        rows.insert(k + 1, (atoms[k].copy(), dict(atoms[k].info), {}))
        rows[k + 1][0].calc = SinglePointCalculator(rows[k + 1][0], **res)
        out = _write_db(tmp / "mut.db", rows)
        frames, stats = _read(out, "asedb")
        assert frames is not None
        assert dict(stats.skipped) == {"duplicate_id": 1} and stats.kept == len(ref)
        return None
    rows[k] = (a, dict(a.info), {})
    out = _write_db(tmp / "mut.db", rows)
    return out, target, reasons, False


TARGETED = {"mptrj": _mptrj_targeted, "extxyz": _extxyz_targeted, "asedb": _db_targeted}
KINDS = st.sampled_from(["delete", "nan", "shape", "duplicate"])


def _targeted_property(fmt, sources, tmp, kind, which, sub):
    paths, ref = sources
    case = TARGETED[fmt](paths[fmt], tmp, ref[fmt], kind, which, sub)
    if case is not None:
        path, target, reasons, file_error_ok = case
        _expect_one_skipped(path, fmt, ref[fmt], target, reasons, file_error_ok=file_error_ok)
    _count(fmt)


# -- the tests ----------------------------------------------------------------------------------

FORMATS = ["mptrj", "extxyz", "asedb"]
_HC = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def _run(fmt, sources, tmp_path, n):
    @settings(max_examples=n, deadline=None, suppress_health_check=_HC, database=None)
    @given(op=BYTE_OPS)
    def bytes_(op):
        _byte_property(fmt, sources, tmp_path, op)

    @settings(max_examples=n, deadline=None, suppress_health_check=_HC, database=None)
    @given(kind=KINDS, which=st.integers(0, 50), sub=st.integers(0, 50))
    def targeted(kind, which, sub):
        _targeted_property(fmt, sources, tmp_path, kind, which, sub)

    bytes_()
    targeted()


@pytest.mark.parametrize("fmt", FORMATS)
def test_fuzz_readers(fmt, sources, tmp_path):
    _run(fmt, sources, tmp_path, FAST)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_fuzz_readers_many(fmt, sources, tmp_path, capsys):
    before = COUNTS.get(fmt, 0)
    _run(fmt, sources, tmp_path, SLOW // 2)
    done = COUNTS.get(fmt, 0) - before
    with capsys.disabled():
        print(f"\nfuzz {fmt}: {done} examples")
    assert done >= 2 * (SLOW // 2)
