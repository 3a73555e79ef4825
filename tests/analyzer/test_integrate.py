"""Properties of the clipped trapezoid integral, checked on many random signals (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from efftrace.analyzer.compute.integrate import (
    RunningIntegral,
    SampleTimes,
    Scratch,
    TimeGrid,
    window_edges,
    window_integrals,
)

times_strategy = st.lists(st.floats(0, 100, allow_nan=False), min_size=2, max_size=60, unique=True).map(
    lambda values: np.sort(np.array(values))
)


@settings(max_examples=200, deadline=None)
@given(times_strategy, st.data())
def test_integrals_add_up_over_split_windows(times, data):
    values = np.array(data.draw(st.lists(st.floats(-1e3, 1e3), min_size=times.size, max_size=times.size)))
    a, b = sorted(data.draw(st.lists(st.floats(-10, 110), min_size=2, max_size=2)))
    a, b = a + 0.0, b + 0.0  # -0.0 + 0.0 is 0.0: st.floats(0.0, -0.0) has no value to draw
    cut = data.draw(st.floats(a, b))
    whole, covered = window_integrals(times, values, [a], [b], max_gap=7.0)
    parts, parts_covered = window_integrals(times, values, [a, cut], [cut, b], max_gap=7.0)
    assert whole[0] == pytest.approx(parts.sum(), abs=1e-6 * (1 + np.abs(values).max() * 100))
    assert covered[0] == pytest.approx(parts_covered.sum(), abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(times_strategy, st.floats(-5, 5), st.floats(-100, 100), st.integers(2, 300))
def test_a_linear_signal_integral_does_not_change_with_resampling(times, slope, offset, resampled):
    a, b = float(times[0]), float(times[-1])
    exact = offset * (b - a) + slope * (b * b - a * a) / 2
    integral, _ = window_integrals(times, offset + slope * times, [a], [b])
    other = np.linspace(a, b, resampled)
    again, _ = window_integrals(other, offset + slope * other, [a], [b])
    assert integral[0] == pytest.approx(exact, abs=1e-7 * (1 + abs(exact)))
    assert again[0] == pytest.approx(exact, abs=1e-7 * (1 + abs(exact)))


@settings(max_examples=100, deadline=None)
@given(times_strategy, st.data(), st.sampled_from(["linear", "backward", "increase"]))
def test_any_chunking_gives_the_same_result(times, data, interpolation):
    values = np.array(data.draw(st.lists(st.floats(0, 1e3), min_size=times.size, max_size=times.size)))
    starts = np.array(data.draw(st.lists(st.floats(-5, 105), min_size=1, max_size=8)))
    ends = starts + np.array(data.draw(st.lists(st.floats(0, 50), min_size=starts.size, max_size=starts.size)))
    cuts = sorted(data.draw(st.lists(st.integers(0, times.size), max_size=5)))
    whole = window_integrals(times, values, starts, ends, 4.0, interpolation)
    edges, start_at, end_at = window_edges(starts, ends)
    running = RunningIntegral(edges, 4.0, interpolation)
    for chunk_times, chunk_values in zip(np.split(times, cuts), np.split(values, cuts), strict=True):
        running.add(chunk_times, chunk_values)
    integral, covered = running.finish()
    np.testing.assert_allclose(integral[end_at] - integral[start_at], whole[0], atol=1e-6)
    np.testing.assert_allclose(covered[end_at] - covered[start_at], whole[1], atol=1e-9)


def test_missing_values_are_skipped_and_backwards_samples_dropped():
    running = RunningIntegral(np.array([0.0, 10.0]), max_gap=5.0)
    running.add(np.array([0.0, 1.0, 2.0]), np.array([1.0, np.nan, 1.0]))  # the NaN is bridged (2 s <= 5 s)
    running.add(np.array([1.5, 3.0]), np.array([99.0, 1.0]))  # 1.5 is older than 2.0: dropped
    integral, covered = running.finish()
    assert running.dropped == 1
    assert integral[1] - integral[0] == pytest.approx(3.0)
    assert covered[1] - covered[0] == pytest.approx(3.0)


def _segment_by_segment(
    times: np.ndarray, values: np.ndarray, start: float, end: float, max_gap: float, interpolation: str
) -> tuple[float, float]:
    """The definition, one segment at a time: the part of each bridged segment inside the window."""
    total = covered = 0.0
    for t0, t1, v0, v1 in zip(times[:-1], times[1:], values[:-1], values[1:], strict=True):
        a, b = max(t0, start), min(t1, end)
        if t1 - t0 > max_gap or b <= a:
            continue
        covered += b - a
        # fractions of the segment first, never value x time: spans can be as small as 5e-324
        if interpolation == "linear":
            at_a, at_b = (v0 + (v1 - v0) * ((t - t0) / (t1 - t0)) for t in (a, b))
            total += (at_a + at_b) / 2 * (b - a)
        elif interpolation == "backward":
            total += v1 * (b - a)
        else:
            total += max(v1 - v0, 0.0) * ((b - a) / (t1 - t0))
    return total, covered


@settings(max_examples=300, deadline=None)
@given(times_strategy, st.data(), st.sampled_from(["linear", "backward", "increase"]))
def test_chunked_integrals_equal_the_definition(times, data, interpolation):
    values = np.array(data.draw(st.lists(st.floats(0, 1e3), min_size=times.size, max_size=times.size)))
    max_gap = data.draw(st.floats(0.5, 20))
    starts = np.array(data.draw(st.lists(st.floats(-5, 105), min_size=1, max_size=8)))
    ends = starts + np.array(data.draw(st.lists(st.floats(0, 50), min_size=starts.size, max_size=starts.size)))
    cuts = sorted(data.draw(st.lists(st.integers(0, times.size), max_size=5)))
    edges, start_at, end_at = window_edges(starts, ends)
    running = RunningIntegral(edges, max_gap, interpolation)
    for chunk_times, chunk_values in zip(np.split(times, cuts), np.split(values, cuts), strict=True):
        running.add(chunk_times, chunk_values)
    integral, covered = running.finish()
    for window, (start, end) in enumerate(zip(starts, ends, strict=True)):
        total, seconds = _segment_by_segment(times, values, start, end, max_gap, interpolation)
        assert integral[end_at[window]] - integral[start_at[window]] == pytest.approx(total, abs=1e-6, rel=1e-9)
        assert covered[end_at[window]] - covered[start_at[window]] == pytest.approx(seconds, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(times_strategy, st.data(), st.sampled_from(["linear", "backward", "increase"]))
def test_one_chunk_of_times_serves_edges_of_any_kind(times, data, interpolation):
    """Signals on the same polls but different edges (compared with the counter or not) share a chunk's
    SampleTimes: each gets exactly what it gets on its own."""
    values = np.array(data.draw(st.lists(st.floats(0, 1e3), min_size=times.size, max_size=times.size)))
    edge_sets = [np.unique(data.draw(st.lists(st.floats(-5, 110), max_size=12))) for _ in range(2)]
    cuts = sorted(data.draw(st.lists(st.integers(1, times.size - 1), max_size=4)))
    shared = [RunningIntegral(edges, 4.0, interpolation) for edges in edge_sets]
    alone = [RunningIntegral(edges, 4.0, interpolation) for edges in edge_sets]
    for chunk_times, chunk_values in zip(np.split(times, cuts), np.split(values, cuts), strict=True):
        if chunk_times.size == 0:
            continue
        sample_times = SampleTimes(shared[0].last_time, chunk_times, 4.0)
        for integral in shared:
            RunningIntegral.add_block([integral], TimeGrid(integral.points, sample_times), [chunk_values], Scratch())
        for integral in alone:
            integral.add(chunk_times, chunk_values)
    for mine, theirs in zip(shared, alone, strict=True):
        for got, expected in zip(mine.finish(), theirs.finish(), strict=True):
            np.testing.assert_array_equal(got, expected)
