"""Errors and accounting shared by every reader: :class:`FrameError` names file, material and
frame; :class:`ReadStats` counts read/kept/skipped frames so that nothing disappears silently."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["SKIP_REASONS", "OnError", "FrameError", "ReadStats"]

#: Why a frame was rejected; every FrameError carries one of these.
SKIP_REASONS = (
    "missing_key",
    "bad_shape",
    "non_finite",
    "empty_structure",
    "unknown_element",
    "singular_cell",
    "atoms_too_close",
    "disordered_site",
    "malformed",
)

OnError = Literal["raise", "skip"]


class FrameError(ValueError):
    """A frame (or a file) that cannot be read; the message names file, material and frame.

    Attributes:
        reason: one of :data:`SKIP_REASONS`.
        source, material_id, frame_id: where it happened (``None`` when unknown).
    """

    def __init__(
        self,
        detail: str,
        *,
        reason: str,
        source: str | None = None,
        material_id: str | None = None,
        frame_id: str | None = None,
    ):
        if reason not in SKIP_REASONS:
            raise ValueError(
                f"unknown FrameError reason {reason!r}; expected one of {SKIP_REASONS}"
            )
        self.detail = detail
        self.reason = reason
        self.source = source
        self.material_id = material_id
        self.frame_id = frame_id
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"{self.source or '<unknown file>'}: material {self.material_id or '?'}, "
            f"frame {self.frame_id or '?'}: {self.detail} [{self.reason}]"
        )

    def __reduce__(self):  # picklable across worker processes despite keyword-only fields
        return (_rebuild_frame_error, (self.detail, self.reason, self.source, self.material_id,
                                       self.frame_id))  # fmt: skip

    def located(self, *, source=None, material_id=None, frame_id=None) -> FrameError:
        """A copy with missing location fields filled in (callers know more than callees)."""
        return FrameError(
            self.detail,
            reason=self.reason,
            source=self.source or source,
            material_id=self.material_id or material_id,
            frame_id=self.frame_id or frame_id,
        )


def _rebuild_frame_error(detail, reason, source, material_id, frame_id) -> FrameError:
    return FrameError(
        detail, reason=reason, source=source, material_id=material_id, frame_id=frame_id
    )


@dataclass
class ReadStats:
    """Counts of one read: ``read == kept + sum(skipped.values())`` is checked by :meth:`check`."""

    read: int = 0
    kept: int = 0
    skipped: collections.Counter = field(default_factory=collections.Counter)
    #: the first few skip messages, for the log and the manifest
    examples: list[str] = field(default_factory=list)

    def skip(self, err: FrameError, *, max_examples: int = 20) -> None:
        self.skipped[err.reason] += 1
        if len(self.examples) < max_examples:
            self.examples.append(str(err))

    @property
    def n_skipped(self) -> int:
        return int(sum(self.skipped.values()))

    def check(self) -> None:
        if self.read != self.kept + self.n_skipped:
            raise AssertionError(
                f"frame accounting broken: read {self.read} != kept {self.kept} + skipped "
                f"{self.n_skipped} ({dict(self.skipped)})"
            )

    def as_dict(self) -> dict:
        return {
            "read": self.read,
            "kept": self.kept,
            "skipped": self.n_skipped,
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "skip_examples": list(self.examples),
        }
