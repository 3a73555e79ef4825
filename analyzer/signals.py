"""The GPU signals the metrics need, integrated over every window in one pass over the samples.

Each signal is a column of a sample file with the way it behaves between samples (see
:mod:`analyzer.integrate`). The GPU-sample and power-buffer streams are read batch by batch; each
batch is split by GPU and fed to one :class:`~analyzer.integrate.RunningIntegral` per
(GPU, signal), so memory is bounded by a batch whatever the length of the trace. Signals of one
GPU that were read on the same polls and share an interpolation are integrated together as one
block; the fields the sampler reads only every few polls form blocks of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from analyzer.integrate import Interpolation, RunningIntegral, Scratch, TimeGrid, window_edges
from analyzer.loader import Trace, joined_batches
from analyzer.read_ahead import read_ahead
from recorder.arrow_columns import to_numpy, values_and_validity

GpuKey = tuple[str, int]  # (host tag, NVML index)
CHUNK_ROWS = 1 << 19  # rows per numpy pass: large enough to amortise call overhead, small enough to stay bounded


@dataclass(frozen=True)
class Signal:
    name: str
    column: str
    interpolation: Interpolation
    source: str  # what the figure is read from, as users see it
    buffer: bool = False  # from the driver power buffer file rather than the GPU poll
    checked: bool = False  # compared with the energy counter, so also integrated over the spans between its readings


SIGNALS = (
    Signal("memory", "mem_used_bytes", "linear", "NVML memory used (nvmlDeviceGetMemoryInfo)"),
    Signal("util_gpu", "util_gpu_pct", "linear", "NVML utilization.gpu"),
    Signal("util_memory", "util_mem_pct", "linear", "NVML utilization.memory"),
    Signal("gpm_sm", "gpm_sm_activity_pct", "backward", "GPM SM activity"),
    Signal("gpm_tensor", "gpm_tensor_activity_pct", "backward", "GPM tensor activity"),
    Signal("gpm_dram", "gpm_dram_bw_pct", "backward", "GPM DRAM bandwidth"),
    Signal("sm_clock", "sm_clock_mhz", "linear", "NVML SM clock"),
    Signal("temperature", "temperature_c", "linear", "NVML temperature"),
    Signal("power_instant", "power_instant_mw", "linear", "NVML instant power (field POWER_INSTANT)", checked=True),
    Signal(
        "power_average", "power_avg_mw", "linear", "NVML 1-s averaged power (nvmlDeviceGetPowerUsage)", checked=True
    ),
    Signal(
        "energy_counter",
        "energy_mj",
        "increase",
        "NVML energy counter (nvmlDeviceGetTotalEnergyConsumption)",
        checked=True,
    ),
    Signal(
        "power_buffer",
        "power_mw",
        "linear",
        "NVML driver power buffer (nvmlDeviceGetSamples)",
        buffer=True,
        checked=True,
    ),
)
SIGNAL_BY_NAME = {signal.name: signal for signal in SIGNALS}


@dataclass(frozen=True)
class SignalIntegrals:
    """For each (GPU, signal): the integral over every window and the seconds of it covered by samples.

    Integrals are in the column's own unit times seconds (mW·s, bytes·s, %·s; for the energy
    counter, its increase in mJ). The arrays follow the order the windows were given; signals
    not ``checked`` against the counter have only the windows every signal is integrated over.
    """

    integral: dict[GpuKey, dict[str, np.ndarray]]
    covered: dict[GpuKey, dict[str, np.ndarray]]
    samples: dict[GpuKey, dict[str, int]]
    dropped: int  # samples that went back in time and were left out
    invalid: int  # readings that were NaN or negative (no GPU field can be), read as missing
    counter_resets: int  # times a cumulative counter went back (a driver reload), which count for nothing
    last_sample_s: float | None  # the latest sample of any signal, seconds from the origin

    @property
    def gpus(self) -> list[GpuKey]:
        return sorted(self.integral)

    def has(self, gpu: GpuKey, signal: str) -> bool:
        return self.samples.get(gpu, {}).get(signal, 0) > 0


def _split_by_gpu(gpu: np.ndarray) -> Iterator[tuple[int, np.ndarray | slice]]:
    """Rows of each GPU in one chunk, keeping time order within a GPU.

    The sampler writes one row per GPU per poll, always in the same order, so the common case is
    a strided slice (no copy); anything else (a GPU lost mid-run) falls back to a stable sort.
    """
    if gpu.size == 0:
        return
    order = np.unique(gpu[: min(gpu.size, 64)])
    count = order.size
    if gpu.size % count == 0:
        first = gpu[:count]
        if np.array_equal(gpu.reshape(-1, count), np.broadcast_to(first, (gpu.size // count, count))):
            for offset in range(count):
                yield int(first[offset]), slice(offset, None, count)
            return
    by_gpu = np.argsort(gpu, kind="stable")
    sorted_gpu = gpu[by_gpu]
    bounds = np.flatnonzero(sorted_gpu[1:] != sorted_gpu[:-1]) + 1
    for rows in np.split(by_gpu, bounds):
        yield int(gpu[rows[0]]), rows


def _possible_readings(values: np.ndarray, valid: np.ndarray | None) -> tuple[np.ndarray | None, int]:
    """A whole column's rows that hold a reading (None when all do), and how many non-null readings
    were left out as impossible: NaN or negative (only float columns can hold either)."""
    invalid = 0
    present = valid
    if values.dtype.kind == "f":
        possible = values >= 0  # False for NaN too
        if not possible.all():
            invalid = int(np.count_nonzero(~possible if valid is None else valid & ~possible))
            present = possible if valid is None else valid & possible
    if present is not None and present.all():
        return None, invalid
    return present, invalid


def _group_by_present_rows(
    signals: list[Signal], columns: dict[str, tuple[np.ndarray, np.ndarray | None]]
) -> tuple[list[tuple[np.ndarray | None, list[Signal]]], int]:
    """Signals read on the same polls (the same rows present) with the same interpolation and
    edges, together.

    The sampler reads some fields only every few polls (GPM, temperature, the energy counter), so
    a chunk's signals fall on a few sample grids; each grid is then built once per GPU, not once
    per signal. Also returns how many impossible readings were left out.
    """
    groups: list[tuple[tuple[Interpolation, bool], np.ndarray | None, list[Signal]]] = []
    invalid = 0
    for signal in signals:
        present, left_out = _possible_readings(*columns[signal.name])
        invalid += left_out
        kind = (signal.interpolation, signal.checked)  # checked signals have more edges: a grid of their own
        for group_kind, rows, together in groups:
            same_rows = rows is None if present is None else rows is not None and np.array_equal(rows, present)
            if group_kind == kind and same_rows:
                together.append(signal)
                break
        else:
            groups.append((kind, present, [signal]))
    return [(present, together) for _, present, together in groups], invalid


def _rows_read(present: np.ndarray | None, rows: np.ndarray | slice) -> np.ndarray | slice | None:
    """Which of one GPU's ``rows`` hold a reading: None for all of them, a slice when they are
    evenly spaced (a field read every few polls: a view of the column, no copy), else their indices."""
    if present is None:
        return None
    mine = present[rows]
    where = np.flatnonzero(mine)
    if where.size == mine.size:
        return None
    if where.size >= 2:
        step = int(where[1] - where[0])
        if int(where[-1] - where[0]) == step * (where.size - 1) and bool(np.all(np.diff(where) == step)):
            return slice(int(where[0]), int(where[-1]) + 1, step)
    return where


def integrate_signals(
    trace: Trace,
    starts_s: np.ndarray,
    ends_s: np.ndarray,
    origin_ns: int,
    max_gap_s: float,
    counter_max_gap_s: float,
    shared_windows: int | None = None,
) -> SignalIntegrals:
    """Integrate every signal of every GPU over the windows ``[starts_s, ends_s]`` (seconds from ``origin_ns``).

    Only the first ``shared_windows`` windows (all by default) are integrated for every signal;
    the rest, the spans between the energy counter's readings, only for the signals ``checked``
    against it. Each window's two edges cost work in every signal, so the other eight signals
    are spared the cross-check's edges.
    """
    starts_s, ends_s = np.asarray(starts_s, float), np.asarray(ends_s, float)
    shared = starts_s.size if shared_windows is None else shared_windows
    edges_of = {
        True: window_edges(starts_s, ends_s),
        False: window_edges(starts_s[:shared], ends_s[:shared]),
    }
    running: dict[GpuKey, dict[str, RunningIntegral]] = {}
    counts: dict[GpuKey, dict[str, int]] = {}
    scratch = Scratch()

    def integrator(key: GpuKey, signal: Signal) -> RunningIntegral:
        per_signal = running.setdefault(key, {})
        if signal.name not in per_signal:
            gap = counter_max_gap_s if signal.interpolation == "increase" else max_gap_s
            per_signal[signal.name] = RunningIntegral(edges_of[signal.checked][0], gap, signal.interpolation)
            counts.setdefault(key, {})[signal.name] = 0
        return per_signal[signal.name]

    def feed(table: pa.Table, host: str, signals: list[Signal]) -> int:
        """Integrate one chunk; returns how many impossible readings it left out."""
        time_ns = to_numpy(table.column("time_ns"))
        gpu = to_numpy(table.column("gpu"))
        # a null is a missing sample, never zero: its value is read only where valid
        columns = {signal.name: values_and_validity(table.column(signal.column)) for signal in signals}
        grouped, invalid = _group_by_present_rows(signals, columns)
        for index, rows in _split_by_gpu(gpu):
            key = (host, index)
            gpu_times = (time_ns[rows] - origin_ns) / 1e9
            for present, together in grouped:
                read = _rows_read(present, rows)
                times = gpu_times if read is None else gpu_times[read]
                if times.size == 0:
                    continue
                integrals = [integrator(key, signal) for signal in together]
                grid = TimeGrid(integrals[0].points, integrals[0].last_time, times, integrals[0].max_gap)
                on_grid, samples = [], []
                for signal, integral in zip(together, integrals, strict=True):
                    values = columns[signal.name][0][rows]
                    values = values if read is None else values[read]
                    counts[key][signal.name] += times.size
                    if integral.accepts(grid):
                        on_grid.append(integral)
                        samples.append(values)
                    else:  # out of order, or not continuing where the block stopped: the general path
                        integral.add(times, values.astype(np.float64))
                if on_grid:
                    RunningIntegral.add_block(on_grid, grid, samples, scratch)
        return invalid

    polled = [signal for signal in SIGNALS if not signal.buffer]
    columns = ["time_ns", "gpu", *(signal.column for signal in polled)]
    invalid = 0
    for host, table in read_ahead(joined_batches(trace.gpu_batches(columns), CHUNK_ROWS)):
        invalid += feed(table, host, polled)
    buffered = [signal for signal in SIGNALS if signal.buffer]
    for host, table in read_ahead(joined_batches(trace.power_batches(), CHUNK_ROWS)):
        invalid += feed(table, host, buffered)

    integral: dict[GpuKey, dict[str, np.ndarray]] = {}
    covered: dict[GpuKey, dict[str, np.ndarray]] = {}
    dropped = resets = 0
    ends = [r.last_time for per in running.values() for r in per.values() if r.last_time is not None]
    for key, per_signal in running.items():
        integral[key], covered[key] = {}, {}
        for name, running_integral in per_signal.items():
            _, start_at, end_at = edges_of[SIGNAL_BY_NAME[name].checked]
            at, covered_at = running_integral.finish()
            integral[key][name] = at[end_at] - at[start_at]
            covered[key][name] = covered_at[end_at] - covered_at[start_at]
            dropped += running_integral.dropped
            resets += running_integral.resets
    return SignalIntegrals(integral, covered, counts, dropped, invalid, resets, max(ends) if ends else None)
