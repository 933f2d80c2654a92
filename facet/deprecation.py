"""Old import paths kept for one release: :func:`warn_moved` is what each re-export module calls."""

from __future__ import annotations

import warnings

__all__ = ["warn_moved"]


def warn_moved(old: str, new: str) -> None:
    """Warn (``DeprecationWarning``, pointing at the importing line) that ``old`` moved to
    ``new`` and goes in the next release."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; import {new}",
        DeprecationWarning,
        stacklevel=3,
    )
