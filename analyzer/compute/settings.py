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

    @classmethod
    def from_env(cls, **overrides: Any) -> AnalysisSettings:
        """Defaults as the seed's users set them: ``EFFICIENTLLM_LOG_INTERVAL`` or 10 (a bad value
        of the variable raises ValueError naming it, unless ``log_interval`` is given)."""
        values = {key: value for key, value in overrides.items() if value is not None}
        text = os.environ.get(ENV_LOG_INTERVAL, "").strip()
        if "log_interval" not in values and text:
            values["log_interval"] = int(LOG_INTERVAL.check(ENV_LOG_INTERVAL, text))
        return cls(**values)


@dataclass(frozen=True)
class WindowGroups:
    """Every window as a group of [start, end] spans (the inference window is a union of spans)."""

    names: list[str]  # "job", "train", "log", "inference" per group
    starts_ns: np.ndarray  # one row per span
    ends_ns: np.ndarray
    first_span: np.ndarray  # index of each group's first span
    seconds: np.ndarray  # each group's total length

    def index(self, name: str) -> int | None:
        return self.names.index(name) if name in self.names else None


def window_groups(job: tuple[int, float], steps: Steps, logs: LogWindows, gens: Generations) -> WindowGroups:
    """The job window, then the train window and its log windows, then the inference window's spans."""
    names, starts, ends, sizes = ["job"], [np.array([job[0]], float)], [np.array([job[1]], float)], [1]
    if steps.count:
        names.append("train")
        starts.append(np.array([steps.start_ns.min()], float))
        ends.append(np.array([steps.end_ns.max()], float))
        sizes.append(1)
        names += ["log"] * logs.count
        starts.append(logs.start_ns.astype(float))
        ends.append(logs.end_ns.astype(float))
        sizes += [1] * logs.count
    if gens.count:
        names.append("inference")
        starts.append(gens.union_start_ns.astype(float))
        ends.append(gens.union_end_ns.astype(float))
        sizes.append(gens.union_start_ns.size)
    start_ns, end_ns = np.concatenate(starts), np.concatenate(ends)
    first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    return WindowGroups(names, start_ns, end_ns, first, np.add.reduceat(end_ns - start_ns, first) / NS_PER_S)
