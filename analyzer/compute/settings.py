"""What the figures depend on besides the trace, and the windows they are computed over.

Both :mod:`.metrics` (which computes arrays over the windows) and :mod:`.figures` (which names
them) need these, so they live apart from either: neither of the two imports the other's caller.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from efftrace.analyzer.compute.steps import Generations, LogWindows, Steps
from efftrace.recorder.format.ranges import LOG_INTERVAL, MAX_GAP_S, PEAK_TFLOPS
from efftrace.recorder.format.units import DEFAULT_LOG_INTERVAL, ENV_LOG_INTERVAL, NS_PER_S

PowerSource = Literal["auto", "buffer", "instant", "average"]


POWER_SOURCES: tuple[PowerSource, ...] = ("auto", "buffer", "instant", "average")


@dataclass(frozen=True)
class AnalysisSettings:
    """What the figures depend on besides the trace; every field has a CLI option.

    Each value is checked when the settings are made: a bad one raises ValueError naming the
    field, the value and what it accepts (the CLI refuses its options in the same words).
    """

    log_interval: int = DEFAULT_LOG_INTERVAL
    power_source: PowerSource = "auto"
    peak_tflops: float | None = None  # per GPU; None: from the table by NVML name
    max_gap_s: float | None = None  # None: 5 poll intervals, at least 1 s

    def __post_init__(self) -> None:
        object.__setattr__(self, "log_interval", int(LOG_INTERVAL.check("log_interval", self.log_interval)))
        if self.power_source not in POWER_SOURCES:
            raise ValueError(
                f"power_source={self.power_source!r} is not accepted: give one of {', '.join(POWER_SOURCES)}"
            )
        for name, accepted in (("peak_tflops", PEAK_TFLOPS), ("max_gap_s", MAX_GAP_S)):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, float(accepted.check(name, value)))

    def gaps_s(self, sampling: dict[str, Any]) -> tuple[float, float]:
        """(samples, energy counter): how far apart readings may be and still be bridged, given the
        run's ``sampling`` settings from ``meta.json``. The counter is read every few seconds, so its
        bound is five of its own intervals, never less than the samples'."""
        interval = float(sampling.get("interval_s") or 0.1)
        max_gap = self.max_gap_s or max(5 * interval, 1.0)
        return max_gap, max(max_gap, 5 * float(sampling.get("energy_interval_s") or 1.0))

    @classmethod
    def from_env(cls, **overrides: Any) -> AnalysisSettings:
        """Defaults as the seed's users set them: ``EFFICIENTLLM_LOG_INTERVAL`` or 10 (a bad value
        of the variable raises ValueError naming it, unless ``log_interval`` is given)."""
        values = {key: value for key, value in overrides.items() if value is not None}
        text = os.environ.get(ENV_LOG_INTERVAL, "").strip()
        if "log_interval" not in values and text:
            values["log_interval"] = int(LOG_INTERVAL.check(ENV_LOG_INTERVAL, text))
        return cls(**values)


OPEN_END_NS = np.iinfo(np.int64).max
"""The job window's end while it is not known (a run whose manifest was never finalised): after every sample."""


@dataclass(frozen=True)
class WindowGroups:
    """Every window as a group of [start, end] spans (the inference window is a union of spans).

    Edges are whole int64 nanoseconds, as recorded: at today's epoch a float64 holds nanoseconds
    only to the nearest 256, so edges become seconds from the origin by an integer subtraction first.
    """

    names: list[str]  # "job", "train", "log", "inference" per group
    starts_ns: np.ndarray  # int64, one row per span
    ends_ns: np.ndarray  # int64; the job's end is OPEN_END_NS until the last sample is known
    first_span: np.ndarray  # index of each group's first span
    seconds: np.ndarray  # each group's total length (inf for an open job window)

    def index(self, name: str) -> int | None:
        return self.names.index(name) if name in self.names else None

    def seconds_from(self, origin_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Every span's start and end in seconds from ``origin_ns`` (an open end is +inf)."""
        starts = (self.starts_ns - origin_ns) / NS_PER_S
        ends = np.where(self.ends_ns == OPEN_END_NS, np.inf, (self.ends_ns - origin_ns) / NS_PER_S)
        return starts, ends

    def close_job(self, end_ns: int) -> None:
        """Give the open job window its end, once the last sample or event is known."""
        self.ends_ns[0] = end_ns
        self.seconds[0] = (end_ns - int(self.starts_ns[0])) / NS_PER_S


def window_groups(job: tuple[int, int | None], steps: Steps, logs: LogWindows, gens: Generations) -> WindowGroups:
    """The job window (end None: not known yet), then the train window and its log windows, then the
    inference window's spans."""
    job_end = OPEN_END_NS if job[1] is None else job[1]
    names, starts, ends, sizes = ["job"], [np.array([job[0]], np.int64)], [np.array([job_end], np.int64)], [1]
    if steps.count:
        names.append("train")
        starts.append(np.array([steps.start_ns.min()], np.int64))
        ends.append(np.array([steps.end_ns.max()], np.int64))
        sizes.append(1)
        names += ["log"] * logs.count
        starts.append(logs.start_ns.astype(np.int64))
        ends.append(logs.end_ns.astype(np.int64))
        sizes += [1] * logs.count
    if gens.count:
        names.append("inference")
        starts.append(gens.union_start_ns.astype(np.int64))
        ends.append(gens.union_end_ns.astype(np.int64))
        sizes.append(gens.union_start_ns.size)
    start_ns, end_ns = np.concatenate(starts), np.concatenate(ends)
    first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    lengths = np.where(end_ns == OPEN_END_NS, np.inf, (end_ns - start_ns) / NS_PER_S)
    return WindowGroups(names, start_ns, end_ns, first, np.add.reduceat(lengths, first))
