"""The GPU signals the metrics need, integrated over every window in one pass over the samples.

Each signal is a column of a sample file with the way it behaves between samples (see
:mod:`analyzer.integrate`). The GPU-sample and power-buffer streams are read batch by batch; each
batch is split by GPU and fed to one :class:`~analyzer.integrate.RunningIntegral` per
(GPU, signal), so memory is bounded by a batch whatever the length of the trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from analyzer.integrate import Interpolation, RunningIntegral, window_edges
from analyzer.loader import Trace

GpuKey = tuple[str, int]  # (host tag, NVML index)


@dataclass(frozen=True)
class Signal:
    name: str
    column: str
    interpolation: Interpolation
    source: str  # what the figure is read from, as users see it
    buffer: bool = False  # from the driver power buffer file rather than the GPU poll


SIGNALS = (
    Signal("memory", "mem_used_bytes", "linear", "NVML memory used (nvmlDeviceGetMemoryInfo)"),
    Signal("util_gpu", "util_gpu_pct", "linear", "NVML utilization.gpu"),
    Signal("util_memory", "util_mem_pct", "linear", "NVML utilization.memory"),
    Signal("gpm_sm", "gpm_sm_activity_pct", "backward", "GPM SM activity"),
    Signal("gpm_tensor", "gpm_tensor_activity_pct", "backward", "GPM tensor activity"),
    Signal("gpm_dram", "gpm_dram_bw_pct", "backward", "GPM DRAM bandwidth"),
    Signal("sm_clock", "sm_clock_mhz", "linear", "NVML SM clock"),
    Signal("temperature", "temperature_c", "linear", "NVML temperature"),
    Signal("power_instant", "power_instant_mw", "linear", "NVML instant power (field POWER_INSTANT)"),
    Signal("power_average", "power_avg_mw", "linear", "NVML 1-s averaged power (nvmlDeviceGetPowerUsage)"),
    Signal("energy_counter", "energy_mj", "increase", "NVML energy counter (nvmlDeviceGetTotalEnergyConsumption)"),
    Signal("power_buffer", "power_mw", "linear", "NVML driver power buffer (nvmlDeviceGetSamples)", buffer=True),
)
SIGNAL_BY_NAME = {signal.name: signal for signal in SIGNALS}


@dataclass(frozen=True)
class SignalIntegrals:
    """For each (GPU, signal): the integral over every window and the seconds of it covered by samples.

    Integrals are in the column's own unit times seconds (mW·s, bytes·s, %·s; for the energy
    counter, its increase in mJ). ``windows`` of the arrays follow the order the windows were given.
    """

    integral: dict[GpuKey, dict[str, np.ndarray]]
    covered: dict[GpuKey, dict[str, np.ndarray]]
    samples: dict[GpuKey, dict[str, int]]
    dropped: int  # samples that went back in time and were left out
    last_sample_s: float | None  # the latest sample of any signal, seconds from the origin

    @property
    def gpus(self) -> list[GpuKey]:
        return sorted(self.integral)

    def has(self, gpu: GpuKey, signal: str) -> bool:
        return self.samples.get(gpu, {}).get(signal, 0) > 0


def _split_by_gpu(gpu: np.ndarray) -> Iterator[tuple[int, np.ndarray | slice]]:
    """Rows of each GPU in one batch, keeping time order within a GPU."""
    if gpu.size == 0:
        return
    if gpu[0] == gpu[-1] and np.all(gpu == gpu[0]):
        yield int(gpu[0]), slice(None)
        return
    order = np.argsort(gpu, kind="stable")
    sorted_gpu = gpu[order]
    bounds = np.flatnonzero(sorted_gpu[1:] != sorted_gpu[:-1]) + 1
    for rows in np.split(order, bounds):
        yield int(gpu[rows[0]]), rows


def integrate_signals(
    trace: Trace,
    starts_s: np.ndarray,
    ends_s: np.ndarray,
    origin_ns: int,
    max_gap_s: float,
    counter_max_gap_s: float,
) -> SignalIntegrals:
    """Integrate every signal of every GPU over the windows ``[starts_s, ends_s]`` (seconds from ``origin_ns``)."""
    edges, start_at, end_at = window_edges(np.asarray(starts_s, float), np.asarray(ends_s, float))
    running: dict[GpuKey, dict[str, RunningIntegral]] = {}
    counts: dict[GpuKey, dict[str, int]] = {}

    def feed(host: str, batch: pa.RecordBatch, signals: list[Signal]) -> None:
        times = (batch.column("time_ns").to_numpy() - origin_ns) / 1e9
        gpu = batch.column("gpu").to_numpy()
        values = {signal.name: _as_float(batch.column(signal.column)) for signal in signals}
        for index, rows in _split_by_gpu(gpu):
            per_signal = running.setdefault((host, index), {})
            per_count = counts.setdefault((host, index), {})
            gpu_times = times[rows]
            for signal in signals:
                integral = per_signal.get(signal.name)
                if integral is None:
                    gap = counter_max_gap_s if signal.interpolation == "increase" else max_gap_s
                    integral = per_signal[signal.name] = RunningIntegral(edges, gap, signal.interpolation)
                    per_count[signal.name] = 0
                column = values[signal.name][rows]
                integral.add(gpu_times, column)
                per_count[signal.name] += int(np.count_nonzero(~np.isnan(column)))

    polled = [signal for signal in SIGNALS if not signal.buffer]
    for host, batch in trace.gpu_batches(["time_ns", "gpu", *(signal.column for signal in polled)]):
        feed(host, batch, polled)
    buffered = [signal for signal in SIGNALS if signal.buffer]
    for host, batch in trace.power_batches():
        feed(host, batch, buffered)

    integral: dict[GpuKey, dict[str, np.ndarray]] = {}
    covered: dict[GpuKey, dict[str, np.ndarray]] = {}
    dropped = 0
    last_times = [r.last_time for per in running.values() for r in per.values() if r.last_time is not None]
    for key, per_signal in running.items():
        integral[key], covered[key] = {}, {}
        for name, running_integral in per_signal.items():
            at, covered_at = running_integral.finish()
            integral[key][name] = at[end_at] - at[start_at]
            covered[key][name] = covered_at[end_at] - covered_at[start_at]
            dropped += running_integral.dropped
    return SignalIntegrals(integral, covered, counts, dropped, max(last_times) if last_times else None)


def _as_float(column: pa.Array) -> np.ndarray:
    """A numeric column as float64 with NaN for nulls (a null is a missing sample, never zero)."""
    if column.null_count == 0:
        return column.to_numpy().astype(np.float64, copy=False)
    return column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
