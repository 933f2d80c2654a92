"""Run logs: a CSV file and TensorBoard event files, with no dependency beyond NumPy.

TensorBoard reads TFRecord files of ``Event`` protocol buffers. Scalars need only a few fields,
encoded here by hand (protobuf wire format, https://protobuf.dev/programming-guides/encoding/):
``Event{wall_time: double = 1, step: int64 = 2, file_version: string = 3, summary: Summary = 5}``,
``Summary{value: repeated Value = 1}``, ``Value{tag: string = 1, simple_value: float = 2}``.
Each record is framed as ``uint64 length, uint32 masked_crc32c(length), data,
uint32 masked_crc32c(data)`` (little endian), with CRC-32C (Castagnoli) masked as
``((c >> 15) | (c << 17)) + 0xa282ead8``.
"""

from __future__ import annotations

import csv
import os
import socket
import struct
import time
from pathlib import Path

__all__ = ["crc32c", "CsvLog", "EventWriter"]


def _make_table() -> list[int]:
    poly = 0x82F63B78  # reversed Castagnoli polynomial
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _make_table()


def crc32c(data: bytes) -> int:
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _event(step: int, wall_time: float, *, file_version: str | None = None,
           scalars: dict[str, float] | None = None) -> bytes:
    msg = _varint(1 << 3 | 1) + struct.pack("<d", wall_time) + _varint(2 << 3) + _varint(step)
    if file_version is not None:
        msg += _field_bytes(3, file_version.encode())
    if scalars:
        summary = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + _varint(2 << 3 | 5)
                         + struct.pack("<f", float(v)))
            for tag, v in scalars.items()
        )
        msg += _field_bytes(5, summary)
    return msg


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", _masked(header)) + data + struct.pack("<I", _masked(data))


class EventWriter:
    """Append scalar summaries to ``<logdir>/events.out.tfevents.<time>.<host>``."""

    def __init__(self, logdir: str | Path):
        logdir = Path(logdir)
        logdir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = logdir / name
        self._fh = open(self.path, "ab")
        self._fh.write(_record(_event(0, time.time(), file_version="brain.Event:2")))
        self._fh.flush()

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._fh.write(_record(_event(int(step), time.time(), scalars=values)))
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class CsvLog:
    """Append rows to a CSV file with a fixed header; on resume, rows past ``truncate_after``
    (steps the resumed run will redo) are removed so that the log has no duplicates."""

    def __init__(self, path: str | Path, columns: list[str], *, truncate_after: int | None = None):
        self.path = Path(path)
        self.columns = columns
        rows: list[dict] = []
        if self.path.exists() and truncate_after is not None:
            with open(self.path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= truncate_after]
        elif self.path.exists():
            raise FileExistsError(f"{self.path} exists; resume the run or choose run.out_dir")
        self._fh = open(self.path, "w", newline="")
        self._w = csv.DictWriter(self._fh, columns, extrasaction="ignore")
        self._w.writeheader()
        for r in rows:
            self._w.writerow(r)
        self._fh.flush()

    def write(self, row: dict) -> None:
        self._w.writerow({k: row.get(k, "") for k in self.columns})
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
