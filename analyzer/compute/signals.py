"""The GPU signals the metrics need, integrated over every window in one pass over the samples.

Each signal is a column of a sample file with the way it behaves between samples (see
:mod:`efftrace.analyzer.compute.integrate`). The GPU-sample and power-buffer streams are read in chunks of a few
record batches, so memory is bounded by a few chunks whatever the length of the trace. Two
threads share the work: the reading thread decodes each chunk and splits it into every GPU's
readings (:func:`_prepared`: contiguous per GPU, times in seconds), while the calling thread
feeds the chunk before to one :class:`~efftrace.analyzer.compute.integrate.RunningIntegral` per (GPU, signal).
Signals of one GPU read on the same polls and sharing an interpolation are integrated together
as one block; the fields the sampler reads only every few polls form blocks of their own.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from efftrace.analyzer.compute.counter_spans import CounterWindows
from efftrace.analyzer.compute.integrate import Interpolation, RunningIntegral, Scratch, TimeGrid, window_edges
from efftrace.analyzer.read.loader import Trace, grouped_batches
from efftrace.analyzer.read.read_ahead import read_ahead
from efftrace.recorder.format.columns import to_numpy, values_and_validity

GpuKey = tuple[str, int]  # (host tag, NVML index)
CHUNK_ROWS = 1 << 19  # rows per numpy pass: large enough to amortise call overhead, small enough to stay bounded
MAX_CHUNKS_WAITING = 4  # chunks of the checked signals held while the counter's windows are being found


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


Column = np.ndarray | pa.ChunkedArray
Read = np.ndarray | slice | None  # which of one GPU's rows hold a reading (None: all)


class _GpuRows:
    """Where each GPU's rows are in one chunk, and how to take them out of any of its columns.

    The sampler writes one row per GPU per poll, always in the same order, so the common case is
    a *regular* chunk: every column seen as ``(polls, GPUs)``. Copied transposed, one pass leaves
    each GPU's rows contiguous, so the integration reads them sequentially instead of striding
    through the whole chunk once per GPU; a column still in the record batches it was read in is
    copied batch by batch, while each is in cache, never joined first. Views (strided, no copy)
    serve fields read only every few polls, of which the integration reads a few rows. Anything
    else (a GPU lost mid-run) falls back to a stable sort, and every way gathers.
    """

    def __init__(self, gpu: np.ndarray) -> None:
        count = len(set(gpu[: min(gpu.size, 64)].tolist()))
        first = gpu[:count]
        self.regular = bool(
            count
            and gpu.size % count == 0
            and np.array_equal(gpu.reshape(-1, count), np.broadcast_to(first, (gpu.size // count, count)))
        )
        if self.regular:
            self.gpus = [int(index) for index in first]
            self._count = count
            return
        by_gpu = np.argsort(gpu, kind="stable")
        sorted_gpu = gpu[by_gpu]
        self._rows = np.split(by_gpu, np.flatnonzero(sorted_gpu[1:] != sorted_gpu[:-1]) + 1) if gpu.size else []
        self.gpus = [int(gpu[rows[0]]) for rows in self._rows]

    def copies(self, column: Column, origin_ns: int | None = None) -> list[np.ndarray]:
        """Each GPU's rows, contiguous; with ``origin_ns`` (for a time column in ns), as seconds since it."""
        if not self.regular:
            values = _values(column)
            rows = [values[rows] for rows in self._rows]
            return rows if origin_ns is None else [(times - origin_ns) / 1e9 for times in rows]
        count = self._count
        whole_polls = isinstance(column, pa.ChunkedArray) and all(len(part) % count == 0 for part in column.chunks)
        parts = [_values(part) for part in column.chunks] if whole_polls else [_values(column)]
        out = np.empty(
            (count, sum(part.size for part in parts) // count), np.float64 if origin_ns is not None else parts[0].dtype
        )
        polls = 0
        for values in parts:  # each part holds whole polls
            block, taken = values.reshape(-1, count).T, slice(polls, polls + values.size // count)
            if origin_ns is None:
                out[:, taken] = block
            else:  # the difference in exact integers, then seconds
                np.subtract(block, origin_ns, out=out[:, taken])
            polls = taken.stop
        if origin_ns is not None:
            out /= 1e9
        return list(out)

    def views(self, values: np.ndarray) -> list[np.ndarray]:
        """Each GPU's rows as strided views (regular chunks) or gathered copies."""
        if not self.regular:
            return [values[rows] for rows in self._rows]
        return [values[place :: self._count] for place in range(self._count)]

    def reads(self, present: np.ndarray | None) -> list[Read]:
        """Which of each GPU's rows hold a reading, given the chunk's ``present`` rows (None: all).

        In a regular chunk whose GPUs were all read on the same polls (the sampler reads the
        sparse fields of every GPU on one poll) this is worked out once, for the first GPU.
        """
        if present is None:
            return [None] * len(self.gpus)
        if self.regular:
            per_poll = present.reshape(-1, self._count)
            if np.array_equal(per_poll, np.broadcast_to(per_poll[:, :1], per_poll.shape)):
                return [_rows_read(per_poll[:, 0])] * self._count
        return [_rows_read(mask) for mask in self.views(present)]


def _values(column: Column) -> np.ndarray:
    """A column's values as numpy (a column of several chunks is joined: one copy)."""
    return column if isinstance(column, np.ndarray) else values_and_validity(column)[0]


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
    signals: list[Signal], presence: dict[str, np.ndarray | None]
) -> list[tuple[np.ndarray | None, list[Signal]]]:
    """Signals read on the same polls (the same rows ``presence``, None for all) with the same
    interpolation and edges, together.

    The sampler reads some fields only every few polls (GPM, temperature, the energy counter), so
    a chunk's signals fall on a few sample grids; each grid is then built once per GPU, not once
    per signal.
    """
    groups: list[tuple[tuple[Interpolation, bool], np.ndarray | None, list[Signal]]] = []
    for signal in signals:
        present = presence[signal.name]
        kind = (signal.interpolation, signal.checked)  # checked signals have more edges: a grid of their own
        for group_kind, rows, together in groups:
            same_rows = rows is None if present is None else rows is not None and np.array_equal(rows, present)
            if group_kind == kind and same_rows:
                together.append(signal)
                break
        else:
            groups.append((kind, present, [signal]))
    return [(present, together) for _, present, together in groups]


def _rows_read(present: np.ndarray) -> Read:
    """Which of one GPU's rows hold a reading: None for all of them, a slice when they are evenly
    spaced (a field read every few polls: a view, no copy), else their indices."""
    where = np.flatnonzero(present)
    if where.size == present.size:
        return None
    if where.size >= 2:
        step = int(where[1] - where[0])
        if int(where[-1] - where[0]) == step * (where.size - 1) and bool(np.all(np.diff(where) == step)):
            return slice(int(where[0]), int(where[-1]) + 1, step)
    return where


@dataclass(frozen=True)
class _Readings:
    """Signals of one GPU read on the same polls of one chunk: their times (seconds) and values."""

    gpu: int
    signals: list[Signal]
    times: np.ndarray
    values: list[np.ndarray]


def _prepared(host: str, table: pa.Table, signals: list[Signal], origin_ns: int) -> tuple[str, list[_Readings], int]:
    """One chunk split into each GPU's readings, ready to integrate; also how many impossible
    readings it left out.

    This is all the work on a chunk that does not depend on what came before it, so it runs on
    the reading thread (numpy releases the GIL), beside the integration of the chunk before.
    """
    rows = _GpuRows(to_numpy(table.column("gpu")))
    seconds = rows.copies(table.column("time_ns"), origin_ns)
    columns: dict[str, Column] = {}
    presence: dict[str, np.ndarray | None] = {}
    invalid = 0
    for signal in signals:
        column = table.column(signal.column)
        if column.null_count == 0 and not pa.types.is_floating(column.type):
            columns[signal.name], presence[signal.name] = column, None  # a reading in every row, none impossible
        else:  # a null is a missing sample, never zero: its value is read only where valid
            values, valid = values_and_validity(column)
            columns[signal.name] = values
            presence[signal.name], left_out = _possible_readings(values, valid)
            invalid += left_out
    readings = []
    for present, together in _group_by_present_rows(signals, presence):
        # fields read on every poll are read whole: contiguous copies; the others sparsely: views
        split = rows.copies if present is None else rows.views
        by_gpu = [split(columns[signal.name]) for signal in together]
        for place, (gpu, read) in enumerate(zip(rows.gpus, rows.reads(present), strict=True)):
            times, values = seconds[place], [column[place] for column in by_gpu]
            if read is not None:
                times, values = times[read], [column[read] for column in values]
            if times.size:
                readings.append(_Readings(gpu, together, times, values))
    return host, readings, invalid


def integrate_signals(
    trace: Trace,
    starts_s: np.ndarray,
    ends_s: np.ndarray,
    origin_ns: int,
    max_gap_s: float,
    counter_max_gap_s: float,
    counter_windows: Future[CounterWindows] | None = None,
) -> SignalIntegrals:
    """Integrate every signal of every GPU over the windows ``[starts_s, ends_s]`` (seconds from ``origin_ns``).

    The signals ``checked`` against the energy counter are also integrated over ``counter_windows``
    (the spans between its readings, after the shared windows in their results). Those are found
    by a pass of their own that may still be running: the checked signals' readings then wait
    for it (a few chunks at most, so memory stays bounded) while the other eight signals go on.
    Each window's two edges cost work in every signal, so the eight are spared the cross-check's.
    """
    starts_s, ends_s = np.asarray(starts_s, float), np.asarray(ends_s, float)
    edges_of = {False: window_edges(starts_s, ends_s)}
    if counter_windows is None:
        edges_of[True] = edges_of[False]
    running: dict[GpuKey, dict[str, RunningIntegral]] = {}
    counts: dict[GpuKey, dict[str, int]] = {}
    scratch = Scratch()
    waiting: list[tuple[str, list[_Readings]]] = []  # checked readings, by chunk, until their windows are known

    def checked_edges_known(wait: bool) -> bool:
        if True not in edges_of and counter_windows is not None and (wait or counter_windows.done()):
            extra = counter_windows.result()
            starts, ends = np.concatenate((starts_s, extra.starts_s)), np.concatenate((ends_s, extra.ends_s))
            edges_of[True] = window_edges(starts, ends)
        return True in edges_of

    def integrator(key: GpuKey, signal: Signal) -> RunningIntegral:
        per_signal = running.setdefault(key, {})
        if signal.name not in per_signal:
            gap = counter_max_gap_s if signal.interpolation == "increase" else max_gap_s
            per_signal[signal.name] = RunningIntegral(edges_of[signal.checked][0], gap, signal.interpolation)
            counts.setdefault(key, {})[signal.name] = 0
        return per_signal[signal.name]

    def feed(host: str, readings: list[_Readings]) -> None:
        """Integrate one prepared chunk."""
        for block in readings:
            key = (host, block.gpu)
            integrals = [integrator(key, signal) for signal in block.signals]
            grid = TimeGrid(integrals[0].points, integrals[0].last_time, block.times, integrals[0].max_gap)
            on_grid, samples = [], []
            for signal, integral, values in zip(block.signals, integrals, block.values, strict=True):
                counts[key][signal.name] += block.times.size
                if integral.accepts(grid):
                    on_grid.append(integral)
                    samples.append(values)
                else:  # out of order, or not continuing where the block stopped: the general path
                    integral.add(block.times, values.astype(np.float64))
            if on_grid:
                RunningIntegral.add_block(on_grid, grid, samples, scratch)

    def release_held(wait: bool) -> None:
        """Integrate the held readings of the checked signals, in order, once their edges are known."""
        if waiting and checked_edges_known(wait):
            for held in waiting:
                feed(*held)
            waiting.clear()

    def feed_or_hold(host: str, readings: list[_Readings]) -> None:
        release_held(wait=len(waiting) >= MAX_CHUNKS_WAITING)
        if waiting or not checked_edges_known(wait=False):
            waiting.append((host, [block for block in readings if block.signals[0].checked]))
            readings = [block for block in readings if not block.signals[0].checked]
        feed(host, readings)

    polled = [signal for signal in SIGNALS if not signal.buffer]
    columns = ["time_ns", "gpu", *(signal.column for signal in polled)]
    buffered = [signal for signal in SIGNALS if signal.buffer]
    invalid = 0
    for batches, signals in ((trace.gpu_batches(columns), polled), (trace.power_batches(), buffered)):
        chunks = grouped_batches(batches, CHUNK_ROWS)
        for host, readings, left_out in read_ahead(_prepared(*chunk, signals, origin_ns) for chunk in chunks):
            feed_or_hold(host, readings)
            invalid += left_out
    release_held(wait=True)

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
