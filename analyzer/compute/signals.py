"""The GPU signals the metrics need, integrated over every window, partition by partition.

Each signal is a column of a sample file with the way it behaves between samples (see
:mod:`efftrace.analyzer.compute.integrate`). A partition (a byte range of one file,
:mod:`efftrace.analyzer.read.partitions`) is read in chunks of a few record batches, so memory is
bounded by a few chunks whatever its length, and integrated from its first sample into partial
states that join with its neighbours' (:mod:`efftrace.analyzer.compute.partial_integral`): one
implementation, whether the partitions run one after another here or as tasks on a cluster. In one
process two threads share a partition's work: the reading thread decodes each chunk and splits it
into every GPU's readings (:func:`_prepared`: contiguous per GPU, times in seconds), while the
calling thread feeds the chunk before to one
:class:`~efftrace.analyzer.compute.integrate.RunningIntegral` per (GPU, signal). Signals of one GPU
read on the same polls and sharing an interpolation are integrated together as one block; the
fields the sampler reads only every few polls form blocks of their own."""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pyarrow as pa

from efftrace.analyzer.compute.counter_spans import CounterWindows
from efftrace.analyzer.compute.engine import Engine
from efftrace.analyzer.compute.integrate import RunningIntegral, SampleTimes, Scratch, TimeGrid, window_edges
from efftrace.analyzer.compute.partial_integral import Interpolation, PartialIntegral, joined
from efftrace.analyzer.read.loader import grouped_batches
from efftrace.analyzer.read.partitions import Partition, Reading
from efftrace.analyzer.read.read_ahead import read_ahead
from efftrace.recorder.format.columns import to_numpy, values_and_validity

GpuKey = tuple[str, int]  # (host tag, NVML index)
Result = TypeVar("Result")
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
    bits: int = 0  # a bit-mask column: the signal is 1 while any of these bits is set, else 0


POWER_CAP_REASONS = 0x4 | 0x80
"""NVML's clock-event reasons for power: the software power cap (nvmlClocksEventReasonSwPowerCap) and
the hardware power brake (…HwPowerBrakeSlowdown, an external signal from the board or system)."""
THERMAL_REASONS = 0x8 | 0x20 | 0x40
"""The reasons for heat and hardware protection: hardware slowdown (…HwSlowdown: too hot, or drawing too
much), software and hardware thermal slowdown. Idle (0x1), an application-clock setting (0x2), sync
boost (0x10) and the display clock (0x100) lower the clocks without throttling the work, so no signal
counts them."""


