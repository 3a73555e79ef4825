"""Wall-clock times of points in the GPU's work queue, taken without waiting for the GPU.

A ``torch.cuda.synchronize()`` at every step end drains the queue a training loop keeps full:
on an H100 it cost 0.6 % of a 245-ms LLaMA-Factory step (docs/benchmarks.md). Instead a CUDA
event is recorded at each point of interest, and read once the GPU has passed it, as an offset
from an *anchor*: an event whose wall time is known because the CPU waited for it. A new anchor
is taken every :data:`ANCHOR_INTERVAL_S`, so the GPU's timer and the host's clock cannot drift
apart by more than a few microseconds; that one wait every half minute is all the syncing left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

ANCHOR_INTERVAL_S = 30.0


@dataclass(frozen=True)
class _Anchor:
    event: Any
    wall_ns: int
    monotonic_s: float


@dataclass(frozen=True)
class GpuMark:
    """A point in the GPU's queue: its event and the anchor its time is read against."""

    event: Any
    anchor: _Anchor


class GpuClock:
    """Records :class:`GpuMark` s on the current CUDA stream and turns them into wall-clock ns."""

    def __init__(self, cuda: Any, anchor_interval_s: float = ANCHOR_INTERVAL_S) -> None:
        self._cuda = cuda
        self._anchor_interval_s = anchor_interval_s
        self._anchor: _Anchor | None = None

    def mark(self) -> GpuMark:
        """Queue an event after the work queued so far; cheap, never waits (except to re-anchor)."""
        anchor = self._anchor
        if anchor is None or time.monotonic() - anchor.monotonic_s >= self._anchor_interval_s:
            anchor = self._anchor = self._new_anchor()
        event = self._cuda.Event(enable_timing=True)
        event.record()
        return GpuMark(event, anchor)

    @staticmethod
    def passed(mark: GpuMark) -> bool:
        """Whether the GPU has reached ``mark`` (its time can be read without waiting)."""
        return bool(mark.event.query())

    @staticmethod
    def wall_ns(mark: GpuMark) -> int:
        """When the GPU reached ``mark``, in ns since the Unix epoch (waits for it if need be)."""
        mark.event.synchronize()
        offset_ms = mark.anchor.event.elapsed_time(mark.event)
        return mark.anchor.wall_ns + round(offset_ms * 1e6)

    def _new_anchor(self) -> _Anchor:
        event = self._cuda.Event(enable_timing=True)
        event.record()
        event.synchronize()
        return _Anchor(event, time.time_ns(), time.monotonic())
