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
is bounded by the chunk and the number of edges, never by the length of the trace.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Interpolation = Literal["linear", "backward", "increase"]


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
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.dropped = 0  # samples older than one already taken (the clock stepped back)
        self._next_point = 0
        self._integral = 0.0
        self._covered = 0.0
        self._last_value = 0.0

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
        if self.last_time is None:
            self.first_time = float(times[0])
        else:
            fresh = times >= self.last_time
            if not fresh.all():
                self.dropped += int(times.size - np.count_nonzero(fresh))
                times, values = times[fresh], values[fresh]
            times = np.concatenate(([self.last_time], times))
            values = np.concatenate(([self._last_value], values))
        if times.size >= 2:
            self._integrate(times, values)
        self.last_time = float(times[-1])
        self._last_value = float(values[-1])

    def _integrate(self, times: np.ndarray, values: np.ndarray) -> None:
        spans = np.diff(times)
        bridged = spans <= self.max_gap
        if self.interpolation == "linear":
            pieces = 0.5 * (values[:-1] + values[1:]) * spans
        elif self.interpolation == "backward":
            pieces = values[1:] * spans
        else:
            pieces = np.diff(values)
        integral = np.empty(times.size)
        integral[0] = self._integral
        np.cumsum(np.where(bridged, pieces, 0.0), out=integral[1:])
        integral[1:] += self._integral
        covered = np.empty(times.size)
        covered[0] = self._covered
        np.cumsum(np.where(bridged, spans, 0.0), out=covered[1:])
        covered[1:] += self._covered

        end = int(np.searchsorted(self.points, times[-1], side="left"))
        if end > self._next_point:
            inside = self.points[self._next_point : end]
            segment = np.clip(np.searchsorted(times, inside, side="right") - 1, 0, times.size - 2)
            into = np.clip(inside - times[segment], 0.0, None)
            partial = self._partial(times, values, spans, segment, into)
            taken = bridged[segment]
            self.integral_at[self._next_point : end] = integral[segment] + np.where(taken, partial, 0.0)
            self.covered_at[self._next_point : end] = covered[segment] + np.where(taken, into, 0.0)
            self._next_point = end
        self._integral = float(integral[-1])
        self._covered = float(covered[-1])

    def _partial(
        self, times: np.ndarray, values: np.ndarray, spans: np.ndarray, segment: np.ndarray, into: np.ndarray
    ) -> np.ndarray:
        """The integral from the start of each point's segment to the point itself."""
        if self.interpolation == "backward":
            return values[segment + 1] * into
        span = spans[segment]
        fraction = np.divide(into, span, out=np.zeros(span.size), where=span > 0)
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
