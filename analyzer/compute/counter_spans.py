"""Where the energy counter can be compared with the power integral without interpolating it.

The sampler reads the energy counter only every couple of seconds (it costs milliseconds a
read). Its increase over a window that starts or ends between two readings must then be
interpolated, and a straight line across a power ramp (the GPU waking up at the first step)
is off by up to a second of that ramp: over a one-minute window, a percent or more, which would
blame the power samples for the interpolation. The cross-check therefore compares both over the
part of each window between the counter's first and last reading inside it, where the counter's
increase is read, not guessed.

This needs the reading times before the checked signals are integrated, so they are found by a
pass of their own (in one process, on a thread beside the integration of the other signals): only
the ``time_ns`` and ``energy_mj`` columns are decoded. Each partition gives, per window, its first
reading at or after the window's start and its last at or before its end; those join by a minimum
and a maximum, so the pass splits like the integration does and its result is as small as the windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from efftrace.analyzer.read.partitions import Partition, Reading
from efftrace.recorder.format.columns import to_numpy, values_and_validity

NONE_AFTER = np.iinfo(np.int64).max  # no reading at or after a window's start
NONE_BEFORE = np.iinfo(np.int64).min  # no reading at or before its end


@dataclass(frozen=True)
class CounterReadings:
    """One partition's counter readings (of any of its host's GPUs) nearest inside each window's ends.

    Exact for every window that holds a reading of the partition, the only ones narrowing uses; a
    window without one may keep NONE_AFTER / NONE_BEFORE although a reading lies beyond its ends.
    """

    host: str
    first_ns: np.ndarray  # per window: the earliest reading at or after its start (NONE_AFTER: none)
    last_ns: np.ndarray  # per window: the latest reading at or before its end (NONE_BEFORE: none)
    reading: Reading


def partition_counter_readings(partition: Partition, starts_ns: np.ndarray, ends_ns: np.ndarray) -> CounterReadings:
    """The readings of one partition of a GPU-sample file nearest inside each window ``[start, end]``."""
    reading = Reading()
    first = np.full(starts_ns.size, NONE_AFTER, dtype=np.int64)
    last = np.full(starts_ns.size, NONE_BEFORE, dtype=np.int64)
    for batch in partition.batches(["time_ns", "energy_mj"], reading):
        times = to_numpy(batch.column("time_ns"))
        _, valid = values_and_validity(batch.column("energy_mj"))
        if valid is not None:
            times = times[valid]
        times = times.astype(np.int64, copy=False)
        # a host's GPUs are read one after another, so the readings are usually in order already
        readings = times if times.size < 2 or bool(np.all(times[1:] >= times[:-1])) else np.sort(times)
        if readings.size:
            # only the windows around this batch's readings can take one of them (a batch spans minutes, the
            # windows the whole run): for the others, nearest stays in other batches, or they hold none
            near = np.flatnonzero((starts_ns <= readings[-1]) & (ends_ns >= readings[0]))
            after = np.searchsorted(readings, starts_ns[near], side="left")
            before = np.searchsorted(readings, ends_ns[near], side="right") - 1
            first[near] = np.minimum(
                first[near], np.where(after < readings.size, readings[np.minimum(after, readings.size - 1)], NONE_AFTER)
            )
            last[near] = np.maximum(last[near], np.where(before >= 0, readings[np.maximum(before, 0)], NONE_BEFORE))
    return CounterReadings(partition.host, first, last, reading)


@dataclass(frozen=True)
class CounterWindows:
    """For each host with two counter readings or more inside some window (sorted), every window narrowed
    to the readings inside it.

    ``starts_s`` and ``ends_s`` (seconds from the analysis origin) hold one block of as many spans
    as there are windows per host, in the order of ``hosts``. A window with fewer than two readings
    gets an empty span (start == end), which compares nothing.
    """

    hosts: list[str]
    starts_s: np.ndarray
    ends_s: np.ndarray

    def spans_of(self, host: str) -> tuple[np.ndarray, np.ndarray] | None:
        """The narrowed spans of ``host`` (None: it has no counter readings); only a host's own are
        integrated for its GPUs, so the work and the partial states do not grow with the hosts."""
        if host not in self.hosts:
            return None
        size = self.starts_s.size // len(self.hosts)
        taken = slice(self.hosts.index(host) * size, (self.hosts.index(host) + 1) * size)
        return self.starts_s[taken], self.ends_s[taken]


def counter_windows(
    found: list[CounterReadings], starts_ns: np.ndarray, ends_ns: np.ndarray, origin_ns: int
) -> CounterWindows:
    """The windows ``[starts_ns, ends_ns]`` narrowed to each host's readings, from every partition's."""
    starts_ns = np.asarray(starts_ns, dtype=np.int64)  # whole nanoseconds: float64 would round to 256 ns
    per_host: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for part in found:
        first, last = per_host.get(part.host, (part.first_ns, part.last_ns))
        per_host[part.host] = np.minimum(first, part.first_ns), np.maximum(last, part.last_ns)
    hosts = sorted(host for host, (first, last) in per_host.items() if np.any(first < last))
    begins, finishes = [], []
    for host in hosts:
        first, last = per_host[host]
        usable = first < last  # two readings or more inside the window (none found: MAX > MIN is False)
        begins.append(np.where(usable, first, starts_ns))
        finishes.append(np.where(usable, last, starts_ns))
    starts = np.concatenate(begins) if hosts else np.zeros(0, dtype=np.int64)
    ends = np.concatenate(finishes) if hosts else np.zeros(0, dtype=np.int64)
    return CounterWindows(hosts, (starts - origin_ns) / 1e9, (ends - origin_ns) / 1e9)
