"""Errors and accounting shared by every reader: :class:`FrameError` names file, material and
frame; :class:`ReadStats` counts read/kept/skipped frames so that nothing disappears silently,
and labels dropped from kept frames (a stress on a non-periodic frame) by reason."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Literal

from ..errors import InputError

__all__ = ["SKIP_REASONS", "DROP_REASONS", "OnError", "FrameError", "ReadStats"]

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
    "duplicate_id",
)

#: Why a label was dropped from a frame that is kept (counted in :attr:`ReadStats.dropped`).
DROP_REASONS = ("stress_not_periodic",)

OnError = Literal["raise", "skip"]


class FrameError(InputError):
    """A frame (or a file) that cannot be read; the message names file, material and frame.

    Attributes:
        reason: one of :data:`SKIP_REASONS`.
        source, material_id, frame_id: where it happened (``None`` when unknown).
        skippable: False for an error of the whole file (truncated JSON, bytes that are not
            text, not a database): skipping frames cannot get past it.
    """

    def __init__(
        self,
        detail: str,
        *,
        reason: str,
        source: str | None = None,
        material_id: str | None = None,
        frame_id: str | None = None,
        skippable: bool = True,
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
        self.skippable = skippable
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"{self.source or '<unknown file>'}: material {self.material_id or '?'}, "
            f"frame {self.frame_id or '?'}: {self.detail} [{self.reason}]"
        )

    def __reduce__(self):  # picklable across worker processes despite keyword-only fields
        return (_rebuild_frame_error, (self.detail, self.reason, self.source, self.material_id,
                                       self.frame_id, self.skippable))  # fmt: skip

    def located(self, *, source=None, material_id=None, frame_id=None) -> FrameError:
        """A copy with missing location fields filled in (callers know more than callees)."""
        return FrameError(
            self.detail,
            reason=self.reason,
            source=self.source or source,
            material_id=self.material_id or material_id,
            frame_id=self.frame_id or frame_id,
            skippable=self.skippable,
        )


def _rebuild_frame_error(detail, reason, source, material_id, frame_id, skippable=True):
    return FrameError(
        detail, reason=reason, source=source, material_id=material_id, frame_id=frame_id,
        skippable=skippable,
    )  # fmt: skip


@dataclass
class ReadStats:
    """Counts of one read: ``read == kept + sum(skipped.values())`` is checked by :meth:`check`."""

    read: int = 0
    kept: int = 0
    skipped: collections.Counter = field(default_factory=collections.Counter)
    #: the first few skip messages, for the log and the manifest
    examples: list[str] = field(default_factory=list)
    #: labels dropped from kept frames, by reason (:data:`DROP_REASONS`)
    dropped: collections.Counter = field(default_factory=collections.Counter)
    #: keys (``material/frame``) of the frames kept so far, to refuse a duplicate
    seen: set = field(default_factory=set, repr=False)

    def keep(self, key: str, dropped=(), *, source: str | None = None) -> None:
        """Count a kept frame; a key seen before raises :class:`FrameError` (``duplicate_id``)
        instead, so the caller skips or raises it like any bad frame."""
        if key in self.seen:
            mid, _, fid = key.rpartition("/")
            raise FrameError(
                "duplicate id: an earlier frame has the same material and frame id",
                reason="duplicate_id", source=source, material_id=mid, frame_id=fid,
            )  # fmt: skip
        self.seen.add(key)
        self.kept += 1
        for reason in dropped:
            self.dropped[reason] += 1

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
            "labels_dropped": dict(sorted(self.dropped.items())),
        }
