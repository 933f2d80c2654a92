"""``facet train``: train or fine-tune a model from one YAML config (see docs/training.md)."""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "Train (or fine-tune, or resume) a Facet model from a YAML config."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML run configuration (see facet/train/configs/)")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its last complete checkpoint "
                             "(its saved config.yaml is used; overrides apply on top)")
    parser.add_argument("--allow-data-change", action="store_true",
                        help="with --resume: continue although the training data's content "
                             "differs from the checkpointed run's (refused otherwise)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. optim.lr=1e-3 run.epochs=5")


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from facet.train.config import ConfigError, check_data_paths, load_config

    if args.resume:
        if args.config:
            raise ConfigError("give either --config or --resume, not both")
        saved = Path(args.resume) / "config.yaml"
        cfg = load_config(saved, [*args.overrides, f"run.out_dir={args.resume}"])
    else:
        if args.allow_data_change:
            raise ConfigError("--allow-data-change goes with --resume")
        if not args.config:
            raise ConfigError("--config is required (or --resume RUN_DIR)")
        cfg = load_config(args.config, args.overrides)
    check_data_paths(cfg)
    from facet.nn.presets import PRESETS

    if cfg.model.init_from is None and cfg.model.preset not in PRESETS:
        raise ConfigError(f"config key 'model.preset': unknown preset {cfg.model.preset!r} "
                          f"(known: {', '.join(PRESETS)})")
    out_dir = Path(cfg.run.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"config key 'run.out_dir': {out_dir} is a file, not a directory")
    if cfg.model.dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)  # the CLI is the edge: the user asked for it

    from facet.train.loop import TrainingDiverged, train

    try:
        summary = train(cfg, resume=bool(args.resume), allow_data_change=args.allow_data_change)
    except TrainingDiverged as exc:  # not a user mistake, but no traceback either
        print(f"facet train: {exc}", file=sys.stderr)
        return 1
    val = summary["val"]
    print(f"done: {summary['step']} steps in {summary['run_dir']}; best step "
          f"{summary['best_step']} (val loss {summary['best_val_loss']:.5g})")
    if val:
        print("last validation: " + ", ".join(f"{k} {v:.4g}" for k, v in val.items()
                                              if not k.endswith("_count")))
    return 0
