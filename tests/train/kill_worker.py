"""Worker for the SIGKILL test: train the toy model on pickled data, resuming when the run
directory already holds a checkpoint. Usage: kill_worker.py DATA.pkl RUN_DIR"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path


def main() -> None:
    from toy_training import toy_config, toy_factory
    from toymodel import toy_predict

    from facet.train.checkpoint import list_checkpoints
    from facet.train.loop import train

    data_path, run_dir = sys.argv[1], Path(sys.argv[2])
    with open(data_path, "rb") as fh:
        data = pickle.load(fh)
    cfg = toy_config(run_dir, run={"epochs": 3, "checkpoint_every": 1, "keep_checkpoints": 3})
    resume = bool(list_checkpoints(run_dir / "checkpoints"))
    train(cfg, resume=resume, model_factory=toy_factory, predict_fn=toy_predict, data=data,
          report=lambda m: print(m, flush=True))


if __name__ == "__main__":
    main()
