"""TensorBoard event files (tensorboardX), the CSV log and the training-curve plot."""

from __future__ import annotations

import struct

import pytest

from facet.train.logs import CsvLog, EventWriter, plot_training_curve


def _records(path):
    """Events of a TFRecord file, decoded with tensorboardX's own protobuf classes."""
    from tensorboardX.proto.event_pb2 import Event

    data, out, i = path.read_bytes(), [], 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        out.append(Event.FromString(data[i + 12:i + 12 + n]))
        i += 16 + n
    return out


def test_event_file_decodes(tmp_path):
    w = EventWriter(tmp_path)
    w.scalars(7, {"train/loss": 0.25, "val/forces_mae": 31.5})
    w.scalars(300, {"train/loss": 0.125})
    w.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    events = _records(path)
    assert events[0].file_version == "brain.Event:2"
    got = [(e.step, v.tag, v.simple_value) for e in events[1:] for v in e.summary.value]
    assert got == [(7, "train/loss", 0.25), (7, "val/forces_mae", 31.5),
                   (300, "train/loss", 0.125)]


def test_training_curve_plot(tmp_path):
    p = tmp_path / "log.csv"
    log = CsvLog(p, ["step", "kind", "loss", "energy_mae", "forces_mae", "stress_mae"])
    for s in range(1, 11):
        log.write({"step": s, "kind": "train", "loss": 1.0 / s, "energy_mae": 10.0 / s})
        if s % 5 == 0:
            log.write({"step": s, "kind": "val", "loss": 2.0 / s, "energy_mae": 20.0 / s,
                       "forces_mae": 50.0 / s})
    log.close()
    out = plot_training_curve(p)
    assert out == tmp_path / "training_curve.png"
    from matplotlib.image import imread

    img = imread(out)
    # loss panel + energy and forces MAE panels (no validation stress: no stress panel)
    assert img.shape[1] > 3 * img.shape[0] * 0.9
    assert plot_training_curve(_empty(tmp_path)) is None


def _empty(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("step,kind,loss\n")
    return p


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
