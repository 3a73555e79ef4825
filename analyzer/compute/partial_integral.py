"""One signal's integral over one partition of its samples, as state that joins with its neighbours'.

A partition (a byte range of a sample file, :mod:`efftrace.analyzer.read.partitions`) is integrated
on its own, from its first sample. Its state holds the running integral and covered time at the
window edges its samples reach (relative to its first sample), its totals, and its first and last
samples. Two neighbouring states join exactly: the segment from the left one's last sample to
the right one's first is integrated as the sequential pass would (same interpolation, same gap
bound), the edges inside that segment are interpolated, and the right one's values are moved up
by everything before it. Joining is associative, so any split of a file into partitions, run in
any order and joined in file order, gives the figures of one pass over the whole file.

Edges before a state's first sample hold 0 and edges at or after its last sample hold its total,
implicitly: a partition's state is as large as the edges inside its own time span, never the whole
trace's, and all the states of a file together are as large as one pass's.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Interpolation = Literal["linear", "backward", "increase"]


@dataclass(frozen=True)
class PartialIntegral:
    """The integral of one signal from its partition's first sample up to each edge it reaches.

    ``integral`` and ``covered`` hold edges ``low .. low + len - 1`` of the shared, sorted edges:
    those at or after ``first_time`` and before ``last_time``.
    """

    interpolation: Interpolation
    max_gap: float
    low: int
    integral: np.ndarray
    covered: np.ndarray
    total: float
    total_covered: float
    first_time: float
    first_value: float
    last_time: float
    last_value: float
    dropped: int  # samples left out for going back in time, inside the partition
    resets: int  # segments where a counter went back

    @staticmethod
    def empty(interpolation: Interpolation, max_gap: float, dropped: int = 0) -> PartialIntegral:
        """The state of a partition with no usable sample of the signal: joining it changes nothing."""
        nothing = np.zeros(0)
        return PartialIntegral(
            interpolation, max_gap, 0, nothing, nothing, 0.0, 0.0, np.nan, np.nan, np.nan, np.nan, dropped, 0
        )

    @property
    def has_samples(self) -> bool:
        return not np.isnan(self.first_time)

    @property
    def high(self) -> int:
        return self.low + self.integral.size

    def at(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integral and covered time up to the edges ``indices``: 0 before the first sample, the totals
        at or after the last."""
        after = indices >= self.high
        if self.integral.size == 0:
            return np.where(after, self.total, 0.0), np.where(after, self.total_covered, 0.0)
        inside = np.subtract(indices, self.low)
        integral = np.take(self.integral, inside, mode="clip")
        covered = np.take(self.covered, inside, mode="clip")
        if after.any():  # the few edges after the last sample (a run's end); a state usually reaches the rest
            integral[after], covered[after] = self.total, self.total_covered
        before = inside < 0
        if before.any():
            integral[before] = covered[before] = 0.0
        return integral, covered


def joined(states: Sequence[PartialIntegral], edges: np.ndarray) -> PartialIntegral | None:
    """The states of consecutive partitions of one signal (in file order) as one; None where a
    partition starts before the one before it ended (its samples went back in time across the
    boundary, which only a pass over both in one piece treats as the sequential pass does)."""
    taken = [state for state in states if state.has_samples]
    dropped = sum(state.dropped for state in states)
    if not taken:
        kind, gap = states[0].interpolation, states[0].max_gap
        return PartialIntegral.empty(kind, gap, dropped)
    if any(right.first_time < left.last_time for left, right in itertools.pairwise(taken)):
        return None
    first, last = taken[0], taken[-1]
    size = last.high - first.low
    integral, covered = np.empty(size), np.empty(size)
    total = total_covered = 0.0
    resets = first.resets
    _place(integral, covered, first, first.low, 0.0, 0.0)
    for left, right in itertools.pairwise(taken):
        total, total_covered = total + left.total, total_covered + left.total_covered
        between = edges[left.high : right.low]
        part, part_covered, whole, whole_covered, went_back = _bridge(left, right, between)
        integral[left.high - first.low : right.low - first.low] = total + part
        covered[left.high - first.low : right.low - first.low] = total_covered + part_covered
        total, total_covered = total + whole, total_covered + whole_covered
        resets += right.resets + went_back
        _place(integral, covered, right, first.low, total, total_covered)
    total, total_covered = total + last.total, total_covered + last.total_covered
    return PartialIntegral(
        first.interpolation,
        first.max_gap,
        first.low,
        integral,
        covered,
        total,
        total_covered,
        first.first_time,
        first.first_value,
        last.last_time,
        last.last_value,
        dropped,
        resets,
    )


def _place(
    integral: np.ndarray, covered: np.ndarray, state: PartialIntegral, origin: int, base: float, base_covered: float
) -> None:
    """Write one state's edges into the joined arrays (which start at edge ``origin``), moved up by what came before."""
    at = slice(state.low - origin, state.high - origin)
    np.add(state.integral, base, out=integral[at])
    np.add(state.covered, base_covered, out=covered[at])


def _bridge(
    left: PartialIntegral, right: PartialIntegral, between: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, float, int]:
    """The segment from ``left``'s last sample to ``right``'s first: its integral and covered time up
    to each edge ``between`` them, over the whole segment, and whether a counter went back across it.

    As in the sequential pass: a segment longer than the gap bound adds nothing and covers nothing;
    a counter's segment adds its rise, read off the straight line, and nothing where it went back.
    """
    span = right.first_time - left.last_time
    into = np.maximum(between - left.last_time, 0.0)
    if span > left.max_gap:
        return np.zeros(between.size), np.zeros(between.size), 0.0, 0.0, 0
    fraction = into / span if span > 0 else np.zeros(between.size)
    start, end = left.last_value, right.first_value
    if left.interpolation == "linear":
        return into * (start + (end - start) * fraction * 0.5), into, span * (start + end) * 0.5, span, 0
    if left.interpolation == "backward":
        return into * end, into, span * end, span, 0
    rise = end - start
    if rise < 0:
        return np.zeros(between.size), into, 0.0, span, 1
    return rise * fraction, into, rise, span, 0
