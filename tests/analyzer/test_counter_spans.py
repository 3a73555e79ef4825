"""The windows narrowed to the energy counter's readings, against the definition: for each window,
its first and last reading inside it where it holds two or more, else an empty span at its start;
whatever the batches and partitions the readings come in, in order or not."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from efftrace.analyzer.compute.counter_spans import counter_windows, partition_counter_readings
from efftrace.analyzer.read.partitions import Reading

ORIGIN_NS = 1_000_000_000_000


@dataclass
class _Batches:
    """Stands for a partition of a sample file: its host and the batches it reads."""

    host: str
    tables: list[pa.RecordBatch]

    def batches(self, columns: list[str], reading: Reading):
        return iter(self.tables)


def _batch(times_ns: np.ndarray, read: np.ndarray) -> pa.RecordBatch:
    energy = pa.array(np.arange(times_ns.size, dtype=np.uint64), mask=~read)
    return pa.record_batch({"time_ns": pa.array(times_ns, pa.int64()), "energy_mj": energy})


def _narrowed_by_definition(readings: np.ndarray, starts: np.ndarray, ends: np.ndarray):
    spans = []
    for start, end in zip(starts, ends, strict=True):
        inside = np.unique(readings[(readings >= start) & (readings <= end)])
        spans.append((inside[0], inside[-1]) if inside.size >= 2 else (start, start))
    return np.array(spans, dtype=np.int64).reshape(-1, 2)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_narrowed_windows_equal_the_definition(data):
    rows = data.draw(st.integers(1, 120))
    times = ORIGIN_NS + np.array(data.draw(st.lists(st.integers(0, 300), min_size=rows, max_size=rows)))
    if data.draw(st.booleans()):
        times = np.sort(times)  # as the sampler writes them; otherwise shuffled, with repeats
    read = np.array(data.draw(st.lists(st.booleans(), min_size=rows, max_size=rows)))
    windows = data.draw(st.integers(1, 10))
    starts = ORIGIN_NS + np.array(data.draw(st.lists(st.integers(-20, 320), min_size=windows, max_size=windows)))
    lengths = np.array(data.draw(st.lists(st.integers(0, 200), min_size=windows, max_size=windows)))
    ends = starts + lengths
    # windows that start or end exactly on a reading, where "at or after" and "at or before" decide
    on_reading = data.draw(st.lists(st.integers(0, rows - 1), min_size=2, max_size=2))
    starts[0], ends[-1] = min(times[on_reading]), max(times[on_reading])
    ends[0] = max(ends[0], starts[0])
    starts[-1] = min(starts[-1], ends[-1])
    cuts = sorted(data.draw(st.lists(st.integers(0, rows), max_size=4)))
    batches = [_batch(part, present) for part, present in zip(np.split(times, cuts), np.split(read, cuts), strict=True)]
    split = data.draw(st.integers(0, len(batches)))  # two partitions of one file
    found = [
        partition_counter_readings(_Batches("node", part), starts, ends)  # type: ignore[arg-type]
        for part in (batches[:split], batches[split:])
    ]
    narrowed = counter_windows(found, starts, ends, ORIGIN_NS)
    expected = _narrowed_by_definition(times[read], starts, ends)
    if np.all(expected[:, 0] == expected[:, 1]):  # no window holds two readings: nothing to compare
        assert narrowed.hosts == []
        return
    assert narrowed.hosts == ["node"]
    np.testing.assert_array_equal(narrowed.starts_s, (expected[:, 0] - ORIGIN_NS) / 1e9)
    np.testing.assert_array_equal(narrowed.ends_s, (expected[:, 1] - ORIGIN_NS) / 1e9)
