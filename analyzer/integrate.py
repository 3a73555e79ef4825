"""Exact integrals of sampled signals over time windows, fed chunk by chunk.

A signal is known only at its samples. Between two samples it is taken to be:

* ``linear``   - the straight line between them (the trapezoid rule): instant power, memory,
  NVML utilisation;
* ``backward`` - the later sample's value, because the sample is an average over the interval
  that ends at it: GPM activities;
* ``increase`` - for a cumulative counter (the energy counter), the quantity is the counter's
  increase, read off its straight-line interpolation.

Window edges that fall between samples are interpolated, so a window's integral is exact for
the piecewise signal whatever the sampling. Segments longer than ``max_gap`` seconds are not
bridged: they add nothing and count as uncovered time, so callers report coverage < 100 %.

The work is one cumulative sum per chunk plus a binary search per window edge: the running
integral is evaluated only at the (sorted) window edges that fall inside the chunk, so memory
is bounded by the chunk and the number of edges, never by the length of the trace. Everything
that depends only on the sample times (spans, gaps, where each edge falls) is a
:class:`TimeGrid`, computed once per chunk and shared by every signal sampled at those times.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Interpolation = Literal["linear", "backward", "increase"]


class TimeGrid:
    """One chunk of sample times (after the previous chunk's last sample) and where the edges fall in it."""

    def __init__(self, points: np.ndarray, carry_time: float | None, times: np.ndarray, max_gap: float) -> None:
        self.carry_time = carry_time
        self.max_gap = max_gap
        self.times = times if carry_time is None else np.concatenate(([carry_time], times))
        spans = np.diff(self.times)
        self.sorted = bool(spans.size == 0 or spans.min() >= 0)
        self.bridged = spans <= max_gap
        self.all_bridged = bool(self.bridged.all())
        self.weights = spans if self.all_bridged else np.where(self.bridged, spans, 0.0)
        self.covered = float(self.weights.sum())
        self.first_point = 0 if carry_time is None else int(np.searchsorted(points, carry_time, side="left"))
        self.end_point = int(np.searchsorted(points, self.times[-1], side="left"))
        inside = points[self.first_point : self.end_point]
        self.segment = np.clip(np.searchsorted(self.times, inside, side="right") - 1, 0, max(self.times.size - 2, 0))
        if self.times.size >= 2:
            self.into = np.clip(inside - self.times[self.segment], 0.0, None)
            span = spans[self.segment]
            self.fraction = np.divide(self.into, span, out=np.zeros(span.size), where=span > 0)
            self.taken = self.bridged[self.segment]
            covered_before = _sum_before(self.weights, self.segment)
            self.covered_at = covered_before + np.where(self.taken, self.into, 0.0)

    @property
    def size(self) -> int:
        return int(self.times.size)


def _sum_before(pieces: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Sum of ``pieces[:s]`` for each (sorted) segment index s.

    One ``np.add.reduceat`` pass over the pieces between consecutive distinct segments: a
    vectorised add, several times faster than a running ``cumsum`` of every piece.
    """
    if segment.size == 0:
        return np.zeros(0)
    distinct, where = np.unique(segment, return_inverse=True)
    starts = np.concatenate(([0], distinct))
    sums = np.add.reduceat(pieces, np.minimum(starts, pieces.size - 1))[: distinct.size]
    if distinct[0] == 0:
        sums[0] = 0.0  # reduceat gives pieces[0] for an empty [0, 0) slice
    return np.cumsum(sums)[where]


class RunningIntegral:
    """The integral of one signal from the start of its trace up to each of a set of time points.

    ``points`` are sorted times (seconds). Feed the signal's samples in time order with
    :meth:`add` (any chunking gives the same result), then :meth:`finish` returns, for every
    point, the integral up to it and the time up to it that was covered by samples.
    """

    def __init__(self, points: np.ndarray, max_gap: float, interpolation: Interpolation = "linear") -> None:
        self.points = np.asarray(points, dtype=np.float64)
        self.max_gap = float(max_gap)
        self.interpolation = interpolation
        self.integral_at = np.zeros(self.points.size)
        self.covered_at = np.zeros(self.points.size)
        self.last_time: float | None = None
        self.dropped = 0  # samples older than one already taken (the clock stepped back)
        self._next_point = 0
        self._integral = 0.0
        self._covered = 0.0
        self._last_value = 0.0

    def accepts(self, grid: TimeGrid) -> bool:
        """Whether :meth:`add_on_grid` may be used: same gap bound, continuing where this signal stopped."""
        return grid.sorted and grid.max_gap == self.max_gap and grid.carry_time == self.last_time

    def add(self, times: np.ndarray, values: np.ndarray) -> None:
        """Take the next samples (seconds, values); NaN values are read as missing samples."""
        keep = ~np.isnan(values)
        if not keep.all():
            times, values = times[keep], values[keep]
        if times.size == 0:
            return
        if times.size > 1 and np.any(times[1:] < times[:-1]):
            order = np.argsort(times, kind="stable")
            times, values = times[order], values[order]
        if self.last_time is not None:
            fresh = times >= self.last_time
            if not fresh.all():
                self.dropped += int(times.size - np.count_nonzero(fresh))
                times, values = times[fresh], values[fresh]
                if times.size == 0:
                    return
        self.add_on_grid(TimeGrid(self.points, self.last_time, times, self.max_gap), values)

    def add_on_grid(self, grid: TimeGrid, values: np.ndarray) -> None:
        """Take samples at the times of ``grid`` (which :meth:`accepts`); ``values`` has no NaN."""
        if grid.carry_time is None:
            full = np.asarray(values, dtype=np.float64)
        else:
            full = np.empty(grid.size)
            full[0] = self._last_value
            full[1:] = values
        if grid.size >= 2:
            self._integrate(grid, full)
        self._next_point = grid.end_point  # points before a lone first sample keep their zero
        self.last_time = float(grid.times[-1])
        self._last_value = float(full[-1])

    def _integrate(self, grid: TimeGrid, values: np.ndarray) -> None:
        if self.interpolation == "linear":
            pieces = (values[:-1] + values[1:]) * grid.weights
            scale = 0.5
        elif self.interpolation == "backward":
            pieces = values[1:] * grid.weights
            scale = 1.0
        else:
            pieces = np.diff(values)
            if not grid.all_bridged:
                pieces = np.where(grid.bridged, pieces, 0.0)
            scale = 1.0
        if grid.end_point > grid.first_point:
            segment = grid.segment
            before = scale * _sum_before(pieces, segment)
            partial = self._partial(values, segment, grid.into, grid.fraction)
            at = slice(grid.first_point, grid.end_point)
            self.integral_at[at] = self._integral + before + np.where(grid.taken, partial, 0.0)
            self.covered_at[at] = self._covered + grid.covered_at
        self._integral += scale * float(pieces.sum())
        self._covered += grid.covered

    def _partial(self, values: np.ndarray, segment: np.ndarray, into: np.ndarray, fraction: np.ndarray) -> np.ndarray:
        """The integral from the start of each point's segment to the point itself."""
        if self.interpolation == "backward":
            return values[segment + 1] * into
        rise = values[segment + 1] - values[segment]
        if self.interpolation == "increase":
            return rise * fraction
        return into * (values[segment] + 0.5 * rise * fraction)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """Integral and covered time up to each point (points after the last sample get the total)."""
        self.integral_at[self._next_point :] = self._integral
        self.covered_at[self._next_point :] = self._covered
        self._next_point = self.points.size
        return self.integral_at, self.covered_at


def window_edges(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted distinct edges of a set of windows, and where each window's start and end sit in them."""
    edges, where = np.unique(np.concatenate((starts, ends)), return_inverse=True)
    return edges, where[: starts.size], where[starts.size :]


def window_integrals(
    times: np.ndarray,
    values: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    max_gap: float = np.inf,
    interpolation: Interpolation = "linear",
) -> tuple[np.ndarray, np.ndarray]:
    """Integral of one sampled signal over each window ``[start, end]``, and the time covered.

    The one-call form of :class:`RunningIntegral`, for signals that fit in memory.
    """
    starts = np.asarray(starts, dtype=np.float64)
    ends = np.asarray(ends, dtype=np.float64)
    edges, start_at, end_at = window_edges(starts, ends)
    running = RunningIntegral(edges, max_gap, interpolation)
    running.add(np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64))
    integral, covered = running.finish()
    return integral[end_at] - integral[start_at], covered[end_at] - covered[start_at]
