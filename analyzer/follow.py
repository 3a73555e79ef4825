"""``effanalyze RUN_DIR --follow``: the seed's block for each log window as it completes, while effrec records.

The recorder computes nothing; this reads its streams as they grow (:mod:`efftrace.analyzer.read.tail`)
and, when every rank has finished a log window's last step and every host's samples have passed the
window's end, analyses that window alone: its events and the samples around it, held in memory, go
through the same :func:`~efftrace.analyzer.compute.metrics.analyze` as a finished run. A window's
block therefore has the figures the analysis after the job gives that window. Each look costs what
was written since the last one; memory holds the window being recorded and a margin before it.

On a run over several hosts whose clocks differ by more than the analysis corrects (1 ms), a live
window is not clock-corrected (ten steps are too few to estimate an offset); the final analysis is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from efftrace.analyzer.compute.alerts import Alert, History, limits_of, window_alerts
from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.compute.settings import AnalysisSettings
from efftrace.analyzer.compute.steps import train_step_events
from efftrace.analyzer.read.loader import Trace
from efftrace.analyzer.read.tail import HeldTrace, RunTail
from efftrace.analyzer.result import RunMetrics
from efftrace.recorder.format.columns import from_numpy, to_numpy
from efftrace.recorder.format.units import NS_PER_S

POLL_S = 0.5
"""How often the run's files are looked at: effrec flushes every 2 s, and a look every half second
adds at most that to when a window's block appears (2.5 s after its last step at worst), for about
1 % of a core on an 8-GPU host (docs/benchmarks.md)."""

LATE_SAMPLES_S = 10.0
"""A window whose samples have not passed its end this long after it (a GPU lost, a host stopped) is
analysed with the samples that came: its coverage then says what is missing."""

HOLD_SLACK_S = 30.0
"""Held beyond the margin before the next window, for ranks that end a step later than others."""


@dataclass(frozen=True)
class LiveWindow:
    """One log window as it completed: the analysis of that window alone, and its alerts."""

    number: int  # 1 for the run's first log window, as in the analysis after the job
    result: RunMetrics  # its train window is this log window
    alerts: list[Alert]
    latency_s: float  # from the window's last step end to its analysis


class Follower:
    """Reads a run being recorded and hands back each log window once it is complete."""

    def __init__(self, trace: Trace, settings: AnalysisSettings) -> None:
        self.trace = trace
        self.settings = settings
        self.tail = RunTail(trace)
        self.history = History()  # the windows shown so far, for alerts that compare
        self._first_number: int | None = None  # the run's first log window, numbered as (step - 1) // L
        self._next_number: int | None = None
        _, counter_gap = settings.gaps_s(trace.meta.get("sampling") or {})
        self._margin_ns = int((counter_gap + 1.0) * NS_PER_S)  # what the analysis of a window reaches beyond it
        self.hold_ns = self._margin_ns + int(HOLD_SLACK_S * NS_PER_S)  # kept before the next window

    def finished(self) -> bool:
        """The run ended (its manifest finalised), or effrec is no longer there to end it."""
        return self.trace.status != "running" or self.trace.recorder_alive() is False

    def poll(self) -> list[LiveWindow]:
        """Read what was written since the last look; the log windows that completed, in order."""
        self.tail.read_new()
        train = train_step_events(self.tail.events())
        windows = []
        while (window := self._next_complete(train)) is not None:
            windows.append(window)
        return windows

    def _next_complete(self, train: pa.Table) -> LiveWindow | None:
        if train.num_rows == 0:
            return None
        interval = self.settings.log_interval
        step = to_numpy(train.column("step")).astype(np.int64)
        numbers = (np.maximum(step, 1) - 1) // interval
        if self._next_number is None:
            self._first_number = self._next_number = int(numbers.min())
        number = self._next_number
        chosen = numbers == number
        if not chosen.any() or not self._all_ranks_past(train, (number + 1) * interval):
            return None
        window_events = train.filter(from_numpy(chosen))
        start = int(to_numpy(window_events.column("start_ns")).min())
        end = int(to_numpy(window_events.column("end_ns")).max())
        if not self._samples_past(end):
            return None
        result = analyze(self._held_window(window_events, start, end), self.settings)
        assert self._first_number is not None
        row = {**result.windows.to_pylist()[0], "window": number - self._first_number + 1}
        alerts = window_alerts(row, self.history, limits_of(self.trace.gpus))
        self.history.add(
            *(float("nan") if row.get(key) is None else float(row[key]) for key in ("tokens_per_sec", "sm_clock_mhz")),
            bool(row["complete"]),
        )
        self._next_number = number + 1
        self.tail.drop_before(end - self.hold_ns)
        return LiveWindow(int(row["window"]), result, alerts, (time.time_ns() - end) / NS_PER_S)

    def _all_ranks_past(self, train: pa.Table, last_step: int) -> bool:
        """Every rank has written the window's last step (or a later one); ranks that have not written
        anything yet count as not past it, while the job's world size says they exist."""
        files = self.trace.event_files
        world = self.trace.meta.get("world_size")
        if isinstance(world, int) and len(files) < world:
            return False
        ranks = to_numpy(train.column("rank")).astype(np.int64)
        hosts = train.column("host").to_pylist()
        latest: dict[tuple[str, int], int] = {}
        for host, rank, step in zip(hosts, ranks, to_numpy(train.column("step")).astype(np.int64), strict=True):
            key = (host, int(rank))
            latest[key] = max(latest.get(key, step), step)
        return all(latest.get((stream.host, int(stream.rank or 0)), -1) >= last_step for stream in files)

    def _samples_past(self, end_ns: int) -> bool:
        """Every host's GPU samples (and power-buffer samples, where it has any) have reached past the
        window's end, so its edges are interpolated as the full analysis will; or they are too late."""
        if self.trace.status != "running" or (time.time_ns() - end_ns) / NS_PER_S > LATE_SAMPLES_S:
            return True  # the run is over (all it will have is on disk), or the samples are too late
        gpu = self.tail.latest_ns(self.trace.gpu_files)
        if any(gpu.get(stream.host, -1) <= end_ns for stream in self.trace.gpu_files):
            return False
        power = self.tail.latest_ns(self.trace.power_files)
        return all(newest > end_ns for newest in power.values())

    def _held_window(self, window_events: pa.Table, start_ns: int, end_ns: int) -> HeldTrace:
        """The window's events and the samples the analysis of it reads, as a trace in memory."""
        held: dict[Any, list[pa.RecordBatch]] = {}
        low, high = start_ns - self._margin_ns, end_ns + self._margin_ns
        for stream in (*self.trace.gpu_files, *self.trace.power_files):
            held[stream.path] = self.tail.between(stream.path, low, high)
        hosts = np.array(window_events.column("host").to_pylist(), dtype=object)
        ranks = to_numpy(window_events.column("rank")).astype(np.int64)
        for stream in self.trace.event_files:
            mine = window_events.filter(from_numpy((hosts == stream.host) & (ranks == stream.rank)))
            held[stream.path] = mine.drop_columns(["host"]).to_batches()
        return HeldTrace(self.trace, held)

    def close(self) -> None:
        self.tail.close()
