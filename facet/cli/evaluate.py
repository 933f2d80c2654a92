"""``facet evaluate``: metrics, per-element errors and parity plots of a trained model."""

from __future__ import annotations

import argparse

NAME = "evaluate"
HELP = "Evaluate a trained model on a dataset: MAE/RMSE, per-element errors, parity plots."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="a registered model name (default: the shipped model), a run "
                             "directory (its best checkpoint) or a checkpoint directory")
    parser.add_argument("--data", required=True, nargs="+",
                        help="MPTrj JSON, extxyz, or preprocessed dataset directory")
    parser.add_argument("--out", default=None,
                        help="output directory (default: <model>/eval for a folder, "
                             "eval-<name> for a registered name)")
    parser.add_argument("--energy-label", default=None,
                        help="MPTrj energy key (default: the one the model was trained on)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from facet.model_io import MODEL_PATHS
    from facet.train.evaluate import evaluate

    if args.out:
        out = args.out
    elif args.model in MODEL_PATHS:  # never write into the installed package
        out = f"eval-{args.model}"
    else:
        out = str(Path(args.model) / "eval")
    # a bad model, data file or element: one line and exit code 2 (facet.cli.main)
    res = evaluate(args.model, args.data, out, energy_label=args.energy_label)
    print(f"{res['n_structures']} structures, model {res['model']}")
    units = {"energy": "meV/atom", "forces": "meV/A", "stress": "meV/A^3"}
    for term, unit in units.items():
        m = res["metrics"]
        if f"{term}_mae" in m:
            print(f"  {term:7s} MAE {m[f'{term}_mae']:9.3f}  RMSE {m[f'{term}_rmse']:9.3f} {unit}")
    print("per element (forces MAE meV/A, energy MAE meV/atom):")
    for sym, row in res["per_element"].items():
        print(f"  {sym:3s} {row.get('forces_mae', float('nan')):9.2f} "
              f"{row.get('energy_mae', float('nan')):9.2f}")
    print(f"wrote {out}/metrics.json, per_element.csv and parity plots")
    return 0
