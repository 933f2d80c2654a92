"""The ``facet`` console script: one subcommand per module in this package.

Each subcommand module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) ->
int``. The CLI only parses arguments and calls library functions.

One error layer (:func:`main`): a mistake in what the user gave (an option out of range, a file
that is missing or unreadable, a bad config key, a structure the model cannot take: see
:func:`is_user_error`) prints one line ``facet VERB: error: ...`` on stderr and exits with code 2;
any other exception is an internal fault: its traceback is printed with a line saying it is a bug,
and the exit code is 1. Every verb's ``--help`` shows the defaults.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, in the order ``facet --help`` lists them.
SUBCOMMANDS = ["info", "preprocess", "train", "evaluate", "predict", "relax", "md", "export",
               "bench"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``facet VERB: error: ...``), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a mistake in the user's input (printed as one line) rather than a
    bug: :class:`facet.errors.InputError` and its subclasses, checkpoint errors, operating-system
    errors on the user's paths, undecodable or corrupt input files, YAML syntax errors."""
    import sqlite3

    import yaml

    from ..errors import InputError
    from ..train.checkpoint import CheckpointError

    return isinstance(
        exc,
        InputError | CheckpointError | OSError | UnicodeDecodeError | sqlite3.DatabaseError
        | yaml.YAMLError,
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 2000 else text[:2000] + " ..."


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="facet",
        description="Facet: E(3)-equivariant interatomic potentials in JAX.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        mod = importlib.import_module(f"facet.cli.{name}")
        p = sub.add_parser(
            mod.NAME,
            help=mod.HELP,
            description=mod.HELP,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"facet {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every error of every verb ends
        if is_user_error(exc):
            print(f"facet {args.command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        import traceback

        traceback.print_exc()
        print(
            f"facet {args.command}: internal error ({type(exc).__name__}): this is a bug in "
            "Facet; please report it with the traceback above",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
