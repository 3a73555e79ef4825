"""Where the energy counter can be compared with the power integral without interpolating it.

The sampler reads the energy counter only every couple of seconds (it costs milliseconds a
read). Its increase over a window that starts or ends between two readings must then be
interpolated, and a straight line across a power ramp (the GPU waking up at the first step)
is off by up to a second of that ramp: over a one-minute window, a percent or more, which would
blame the power samples for the interpolation. The cross-check therefore compares both over the
part of each window between the counter's first and last reading inside it, where the counter's
increase is read, not guessed.

This needs the reading times before the checked signals are integrated, so they are read by a
pass of their own, on a thread beside the reading of the events and the integration of the other
signals: only the ``time_ns`` and ``energy_mj`` columns are decoded, and the readings (one per GPU
every couple of seconds) are few.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from efftrace.analyzer.read.loader import Trace
from efftrace.recorder.format.columns import to_numpy, values_and_validity


def counter_reading_times(trace: Trace) -> dict[str, np.ndarray]:
    """Per host, the sorted times (ns) of the rows that carry an energy-counter reading."""
    found: dict[str, list[np.ndarray]] = {}
    for host, batch in trace.gpu_batches(["time_ns", "energy_mj"]):
        times = to_numpy(batch.column("time_ns"))
        _, valid = values_and_validity(batch.column("energy_mj"))
        found.setdefault(host, []).append(times if valid is None else times[valid])
    return {host: np.unique(np.concatenate(parts)) for host, parts in found.items()}


def inner_spans(readings_ns: np.ndarray, starts_ns: np.ndarray, ends_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each window, its first and last counter reading inside it; a window with fewer than two
    readings gets an empty span (start == end), which compares nothing."""
    starts_ns = np.asarray(starts_ns, dtype=np.int64)  # whole nanoseconds: float64 would round to 256 ns
    if readings_ns.size < 2:
        return starts_ns.copy(), starts_ns.copy()
    first = np.searchsorted(readings_ns, starts_ns, side="left")
    last = np.searchsorted(readings_ns, ends_ns, side="right") - 1
    usable = first < last
    begin = np.where(usable, readings_ns[np.minimum(first, readings_ns.size - 1)], starts_ns)
    end = np.where(usable, readings_ns[np.clip(last, 0, readings_ns.size - 1)], starts_ns)
    return begin, end


@dataclass(frozen=True)
class CounterWindows:
    """For each host with counter readings (sorted), every window narrowed to the readings inside it.

    ``starts_s`` and ``ends_s`` (seconds from the analysis origin) hold one block of as many spans
    as there are windows per host, in the order of ``hosts``.
    """

    hosts: list[str]
    starts_s: np.ndarray
    ends_s: np.ndarray


def counter_windows(
    readings: dict[str, np.ndarray], starts_ns: np.ndarray, ends_ns: np.ndarray, origin_ns: int
) -> CounterWindows:
    """The windows ``[starts_ns, ends_ns]`` narrowed to each host's counter ``readings``."""
    hosts = sorted(readings)
    narrowed = [inner_spans(readings[host], starts_ns, ends_ns) for host in hosts]
    starts = np.concatenate([begin for begin, _ in narrowed]) if hosts else np.zeros(0)
    ends = np.concatenate([end for _, end in narrowed]) if hosts else np.zeros(0)
    return CounterWindows(hosts, (starts - origin_ns) / 1e9, (ends - origin_ns) / 1e9)
