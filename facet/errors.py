"""The one base class of mistakes in what a user gave Facet (a file, a structure, an option, a
name): :class:`InputError`.

Library code raises it (or a subclass: :class:`facet.data.errors.FrameError`,
:class:`facet.train.config.ConfigError`, :class:`facet.data.dataset.DatasetError`) with a message
that names the file, key, frame or option at fault. The ``facet`` command line prints such an
error as one line on stderr and exits with code 2; any other exception is an internal fault and
keeps its traceback (see :mod:`facet.cli`). It derives from ``ValueError`` so that callers
catching ``ValueError`` keep working.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input from the user; the message names what is wrong and where."""
