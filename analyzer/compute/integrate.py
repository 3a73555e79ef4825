"""Exact integrals of sampled signals over time windows, fed chunk by chunk.

A signal is known only at its samples. Between two samples it is taken to be:

* ``linear``   - the straight line between them (the trapezoid rule): instant power, memory,
  NVML utilisation;
* ``backward`` - the later sample's value, because the sample is an average over the interval
  that ends at it: GPM activities;
* ``increase`` - for a cumulative counter (the energy counter), the quantity is the counter's
  increase, read off its straight-line interpolation; a segment where it goes back (the driver
  was reloaded and the counter restarted) adds nothing and is counted in ``resets``.

Window edges that fall between samples are interpolated, so a window's integral is exact for
the piecewise signal whatever the sampling. Segments longer than ``max_gap`` seconds are not
bridged: they add nothing and count as uncovered time, so callers report coverage < 100 %.

The work is one pass over each chunk plus a binary search per window edge: the running
integral is evaluated only at the (sorted) window edges that fall inside the chunk, so memory
is bounded by the chunk and the number of edges, never by the length of the trace. What depends
only on the sample times (spans, gaps, each sample's weight) is a :class:`SampleTimes`, worked out
once per chunk; where a set of edges falls among them is a :class:`TimeGrid`, shared by every signal
sampled at those times and integrated over those edges;
:meth:`RunningIntegral.add_block` then integrates all the signals of one kind sampled on a grid as
rows of one 2-D array, so a GPU's seven linear signals cost one numpy pass, not seven.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from efftrace.analyzer.compute.partial_integral import Interpolation, PartialIntegral


class SampleTimes:
    """One chunk of sample times, after the sample carried from the chunk before: what depends on
    the times alone (spans, gaps, each sample's weight), worked out once however many sets of
    edges are placed among them.

    Seen as one sequence, the carried sample (if any) comes first; the chunk's own times are not
    copied to put it there: a chunk is a few hundred thousand samples, its edges a few thousand.
    """

    def __init__(self, carry_time: float | None, times: np.ndarray, max_gap: float) -> None:
        """``times``: the chunk's own (one at least), in seconds; ``carry_time``: the sample before them."""
        self.carry_time = carry_time
        self.max_gap = max_gap
        self.samples = times
        carried = 0 if carry_time is None else 1
        self.size = int(times.size) + carried
        self.first = float(times[0]) if carry_time is None else carry_time
        self.last = float(times[-1])
        self.spans = np.empty(max(self.size - 1, 0))
        if carried:
            self.spans[0] = times[0] - carry_time
        np.subtract(times[1:], times[:-1], out=self.spans[carried:])
        spans = self.spans
        self.sorted = bool(spans.size == 0 or spans.min() >= 0)
        self.all_bridged = bool(spans.size == 0 or spans.max() <= max_gap)
        # which segments are bridged: built only when one is not (a gap is rare; the mask costs a pass)
        self.bridged = None if self.all_bridged else spans <= max_gap
        self.weights = spans if self.bridged is None else np.where(self.bridged, spans, 0.0)
        # with no gap, the covered time up to any sample is just its distance from the first
        self.covered = self.last - self.first if self.all_bridged else float(self.weights.sum())
        self._sample_weights: dict[Interpolation, np.ndarray] = {}

    def at(self, indices: np.ndarray) -> np.ndarray:
        """The times at ``indices`` of the sequence (index 0 is the carried sample when there is one)."""
        if self.carry_time is None:
            return self.samples[indices]
        times = self.samples[np.maximum(indices - 1, 0)]
        times[indices == 0] = self.carry_time
        return times

    def sample_weights(self, interpolation: Interpolation) -> np.ndarray:
        """Each sample's weight in the integral, so that a chunk's integral is ``values @ weights``.

        Trapezoid: half of each segment goes to each of its two samples; backward: a segment goes
        to the sample that ends it. Integrating then costs one multiply per value read (converted
        from the column's own type on the way), not a pass to build segment pieces first.
        """
        if interpolation not in self._sample_weights:
            weights = np.empty(self.size)
            if interpolation == "linear":  # each sample: half the segment before it, half the one after
                weights[0], weights[-1] = 0.5 * self.weights[0], 0.5 * self.weights[-1]
                np.add(self.weights[:-1], self.weights[1:], out=weights[1:-1])
                weights[1:-1] *= 0.5
            else:
                weights[0] = 0.0
                weights[1:] = self.weights
            self._sample_weights[interpolation] = weights
        return self._sample_weights[interpolation]


class TimeGrid:
    """Where a set of sorted edges (``points``) falls among one chunk's sample times."""

    def __init__(self, points: np.ndarray, times: SampleTimes) -> None:
        self.times = times
        # edges before the first sample of a trace (or partition) keep the zero they start with: untouched,
        # so a partition late in a long trace costs nothing for the edges before it
        self.first_point = int(np.searchsorted(points, times.first, side="left"))
        self.end_point = int(np.searchsorted(points, times.last, side="left"))
        inside = points[self.first_point : self.end_point]
        # the segment each edge falls in, counted from the carried sample: after one, every edge here
        # is at or after it, so the edge's place among the chunk's own times is its segment already
        self.segment = np.searchsorted(times.samples, inside, side="right")
        if times.carry_time is None:
            self.segment -= 1
        # otherwise clamp: an edge before a trace's first sample is put at the start of the first segment
        # (nothing yet), and unsorted times (never integrated on this grid) stay in range
        if times.carry_time is None or not times.sorted:
            np.clip(self.segment, 0, max(times.size - 2, 0), out=self.segment)
        self._coefficients: dict[Interpolation, tuple[np.ndarray, np.ndarray]] = {}
        if times.size >= 2:
            segment_start = times.at(self.segment)
            self.into = np.subtract(inside, segment_start)
            np.maximum(self.into, 0.0, out=self.into)
            span = times.spans[self.segment]
            self.fraction = np.divide(self.into, span, out=np.zeros(span.size), where=span > 0)
            # whether each edge's segment counts (None: all do), and the part of it up to the edge that does
            self.taken = None if times.all_bridged else times.bridged[self.segment]
            self.taken_into = self.into if self.taken is None else self.into * self.taken
            # the weight of the segment before each edge's segment (none before the first)
            self.weight_before = times.weights[np.maximum(self.segment - 1, 0)]
            self.weight_before[self.segment == 0] = 0.0
            if self.segment.size:
                # edges are sorted, so their segments are too: runs of equal segments, found by one diff
                new_run = np.concatenate(([True], self.segment[1:] != self.segment[:-1]))
                distinct = self.segment[new_run]
                self._segment_rank = np.cumsum(new_run) - 1
                self._run_starts = np.concatenate(([0], distinct))
                self._first_segment_empty = bool(distinct[0] == 0)
            if times.all_bridged:
                self.covered_at = segment_start - times.first + self.into
            else:
                covered_before, _ = self.sum_before(times.weights)
                self.covered_at = covered_before + self.taken_into

    def edge_coefficients(self, interpolation: Interpolation) -> tuple[np.ndarray, np.ndarray]:
        """What the sample-weight sum up to each edge's segment leaves out, as weights of the two
        samples around the edge: it is ``preceding * first + following * second``.

        Left out are the segment itself up to the edge and the half (trapezoid) or whole
        (backward) of the segment before it that was charged to the segment's first sample. As
        weights they are worked out once per grid, whatever the number of signals on it.
        """
        if interpolation not in self._coefficients:
            if interpolation == "linear":
                second = 0.5 * self.taken_into * self.fraction
                first = self.taken_into + 0.5 * self.weight_before - second
            else:
                first, second = self.weight_before, self.taken_into
            self._coefficients[interpolation] = first, second
        return self._coefficients[interpolation]

    def sum_before(self, pieces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sum of ``pieces[..., :s]`` for the segment s of each edge inside the chunk, and of all pieces.

        One ``np.add.reduceat`` pass over the pieces between consecutive distinct segments (the
        last run reaching to the end gives the total for free): a vectorised add, several times
        faster than a running ``cumsum`` of every piece. The last axis runs over segments or
        samples; either way index s is the first one not summed.
        """
        if self.segment.size == 0:
            return np.zeros((*pieces.shape[:-1], 0)), pieces.sum(axis=-1)
        sums = np.add.reduceat(pieces, self._run_starts, axis=-1)
        if self._first_segment_empty:
            sums[..., 0] = 0.0  # reduceat gives pieces[0] for an empty [0, 0) slice
        running = np.cumsum(sums, axis=-1)
        # np.take along the axis: a third of the time of fancy indexing a 2-D view
        return np.take(running, self._segment_rank, axis=-1), running[..., -1]


class Scratch:
    """Reusable float64 buffers for block-sized intermediates.

    A fresh multi-megabyte temporary per call costs more in page faults than the arithmetic
    done in it (measured: 5 ms against 0.4 ms for a 7 × 64k block), so the blocks reuse these.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def take(self, name: str, rows: int, columns: int) -> np.ndarray:
        """A ``rows × columns`` view of the buffer ``name``, grown when too small; its contents are stale."""
        size = rows * columns
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size)
        return buffer[:size].reshape(rows, columns)


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
        # np.zeros is calloc: pages of edges no sample reaches are never touched, so never resident
        self.integral_at = np.zeros(self.points.size)
        self.covered_at = np.zeros(self.points.size)
        self.first_time: float | None = None
        self._first_value = 0.0
        self.last_time: float | None = None
        self.dropped = 0  # samples older than one already taken (the clock stepped back)
        self.resets = 0  # segments where a counter went back
        self._next_point = 0
        self._integral = 0.0
        self._covered = 0.0
        self._last_value = 0.0

    def accepts(self, grid: TimeGrid) -> bool:
        """Whether :meth:`add_on_grid` may be used: same gap bound, continuing where this signal stopped."""
        return grid.times.sorted and grid.times.max_gap == self.max_gap and grid.times.carry_time == self.last_time

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
        self.add_on_grid(TimeGrid(self.points, SampleTimes(self.last_time, times, self.max_gap)), values)

    def add_on_grid(self, grid: TimeGrid, values: np.ndarray) -> None:
        """Take samples at the times of ``grid`` (which :meth:`accepts`); ``values`` has no NaN."""
        RunningIntegral.add_block([self], grid, [values], Scratch())

    @staticmethod
    def add_block(
        integrals: Sequence[RunningIntegral], grid: TimeGrid, samples: Sequence[np.ndarray], scratch: Scratch
    ) -> None:
        """Feed each integral its samples (taken at the grid's times, no NaN), all as one 2-D block.

        Every integral must :meth:`accepts` the grid and share one interpolation. ``samples`` may
        be views of any numeric type (a strided column of one GPU): they are read, converted to
        float64 on the way, once.
        """
        interpolation = integrals[0].interpolation
        carried = 0 if grid.times.carry_time is None else 1
        if grid.times.size >= 2:
            if interpolation == "increase":
                before, totals = _counter_increase(integrals, grid, samples, scratch)
            else:
                weights = grid.times.sample_weights(interpolation)
                products = scratch.take("products", len(integrals), grid.times.size)
                for row, (integral, column) in enumerate(zip(integrals, samples, strict=True)):
                    if carried:
                        products[row, 0] = integral._last_value * weights[0]
                    np.multiply(column, weights[carried:], out=products[row, carried:])
                before, totals = grid.sum_before(products)
            if grid.end_point > grid.first_point:
                preceding = _values_at(integrals, samples, grid, grid.segment, scratch.take("preceding", *before.shape))
                following = _values_at(
                    integrals, samples, grid, grid.segment + 1, scratch.take("following", *before.shape)
                )
                if interpolation == "increase":  # the counter's rise within the segment, up to the edge
                    rise = np.subtract(following, preceding, out=following)
                    np.maximum(rise, 0.0, out=rise)
                    before += rise * (grid.fraction if grid.taken is None else grid.fraction * grid.taken)
                else:
                    first, second = grid.edge_coefficients(interpolation)
                    before += np.multiply(preceding, first, out=preceding)
                    before += np.multiply(following, second, out=following)
                at = slice(grid.first_point, grid.end_point)
                for row, integral in enumerate(integrals):
                    np.add(before[row], integral._integral, out=integral.integral_at[at])
                    np.add(grid.covered_at, integral._covered, out=integral.covered_at[at])
            for row, integral in enumerate(integrals):
                integral._integral += float(totals[row])
                integral._covered += grid.times.covered
        last_time = grid.times.last
        for integral, column in zip(integrals, samples, strict=True):
            if integral.first_time is None:
                integral.first_time, integral._first_value = grid.times.first, float(column[0])
            integral._next_point = grid.end_point  # points before a lone first sample keep their zero
            integral.last_time = last_time
            integral._last_value = float(column[-1])

    def partial(self) -> PartialIntegral:
        """What this integral holds as one partition's state, to be joined with its neighbours'
        (:func:`~efftrace.analyzer.compute.partial_integral.joined`).

        The state's arrays are views of this integral's, not copies (a partition has a hundred of
        them, each as long as the windows' edges): take it once the partition's samples are all in."""
        if self.first_time is None or self.last_time is None:
            return PartialIntegral.empty(self.interpolation, self.max_gap, self.dropped)
        low = int(np.searchsorted(self.points, self.first_time, side="left"))
        high = max(self._next_point, low)
        return PartialIntegral(
            self.interpolation,
            self.max_gap,
            low,
            self.integral_at[low:high],
            self.covered_at[low:high],
            self._integral,
            self._covered,
            self.first_time,
            self._first_value,
            self.last_time,
            self._last_value,
            self.dropped,
            self.resets,
        )

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """Integral and covered time up to each point (points after the last sample get the total)."""
        self.integral_at[self._next_point :] = self._integral
        self.covered_at[self._next_point :] = self._covered
        self._next_point = self.points.size
        return self.integral_at, self.covered_at


def _values_at(
    integrals: Sequence[RunningIntegral],
    samples: Sequence[np.ndarray],
    grid: TimeGrid,
    indices: np.ndarray,
    out: np.ndarray,
) -> np.ndarray:
    """Each signal's values at grid ``indices`` (a row per signal), where index 0 is the carried
    sample when the grid has one."""
    carried = 0 if grid.times.carry_time is None else 1
    where = indices - carried if carried else indices
    if carried:
        np.maximum(where, 0, out=where)
    for row, column in enumerate(samples):
        out[row] = column[where]
    if carried and indices[0] == 0:  # sorted: only leading edges can sit in the carried segment
        out[:, indices == 0] = np.array([[integral._last_value] for integral in integrals])
    return out


def _counter_increase(
    integrals: Sequence[RunningIntegral], grid: TimeGrid, samples: Sequence[np.ndarray], scratch: Scratch
) -> tuple[np.ndarray, np.ndarray]:
    """For cumulative counters: the increase up to each edge's segment and over the chunk.

    A segment where the counter goes back (a driver reload restarted it) adds nothing and is
    counted in ``resets``; a segment across a gap adds nothing either.
    """
    carried = 0 if grid.times.carry_time is None else 1
    values = scratch.take("values", len(integrals), grid.times.size)
    for row, (integral, column) in enumerate(zip(integrals, samples, strict=True)):
        if carried:
            values[row, 0] = integral._last_value
        values[row, carried:] = column
    pieces = np.subtract(values[:, 1:], values[:, :-1], out=scratch.take("pieces", len(integrals), grid.times.size - 1))
    if grid.times.bridged is not None:
        pieces *= grid.times.bridged
    went_back = pieces < 0
    if went_back.any():
        for row, integral in enumerate(integrals):
            integral.resets += int(np.count_nonzero(went_back[row]))
        pieces[went_back] = 0.0
    return grid.sum_before(pieces)


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