SIGNALS = (
    Signal("memory", "mem_used_bytes", "linear", "NVML memory used (nvmlDeviceGetMemoryInfo)"),
    Signal("util_gpu", "util_gpu_pct", "linear", "NVML utilization.gpu"),
    Signal("util_memory", "util_mem_pct", "linear", "NVML utilization.memory"),
    Signal("gpm_sm", "gpm_sm_activity_pct", "backward", "GPM SM activity"),
    Signal("gpm_tensor", "gpm_tensor_activity_pct", "backward", "GPM tensor activity"),
    Signal("gpm_dram", "gpm_dram_bw_pct", "backward", "GPM DRAM bandwidth"),
    Signal("sm_clock", "sm_clock_mhz", "linear", "NVML SM clock"),
    Signal("temperature", "temperature_c", "linear", "NVML temperature"),
    # read on the temperature's polls and interpolated as it is, they share its sample grid
    Signal("power_capped", "clock_event_reasons", "linear", "NVML clock-event reasons", bits=POWER_CAP_REASONS),
    Signal("thermal_slowdown", "clock_event_reasons", "linear", "NVML clock-event reasons", bits=THERMAL_REASONS),
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
            if _same_on_every_gpu(per_poll):
                return [_rows_read(per_poll[:, 0])] * self._count
        return [_rows_read(mask) for mask in self.views(present)]


def _same_on_every_gpu(per_poll: np.ndarray) -> bool:
    """Whether each poll (row) of a ``polls × GPUs`` mask is all read or all not read.

    With up to 8 GPUs a poll's flags are one machine word, all False (0) or all True (1 in every
    byte): two comparisons per poll instead of one per GPU and poll."""
    count = per_poll.shape[1]
    if per_poll.dtype == np.bool_ and count in (1, 2, 4, 8) and per_poll.flags.c_contiguous:
        words = per_poll.view(np.dtype(f"u{count}"))
        every = words.dtype.type(int.from_bytes(b"\x01" * count, "little"))
        return bool(np.all((words == 0) | (words == every)))
    return bool(np.array_equal(per_poll, np.broadcast_to(per_poll[:, :1], per_poll.shape)))


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
            if group_kind != kind:  # the cheap test first: comparing masks is a pass over the chunk
                continue
            if rows is None if present is None else rows is not None and _same_rows(rows, present):
                together.append(signal)
                break
        else:
            groups.append((kind, present, [signal]))
    return [(present, together) for _, present, together in groups]


def _same_rows(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two row masks are equal: a mask decoded once for several signals is the same array, and
    others are compared eight rows to a word (half a million rows a chunk, a few masks each)."""
    if first is second:
        return True
    if first.shape != second.shape:
        return False
    if first.dtype == second.dtype == np.bool_ and first.size % 8 == 0:
        first, second = np.ascontiguousarray(first), np.ascontiguousarray(second)
        return bool(np.array_equal(first.view(np.uint64), second.view(np.uint64)))
    return bool(np.array_equal(first, second))


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


def _set(mask: np.ndarray, bits: int) -> np.ndarray:
    """True where any of ``bits`` is set in the mask: integrated (as 1 and 0), the time they were set.

    Left as bool: the integration reads any numeric type, converting as it multiplies, so a float
    copy here would be one more pass over the column for nothing."""
    return np.bitwise_and(mask, mask.dtype.type(bits)) != 0


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
    masks: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}  # a bit-mask column, decoded once for its signals
    for signal in signals:
        column = table.column(signal.column)
        if signal.bits:  # a bit mask: turned into its 0/1 signal once split, on the readings only
            if signal.column not in masks:
                values, valid = values_and_validity(column)
                masks[signal.column] = values, None if valid is None or valid.all() else valid
            columns[signal.name], presence[signal.name] = masks[signal.column]
        elif column.null_count == 0 and not pa.types.is_floating(column.type):
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
            values = [
                _set(column, signal.bits) if signal.bits else column
                for column, signal in zip(values, together, strict=True)
            ]
            if times.size:
                readings.append(_Readings(gpu, together, times, values))
    return host, readings, invalid


@dataclass(frozen=True)
class Edges:
    """The windows' edges, worked out once from the events and handed to every partition's task.

    ``checked`` adds, for the signals compared with the energy counter, the same windows narrowed to
    the counter's readings (:mod:`efftrace.analyzer.compute.counter_spans`). In one process those
    may still be being found when the task starts (a Future): the checked readings then wait for
    them, a few chunks at most, while the other signals go on.
    """

    starts_s: np.ndarray
    ends_s: np.ndarray
    max_gap_s: float
    counter_max_gap_s: float

    def of(self, checked: bool, counter: CounterWindows | None, host: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sorted edges of the shared windows (``checked``: and of ``host``'s narrowed ones), and
        where each window's start and end sit in them. A host without counter readings has empty
        narrowed spans (start == end), which integrate to nothing."""
        if not checked or counter is None:
            return window_edges(self.starts_s, self.ends_s)
        spans = counter.spans_of(host)
        narrowed_starts, narrowed_ends = spans if spans is not None else (self.starts_s, self.starts_s)
        starts = np.concatenate((self.starts_s, narrowed_starts))
        return window_edges(starts, np.concatenate((self.ends_s, narrowed_ends)))

    def gap(self, signal: Signal) -> float:
        return self.counter_max_gap_s if signal.interpolation == "increase" else self.max_gap_s


@dataclass(frozen=True)
class PartitionIntegrals:
    """One partition's result: each (GPU, signal)'s state, to be joined with its neighbours'."""

    states: dict[tuple[GpuKey, str], PartialIntegral]
    samples: dict[tuple[GpuKey, str], int]
    invalid: int
    reading: Reading


def integrate_partition(
    partition: Partition, edges: Edges, counter: CounterWindows | Future[CounterWindows] | None, origin_ns: int
) -> PartitionIntegrals:
    """Integrate every signal of every GPU of one partition over the windows, from its first sample.

    The same function is a task on a cluster (``counter`` then known) and a step of the analysis in
    one process, where the counter's windows may still be being found (a Future): the checked
    signals' readings then wait for them while the others are integrated.
    """
    known: dict[bool, np.ndarray] = {False: edges.of(False, None, partition.host)[0]}
    if counter is None or not isinstance(counter, Future):
        known[True] = edges.of(True, counter, partition.host)[0]
    running: dict[GpuKey, dict[str, RunningIntegral]] = {}
    counts: dict[tuple[GpuKey, str], int] = {}
    scratch = Scratch()
    waiting: list[tuple[str, list[_Readings]]] = []  # checked readings, by chunk, until their edges are known

    def checked_edges_known(wait: bool) -> bool:
        if True not in known and isinstance(counter, Future) and (wait or counter.done()):
            known[True] = edges.of(True, counter.result(), partition.host)[0]
        return True in known

    def integrator(key: GpuKey, signal: Signal) -> RunningIntegral:
        per_signal = running.setdefault(key, {})
        if signal.name not in per_signal:
            per_signal[signal.name] = RunningIntegral(known[signal.checked], edges.gap(signal), signal.interpolation)
            counts[key, signal.name] = 0
        return per_signal[signal.name]

    def feed(host: str, readings: list[_Readings]) -> None:
        """Integrate one prepared chunk.

        Readings of one GPU taken at the same polls share their times array (a field read on every
        poll, compared with the energy counter or not), so their spans and weights are worked out once.
        """
        shared: dict[tuple[int, float | None, float], SampleTimes] = {}
        for block in readings:
            key = (host, block.gpu)
            integrals = [integrator(key, signal) for signal in block.signals]
            first = integrals[0]
            # keyed by the array's identity: the SampleTimes holds the array, so the id is not reused meanwhile
            place = (id(block.times), first.last_time, first.max_gap)
            if place not in shared:
                shared[place] = SampleTimes(first.last_time, block.times, first.max_gap)
            grid = TimeGrid(first.points, shared[place])
            on_grid, samples = [], []
            for signal, integral, values in zip(block.signals, integrals, block.values, strict=True):
                counts[key, signal.name] += block.times.size
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

    signals = [signal for signal in SIGNALS if signal.buffer == (partition.kind == "power")]
    # each column once: two signals may read one (the clock-event reasons)
    columns = list(dict.fromkeys(["time_ns", "gpu", *(signal.column for signal in signals)]))
    reading = Reading()
    invalid = 0
    batches = ((partition.host, batch) for batch in partition.batches(columns, reading))
    prepared = (_prepared(*chunk, signals, origin_ns) for chunk in grouped_batches(batches, CHUNK_ROWS))
    for host, readings, left_out in read_ahead(prepared) if partition.decode_ahead else prepared:
        feed_or_hold(host, readings)
        invalid += left_out
    release_held(wait=True)
    states = {
        ((partition.host, gpu), name): integral.partial()
        for (_, gpu), per_signal in running.items()
        for name, integral in per_signal.items()
    }
    return PartitionIntegrals(states, counts, invalid, reading)


def integrate_signals(
    partitions: list[Partition],
    engine: Engine,
    edges: Edges,
    counter: CounterWindows | Future[CounterWindows] | None,
    origin_ns: int,
) -> tuple[SignalIntegrals, list[str]]:
    """Integrate every partition (as tasks of ``engine``) and join their states, file by file, in
    order: the run's integrals over the windows, and what reading the partitions found worth telling.

    A file's partitions after one whose damaged batch ended its reading are left out, as reading the
    file whole leaves out the rest of it. A file whose partitions do not join (samples that went
    back in time across a boundary) is integrated once more, in one piece, so that the samples left
    out are those the sequential pass leaves out.
    """
    results = list(zip(partitions, engine.map(integrate_partition, partitions, edges, counter, origin_ns), strict=True))
    known = counter.result() if isinstance(counter, Future) else counter
    by_file: dict[tuple[str, int], list[tuple[Partition, PartitionIntegrals]]] = {}
    for partition, result in used_partitions(results):
        by_file.setdefault(partition.file_key, []).append((partition, result))
    # each file's edges (its host's, for the checked signals), worked out once for its join and its windows
    points = {key: {checked: edges.of(checked, known, taken[0][0].host) for checked in (False, True)}
              for key, taken in by_file.items()}  # fmt: skip
    joined_files = {key: _joined_file(taken, points[key]) for key, taken in by_file.items()}
    again = [dataclasses.replace(taken[0][0], stop=None) for key, taken in by_file.items() if joined_files[key] is None]
    for partition, result in zip(again, engine.map(integrate_partition, again, edges, known, origin_ns), strict=True):
        by_file[partition.file_key] = [(partition, result)]
        joined_files[partition.file_key] = _joined_file(by_file[partition.file_key], points[partition.file_key])
    notes = [note for taken in by_file.values() for _, result in taken for note in result.reading.notes]
    return _signal_integrals(by_file, joined_files, points), notes


FileEdges = dict[bool, tuple[np.ndarray, np.ndarray, np.ndarray]]  # checked -> Edges.of(...) for one file


def _joined_file(
    taken: list[tuple[Partition, PartitionIntegrals]], points: FileEdges
) -> dict[tuple[GpuKey, str], PartialIntegral] | None:
    """One file's partitions joined, per (GPU, signal); None where some signal's do not join."""
    by_key: dict[tuple[GpuKey, str], list[PartialIntegral]] = {}
    for _, result in taken:
        for key, state in result.states.items():
            by_key.setdefault(key, []).append(state)
    whole = {key: joined(states, points[SIGNAL_BY_NAME[key[1]].checked][0]) for key, states in by_key.items()}
    return None if any(state is None for state in whole.values()) else whole  # type: ignore[return-value]


def _signal_integrals(
    by_file: dict[tuple[str, int], list[tuple[Partition, PartitionIntegrals]]],
    joined_files: dict[tuple[str, int], dict[tuple[GpuKey, str], PartialIntegral] | None],
    points: dict[tuple[str, int], FileEdges],
) -> SignalIntegrals:
    """The joined states evaluated over the windows."""
    integral: dict[GpuKey, dict[str, np.ndarray]] = {}
    covered: dict[GpuKey, dict[str, np.ndarray]] = {}
    counts: dict[GpuKey, dict[str, int]] = {}
    dropped = resets = invalid = 0
    ends = []
    for key, taken in by_file.items():
        invalid += sum(result.invalid for _, result in taken)
        for _, result in taken:
            for (gpu, name), count in result.samples.items():
                counts.setdefault(gpu, {})[name] = counts.get(gpu, {}).get(name, 0) + count
        for (gpu, name), state in (joined_files[key] or {}).items():
            _, start_at, end_at = points[key][SIGNAL_BY_NAME[name].checked]
            at_start, covered_start = state.at(start_at)
            at_end, covered_end = state.at(end_at)
            integral.setdefault(gpu, {})[name] = at_end - at_start
            covered.setdefault(gpu, {})[name] = covered_end - covered_start
            dropped += state.dropped
            resets += state.resets
            if state.has_samples:
                ends.append(state.last_time)
    return SignalIntegrals(integral, covered, counts, dropped, invalid, resets, max(ends) if ends else None)


def used_partitions(results: list[tuple[Partition, Result]]) -> list[tuple[Partition, Result]]:
    """The results a file's reading uses: in order, up to and with the first whose reading a damaged
    batch ended (``result.reading.damaged``)."""
    ended: set[tuple[str, int]] = set()
    used = []
    for partition, result in results:
        if partition.file_key in ended:
            continue
        used.append((partition, result))
        if result.reading.damaged:  # type: ignore[attr-defined]
            ended.add(partition.file_key)
    return used
