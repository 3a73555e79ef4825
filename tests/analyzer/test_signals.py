"""The one pass over a trace that integrates every signal of every GPU equals integrating each
signal alone with the plain one-call form, whatever path the pass takes: fields read every poll,
every few polls (strided views), at irregular polls (index lists), impossible readings, gaps,
chunks that cut between polls, and windows that only the signals checked against the counter get,
whether those are known from the start or found while the pass runs.
"""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pytest

from efftrace.analyzer.compute import signals
from efftrace.analyzer.compute.counter_spans import CounterWindows
from efftrace.analyzer.compute.engine import LocalEngine
from efftrace.analyzer.compute.integrate import window_integrals
from efftrace.analyzer.compute.signals import SIGNAL_BY_NAME, Edges, integrate_signals
from efftrace.analyzer.read.loader import Trace
from efftrace.analyzer.read.partitions import plan_partitions
from efftrace.recorder.format import schema
from helpers.trace_builder import T0_NS, TraceBuilder, ns

POLLS = 3000
MAX_GAP_S, COUNTER_GAP_S = 1.0, 10.0


def _gpu_columns(rng: np.random.Generator, polls: np.ndarray) -> dict[str, np.ndarray]:
    """One GPU's columns as the sampler leaves them: NaN where a field was not read on a poll."""
    every_2nd, every_5th = polls % 2 == 0, polls % 5 == 0
    energy_read = np.zeros(polls.size, dtype=bool)
    energy_read[np.cumsum(rng.integers(17, 23, polls.size // 17))[: polls.size // 23]] = True  # irregular
    energy = np.cumsum(rng.uniform(0, 40_000, polls.size))
    energy[polls.size // 2 :] -= energy[polls.size // 2] - 5_000  # a driver reload restarts the counter
    # the builder writes a float NaN as a value, not a null: the analyzer leaves it out as impossible
    gpm_sm = np.where(every_2nd, rng.uniform(0, 100, polls.size), np.nan)  # evenly spaced: a strided view
    gpm_tensor = np.where(every_2nd, rng.uniform(0, 100, polls.size), np.nan)
    gpm_tensor[[10, 400]] = -3.0  # read on a GPM poll but impossible: uneven rows, an index list
    return {
        "power_instant_mw": rng.integers(50_000, 700_000, polls.size).astype(np.float64),
        "power_avg_mw": rng.integers(50_000, 700_000, polls.size).astype(np.float64),
        "mem_used_bytes": rng.integers(1 << 30, 60 << 30, polls.size).astype(np.float64),
        "util_gpu_pct": rng.integers(0, 101, polls.size).astype(np.float64),
        "gpm_sm_activity_pct": gpm_sm,
        "gpm_tensor_activity_pct": gpm_tensor,
        "temperature_c": np.where(every_5th, rng.integers(30, 80, polls.size), np.nan),
        "energy_mj": np.where(energy_read, np.round(energy), np.nan),
    }


class _FoundLater(Future):
    """The counter's windows as a slow counter pass gives them: not done until asked ``asks`` times."""

    def __init__(self, windows: CounterWindows, asks: int) -> None:
        super().__init__()
        self._windows, self._asks = windows, asks

    def done(self) -> bool:
        self._asks -= 1
        if self._asks < 0 and not super().done():
            self.set_result(self._windows)
        return super().done()

    def result(self, timeout: float | None = None) -> CounterWindows:
        if not super().done():  # waited for: the pass ends
            self.set_result(self._windows)
        return super().result(timeout)


@pytest.mark.parametrize(
    ("batch_rows", "chunk_rows", "asks", "partition_bytes"),
    [
        (997, 2000, 0, None),  # many chunks; the counter's windows known from the start
        (999, 2000, 0, None),  # batches of whole polls (3 GPUs): columns split batch by batch, never joined
        (997, 2000, 2, None),  # known after two chunks: the checked signals' first chunks waited
        (997, 2000, 10**6, None),  # never done by itself: the pass waits once four chunks are held
        (50_000, signals.CHUNK_ROWS, 1, None),  # one chunk
        (997, 2000, 0, 30_000),  # the file in partitions of a few batches each, joined
        (997, 2000, 2, 1),  # a partition per batch, the checked signals waiting in each
    ],
)
def test_one_pass_equals_each_signal_integrated_alone(
    tmp_path, monkeypatch, batch_rows, chunk_rows, asks, partition_bytes
):
    monkeypatch.setattr(signals, "CHUNK_ROWS", chunk_rows)
    rng = np.random.default_rng(7)
    builder = TraceBuilder(tmp_path / "run", batch_rows=batch_rows)
    polls = np.arange(POLLS)
    expected: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}
    for gpu in range(3):
        builder.gpu(gpu)
        seconds = polls * 0.1 + gpu * 0.003 + rng.uniform(0, 0.002, POLLS)  # each GPU read a little later
        seconds[POLLS // 3 :] += 4.0  # the sampler stalled: a gap no signal bridges
        columns = _gpu_columns(rng, polls)
        builder.gpu_samples(gpu, seconds, **columns)
        for name, values in columns.items():
            expected[gpu, name] = (seconds, values)
    buffer_seconds = np.arange(0, POLLS * 0.1, 0.02)
    buffer_power = rng.integers(50_000, 700_000, buffer_seconds.size).astype(np.float64)
    builder.power_samples(0, buffer_seconds, buffer_power)
    run = builder.write(end_s=POLLS * 0.1 + 5)

    starts = np.sort(rng.uniform(-5, POLLS * 0.1 + 5, 40))
    ends = starts + rng.uniform(0, 60, starts.size)
    shared = 25  # the last 15 windows are for the signals checked against the counter only
    narrowed = _FoundLater(CounterWindows(["node"], starts[shared:], ends[shared:]), asks)
    partitions = plan_partitions(Trace(run), partition_bytes)
    assert (len(partitions) > 2) == (partition_bytes is not None)
    edges = Edges(starts[:shared], ends[:shared], MAX_GAP_S, COUNTER_GAP_S)
    integrals, _ = integrate_signals(partitions, LocalEngine(), edges, narrowed, T0_NS)

    floats = [values for (_, column), (_, values) in expected.items() if column.startswith("gpm_")]
    assert integrals.invalid == sum(int(np.count_nonzero(~(values >= 0))) for values in floats)
    for (gpu, column), (seconds, values) in expected.items():
        signal = next(s for s in SIGNAL_BY_NAME.values() if s.column == column)
        read = values >= 0  # not NaN, not negative
        stored = (
            np.where(read, values, 0)
            .astype(schema.GPU_SAMPLES_SCHEMA.field(column).type.to_pandas_dtype())
            .astype(np.float64)
        )
        times = (ns(seconds[read]) - T0_NS) / 1e9
        gap = COUNTER_GAP_S if signal.interpolation == "increase" else MAX_GAP_S
        count = starts.size if signal.checked else shared
        want, want_covered = window_integrals(
            times, stored[read], starts[:count], ends[:count], gap, signal.interpolation
        )
        got = integrals.integral[("node", gpu)][signal.name]
        assert got.size == count, signal.name
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-6, err_msg=signal.name)
        np.testing.assert_allclose(
            integrals.covered[("node", gpu)][signal.name], want_covered, atol=1e-9, err_msg=signal.name
        )
        assert integrals.samples[("node", gpu)][signal.name] == np.count_nonzero(read)
    assert integrals.counter_resets == 3
    buffer, _ = window_integrals((ns(buffer_seconds) - T0_NS) / 1e9, buffer_power, starts, ends, MAX_GAP_S)
    np.testing.assert_allclose(integrals.integral[("node", 0)]["power_buffer"], buffer, rtol=1e-9)


@pytest.mark.parametrize("gpus", [1, 2, 3, 4, 5, 8])
def test_gpus_read_on_the_same_polls_are_recognised_for_any_count(gpus):
    rng = np.random.default_rng(gpus)
    for case in range(200):
        polls = np.repeat((rng.random(64) < 0.5)[:, None], gpus, axis=1)
        if case % 2:  # one GPU read on a poll the others were not, or not read where they were
            poll, gpu = rng.integers(0, 64), rng.integers(0, gpus)
            polls[poll, gpu] = not polls[poll, gpu]
        expected = all(len(set(row)) == 1 for row in polls.tolist())
        assert signals._same_on_every_gpu(polls) is expected
