"""TensorBoard event files (hand-encoded protobuf in TFRecord framing) and the CSV log."""

from __future__ import annotations

import struct

import pytest

from facet.train.logs import CsvLog, EventWriter, crc32c


def test_crc32c_known_values():
    # RFC 3720 (iSCSI) test vectors for CRC-32C
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(bytes([0xFF] * 32)) == 0x62A8AB43


def _masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf):
    """Decode one protobuf message into {field: [values]} (wire types 0, 1, 2, 5)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = struct.unpack("<d", buf[i:i + 8])[0], i + 8
        elif wt == 5:
            v, i = struct.unpack("<f", buf[i:i + 4])[0], i + 4
        else:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        out.setdefault(num, []).append(v)
    return out


def test_event_file_decodes(tmp_path):
    w = EventWriter(tmp_path)
    w.scalars(7, {"train/loss": 0.25, "val/forces_mae": 31.5})
    w.scalars(300, {"train/loss": 0.125})
    w.close()
    data = w.path.read_bytes()
    records, i = [], 0
    while i < len(data):
        header = data[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == _masked(header)
        payload = data[i + 12:i + 12 + n]
        assert struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == _masked(payload)
        records.append(_fields(payload))
        i += 16 + n
    assert records[0][3] == [b"brain.Event:2"]
    assert [r[2][0] for r in records[1:]] == [7, 300]
    values = [_fields(v) for v in _fields(records[1][5][0])[1]]
    assert [(v[1][0], v[2][0]) for v in values] == [(b"train/loss", 0.25),
                                                     (b"val/forces_mae", 31.5)]


def test_csv_truncates_on_resume(tmp_path):
    p = tmp_path / "log.csv"
    log = CsvLog(p, ["step", "loss"])
    for s in (1, 2, 3, 4):
        log.write({"step": s, "loss": 1.0 / s})
    log.close()
    with pytest.raises(FileExistsError):
        CsvLog(p, ["step", "loss"])
    log = CsvLog(p, ["step", "loss"], truncate_after=2)
    log.write({"step": 3, "loss": 9})
    log.close()
    assert p.read_text().split() == ["step,loss", "1,1.0", "2,0.5", "3,9"]
