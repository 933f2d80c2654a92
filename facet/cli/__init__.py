"""The ``facet`` console script: one subcommand per module in this package.

Each subcommand module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) ->
int``. The CLI only parses arguments and calls library functions.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, in the order ``facet --help`` lists them.
SUBCOMMANDS = ["info", "preprocess", "train", "evaluate", "relax", "md", "export", "bench"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facet",
        description="Facet: E(3)-equivariant interatomic potentials in JAX.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        mod = importlib.import_module(f"facet.cli.{name}")
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
