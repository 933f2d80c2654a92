"""Run logs: a CSV file (``log.csv``), TensorBoard events (``tb/``, written by ``tensorboardX``)
and a training-curve plot (``training_curve.png``: loss and validation MAEs against step).
"""

from __future__ import annotations

import csv
from pathlib import Path

__all__ = ["CsvLog", "EventWriter", "plot_training_curve"]


class EventWriter:
    """Scalar summaries in ``<logdir>/events.out.tfevents.*`` through ``tensorboardX``."""

    def __init__(self, logdir: str | Path):
        from tensorboardX import SummaryWriter

        self.logdir = Path(logdir)
        self._w = SummaryWriter(logdir=str(self.logdir), flush_secs=30)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, v in values.items():
            self._w.add_scalar(tag, float(v), int(step))

    def close(self) -> None:
        self._w.close()


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


_CURVE_TERMS = (("energy_mae", "energy MAE (meV/atom)"), ("forces_mae", "forces MAE (meV/A)"),
                ("stress_mae", "stress MAE (meV/A^3)"))


def plot_training_curve(log_csv: str | Path, out: str | Path | None = None) -> Path | None:
    """Plot ``log.csv``: training and validation loss (log scale) and the validation MAEs
    against step, to ``out`` (default ``training_curve.png`` beside the log). Returns the path,
    or None when the log has no row yet."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log_csv = Path(log_csv)
    with open(log_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return None

    def series(kind: str, key: str):
        xs, ys = [], []
        for r in rows:
            v = r.get(key, "")
            if r.get("kind") == kind and v not in ("", None):
                y = float(v)
                if math.isfinite(y):
                    xs.append(int(r["step"]))
                    ys.append(y)
        return xs, ys

    terms = [(k, label) for k, label in _CURVE_TERMS if series("val", k)[0]]
    fig, axes = plt.subplots(1, 1 + len(terms), figsize=(4.2 * (1 + len(terms)), 3.6), dpi=110,
                             squeeze=False)
    ax = axes[0, 0]
    for kind, style in (("train", "-"), ("val", "o-")):
        xs, ys = series(kind, "loss")
        if xs:
            ax.plot(xs, ys, style, ms=3, label=kind)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    for ax, (key, label) in zip(axes[0, 1:], terms, strict=True):
        for kind, style in (("train", "-"), ("val", "o-")):
            xs, ys = series(kind, key)
            if xs:
                ax.plot(xs, ys, style, ms=3, label=kind)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.legend()
    fig.tight_layout()
    out = Path(out) if out is not None else log_csv.with_name("training_curve.png")
    fig.savefig(out)
    plt.close(fig)
    return out
