"""GPU signals reduced to a fixed number of time buckets, for drawing (never for metrics).

A day at 10 Hz is 864,000 samples per GPU and a screen is 2,000 pixels wide. Each bucket keeps the
minimum, maximum and mean of its samples, so a chart of any length still shows every spike (the
min/max envelope) while its file stays small. Where a run is short enough, buckets are narrower
than the samples and the chart shows every sample as recorded. Metrics never come from here:
they are the exact integrals of :mod:`efftrace.analyzer.compute.integrate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from efftrace.analyzer.read.loader import Trace, joined_batches
from efftrace.recorder.format.columns import to_numpy
from efftrace.recorder.format.units import GIB


@dataclass(frozen=True)
class DisplaySignal:
    column: str
    label: str
    unit: str
    scale: float  # recorded unit -> display unit
    decimals: int  # what the display needs; keeps the embedded data small


GPU_SIGNALS = (
    DisplaySignal("power_instant_mw", "instant power", "W", 1e-3, 1),
    DisplaySignal("power_avg_mw", "averaged power (1 s)", "W", 1e-3, 1),
    DisplaySignal("mem_used_bytes", "memory used", "GiB", 1 / GIB, 3),
    DisplaySignal("util_gpu_pct", "NVML utilisation", "%", 1.0, 1),
    DisplaySignal("gpm_sm_activity_pct", "GPM SM activity", "%", 1.0, 1),
    DisplaySignal("gpm_tensor_activity_pct", "GPM tensor activity", "%", 1.0, 1),
)
BUFFER_SIGNAL = DisplaySignal("power_mw", "driver-buffer power (20 ms)", "W", 1e-3, 1)
CHUNK_ROWS = 200_000
FINEST_BUCKET_S = 0.02  # the driver buffer's spacing on Hopper: narrower buckets show nothing more


@dataclass
class Series:
    """One signal of one GPU: per-bucket min, max and mean (NaN where the bucket holds no sample)."""

    signal: DisplaySignal
    minimum: np.ndarray
    maximum: np.ndarray
    total: np.ndarray
    count: np.ndarray

    @classmethod
    def empty(cls, signal: DisplaySignal, buckets: int) -> Series:
        return cls(
            signal,
            np.full(buckets, np.inf),
            np.full(buckets, -np.inf),
            np.zeros(buckets),
            np.zeros(buckets, dtype=np.int64),
        )

    def add(self, bucket: np.ndarray, values: np.ndarray) -> None:
        """Fold samples in: one reduceat per statistic over runs of equal buckets (no ufunc.at)."""
        known = ~np.isnan(values)
        bucket, values = bucket[known], values[known] * self.signal.scale
        if bucket.size == 0:
            return
        if np.any(bucket[1:] < bucket[:-1]):  # rows out of time order: group them first
            order = np.argsort(bucket, kind="stable")
            bucket, values = bucket[order], values[order]
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        ids = bucket[starts]  # unique, so the fancy-indexed updates below do not collide
        self.minimum[ids] = np.minimum(self.minimum[ids], np.minimum.reduceat(values, starts))
        self.maximum[ids] = np.maximum(self.maximum[ids], np.maximum.reduceat(values, starts))
        self.total[ids] += np.add.reduceat(values, starts)
        self.count[ids] += np.diff(np.r_[starts, bucket.size])

    @property
    def samples(self) -> int:
        return int(self.count.sum())

    def mean(self) -> np.ndarray:
        return np.divide(self.total, self.count, out=np.full(self.total.size, np.nan), where=self.count > 0)

    def envelope(self) -> tuple[np.ndarray, np.ndarray]:
        empty = self.count == 0
        return np.where(empty, np.nan, self.minimum), np.where(empty, np.nan, self.maximum)


@dataclass
class Timeline:
    """Every GPU's signals on one bucket grid starting at ``origin_ns``."""

    origin_ns: int
    end_ns: int
    bucket_s: float
    buckets: int
    series: dict[str, dict[str, Series]] = field(default_factory=dict)  # GPU label -> column -> series

    def bucket_of(self, time_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bucket index of each time, and which times fall inside the grid."""
        position = np.floor((time_ns - self.origin_ns) / (self.bucket_s * 1e9))
        inside = (time_ns >= self.origin_ns) & (time_ns <= self.end_ns)
        return np.minimum(position, self.buckets - 1).astype(np.int64), inside

    def gpu(self, label: str, signals: tuple[DisplaySignal, ...]) -> dict[str, Series]:
        found = self.series.setdefault(label, {})
        for signal in signals:
            if signal.column not in found:
                found[signal.column] = Series.empty(signal, self.buckets)
        return found


def gpu_label(host: str, gpu: int, hosts: int) -> str:
    return f"GPU {gpu}" if hosts <= 1 else f"{host} GPU {gpu}"


def bucket_grid(start_ns: int, end_ns: int, max_buckets: int) -> tuple[float, int]:
    """Bucket width and count: as fine as the power buffer where the run is short, else max_buckets."""
    span_s = max((end_ns - start_ns) / 1e9, FINEST_BUCKET_S)
    width = max(span_s / max_buckets, FINEST_BUCKET_S)
    return width, max(1, math.ceil(span_s / width - 1e-9))  # not one more bucket for a rounding error


def build_timeline(trace: Trace, start_ns: int, end_ns: int, max_buckets: int) -> Timeline:
    """Stream the run's GPU and power files once into a :class:`Timeline` of ``start_ns..end_ns``."""
    width, count = bucket_grid(start_ns, end_ns, max_buckets)
    timeline = Timeline(start_ns, end_ns, width, count)
    hosts = len({stream.host for stream in trace.gpu_files} | {stream.host for stream in trace.power_files})
    columns = ["time_ns", "gpu", *(signal.column for signal in GPU_SIGNALS)]
    for host, chunk in joined_batches(trace.gpu_batches(columns), CHUNK_ROWS):
        _add_chunk(timeline, host, hosts, chunk, GPU_SIGNALS)
    for host, chunk in joined_batches(trace.power_batches(["time_ns", "gpu", BUFFER_SIGNAL.column]), CHUNK_ROWS):
        _add_chunk(timeline, host, hosts, chunk, (BUFFER_SIGNAL,))
    return timeline


def _add_chunk(timeline: Timeline, host: str, hosts: int, chunk: pa.Table, signals: tuple[DisplaySignal, ...]) -> None:
    if chunk.num_rows == 0:
        return
    bucket, inside = timeline.bucket_of(to_numpy(chunk.column("time_ns")).astype(np.int64))
    gpus = to_numpy(chunk.column("gpu"))
    values = {signal.column: to_numpy(chunk.column(signal.column)).astype(np.float64) for signal in signals}
    for gpu in np.unique(gpus[inside]):
        rows = inside & (gpus == gpu)
        series = timeline.gpu(gpu_label(host, int(gpu), hosts), signals)
        for signal in signals:
            series[signal.column].add(bucket[rows], values[signal.column][rows])
