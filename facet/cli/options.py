"""Argument types that check ranges while the command line is parsed, so that an option out of
range is refused by argparse in one line naming it (``--steps -1``, ``--temperature -300``)."""

from __future__ import annotations

import argparse
import math


def _number(kind, text: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not {'an integer' if kind is int else 'a number'}"
        ) from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def ranged(kind, *, lo=None, hi=None, lo_open=False, hi_open=False):
    """An argparse ``type=``: ``kind`` (int or float) within ``[lo, hi]`` (open ends optional)."""

    def parse(text: str):
        v = _number(kind, text)
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise argparse.ArgumentTypeError(f"must be {'>' if lo_open else '>='} {lo}, got {text}")
        if hi is not None and (v > hi or (hi_open and v == hi)):
            raise argparse.ArgumentTypeError(f"must be {'<' if hi_open else '<='} {hi}, got {text}")
        return v

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


#: common ranges
non_negative_int = ranged(int, lo=0)
positive_int = ranged(int, lo=1)
positive_float = ranged(float, lo=0, lo_open=True)
non_negative_float = ranged(float, lo=0)
finite_float = ranged(float)
fraction = ranged(float, lo=0, hi=1)
