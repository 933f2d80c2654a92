"""``facet preprocess``: convert a source dataset once into HDF5 shards with neighbour lists."""

from __future__ import annotations

import argparse
import json

from ..nn.config import ModelConfig
from .options import fraction, non_negative_float, positive_float, positive_int

NAME = "preprocess"
HELP = "convert an MPTrj JSON / extxyz / ASE-db dataset into shards with precomputed neighbours"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from facet.data.mptrj import ENERGY_LABELS
    from facet.data.sources import SOURCE_FORMATS

    parser.add_argument("source", help="the dataset file (format from the suffix, or --format)")
    parser.add_argument("--out", required=True, help="output directory (shards + manifest.json)")
    parser.add_argument(
        "--cutoff", type=positive_float, default=ModelConfig.cutoff,
        help="neighbour cutoff, Angstrom (default: the model's, %(default)s)"
    )
    parser.add_argument(
        "--label",
        default="uncorrected_total_energy",
        choices=list(ENERGY_LABELS),
        help="MPTrj energy label: " + "; ".join(f"{k}: {v}" for k, v in ENERGY_LABELS.items()),
    )
    parser.add_argument(
        "--keys", default="auto", help="extxyz/ASE-db label keys: auto, calc, or a prefix (REF_)"
    )
    parser.add_argument("--format", choices=list(SOURCE_FORMATS), default=None)
    parser.add_argument("--val-fraction", type=fraction, default=0.05)
    parser.add_argument("--seed", type=int, default=0, help="split seed")
    parser.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    parser.add_argument("--shard-size", type=positive_int, default=10_000, help="frames per shard")
    parser.add_argument(
        "--min-distance",
        type=non_negative_float,
        default=0.5,
        help="physical minimum distance, Angstrom",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=1, help="processes for parsing and neighbour lists"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from facet.data.frames import FrameError
    from facet.data.preprocess import PreprocessConfig, preprocess

    config = PreprocessConfig(
        cutoff=args.cutoff,
        label=args.label,
        keys=args.keys,
        val_fraction=args.val_fraction,
        seed=args.seed,
        on_error=args.on_error,
        shard_size=args.shard_size,
        min_distance=args.min_distance,
        format=args.format,
    )
    try:
        m = preprocess(
            args.source,
            args.out,
            config,
            progress=not args.no_progress,
            overwrite=args.overwrite,
            workers=args.workers,
        )
    except FrameError as e:
        if e.skippable and args.on_error == "raise":  # only where skipping can get past it
            raise FrameError(
                e.detail + "; pass --on-error skip to skip and count bad frames",
                reason=e.reason, source=e.source, material_id=e.material_id, frame_id=e.frame_id,
            ) from None  # fmt: skip
        raise
    c = m["counts"]
    summary = {
        "out": args.out,
        "read": c["read"],
        "kept": c["kept"],
        "skipped": c["skipped_by_reason"],
        "labels_dropped": c.get("labels_dropped", {}),
        **{s: m["splits"][s]["stats"]["frames"] for s in m["splits"]},
        "seconds": m["seconds"],
    }
    if m.get("reused"):
        summary["reused"] = "output already up to date (same source sha256 and settings)"
    print(json.dumps(summary))
    return 0
