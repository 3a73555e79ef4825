"""Alerts: what a person watching the job should be told about a log window, from its own figures.

Each rule reads figures the window already has (no new signal) and fires only on evidence: the
figure, its value and the threshold are in the message. The same rules run after the job (over
every log window) and live in ``effanalyze --follow`` (over each window as it completes, with the
windows before it as history), so both say the same thing about a window.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from efftrace.analyzer.read.loader import RecordedGpu
from efftrace.recorder.format.columns import to_numpy
from efftrace.recorder.format.units import GIB

MEMORY_HEADROOM_MIN = 0.08
"""Free GPU memory below 8 % of the total is an OOM risk: a longer batch's activations, an evaluation
pass or allocator fragmentation (several % with PyTorch's caching allocator) can take the rest."""

DEGRADATION_RATIO = 0.7
"""A window below 70 % of the earlier windows' median tokens/s has slowed down for a reason: steady
fine-tuning varies by a few % from window to window (padding, data lengths), not by 30 %."""

DEGRADATION_MIN_WINDOWS = 3
"""Earlier complete windows needed before a window is compared with them (fewer: no stable median)."""

STRAGGLER_SKEW_SHARE = 0.2
"""Ranks that end a step, on average, more than 20 % of the step apart: every other rank waits that
long at each gradient all-reduce, so a fifth of the job's GPU time goes to waiting for one rank."""

CLOCK_DROP_RATIO = 0.85
"""An SM clock below 85 % of the run's highest window: well beyond boost-clock jitter (a few %)."""

POWER_AT_LIMIT_RATIO = 0.95
"""Power within 5 % of the enforced limit: the driver holds clocks down to stay under it."""

HOT_CELSIUS = 85.0
"""Datacenter GPUs start slowing their clocks to cool down from about 85-90 °C."""

COVERAGE_MIN = 0.9
"""Samples covering less than 90 % of a window: a GPU stopped answering, or the sampler fell behind."""


KINDS = ("oom_risk", "throughput_drop", "straggler", "throttling", "sampling_gap")


@dataclass(frozen=True)
class Alert:
    kind: str  # one of KINDS
    window: int
    first_step: int
    last_step: int
    time_ns: int  # the window's end
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GpuLimits:
    """What the job's GPUs can hold: the smallest GPU's memory and power limit (None: not recorded)."""

    memory_total_bytes: int | None
    power_limit_w: float | None


def limits_of(gpus: list[RecordedGpu]) -> GpuLimits:
    """The smallest memory and power limit among ``gpus``, as ``meta.json`` recorded them."""
    memory = [gpu.memory_total_bytes for gpu in gpus if gpu.memory_total_bytes]
    power = [gpu.power_limit_mw for gpu in gpus if gpu.power_limit_mw]
    return GpuLimits(min(memory) if memory else None, min(power) / 1e3 if power else None)


_KEYS = (
    "window",
    "first_step",
    "step",
    "end_ns",
    "complete",
    "amu_gib_max",
    "torch_peak_gib",
    "tokens_per_sec",
    "end_skew_s",
    "al_seconds",
    "sm_clock_mhz",
    "aec_watts_per_gpu",
    "temperature_c",
    "coverage_power",
)
"""The windows table's columns the rules read."""


class History:
    """What the rules that compare need of the windows before one: the tokens/s of the earlier complete
    windows (kept sorted, for their median) and the best SM clock; kept as windows come, so judging a
    run stays linear in its windows."""

    def __init__(self) -> None:
        self.speeds: list[float] = []
        self.best_clock = 0.0

    def median_speed(self) -> float:
        """The earlier complete windows' median tokens/s; NaN while there are too few to judge by."""
        before = self.speeds
        if len(before) < DEGRADATION_MIN_WINDOWS:
            return math.nan
        middle = len(before) // 2
        return before[middle] if len(before) % 2 else (before[middle - 1] + before[middle]) / 2

    def add(self, speed: float, clock: float, complete: bool) -> None:
        if complete and speed > 0:  # NaN compares false: an unknown speed is not kept
            bisect.insort(self.speeds, speed)
        if clock > self.best_clock:
            self.best_clock = clock


def window_alerts(row: dict[str, Any], earlier: History, limits: GpuLimits) -> list[Alert]:
    """The alerts of one log window (``row``, a row of the windows table), given the windows before it:
    what ``effanalyze --follow`` asks as each window completes."""
    columns = {key: np.array([np.nan if row.get(key) is None else row[key]], dtype=np.float64) for key in _KEYS}
    ends = np.array([row["end_ns"]], dtype=np.int64)
    return _alerts(columns, ends, np.array([earlier.median_speed()]), np.array([earlier.best_clock]), limits)


def run_alerts(windows: pa.Table, limits: GpuLimits) -> list[Alert]:
    """Every log window's alerts, each window judged against the windows before it."""
    if windows.num_rows == 0:
        return []
    columns = {key: to_numpy(windows.column(key)).astype(np.float64) for key in _KEYS}
    history, medians, best = History(), np.empty(windows.num_rows), np.empty(windows.num_rows)
    speeds, clocks, complete = (columns[key].tolist() for key in ("tokens_per_sec", "sm_clock_mhz", "complete"))
    for at, (speed, clock, whole) in enumerate(zip(speeds, clocks, complete, strict=True)):
        medians[at], best[at] = history.median_speed(), history.best_clock
        history.add(speed, clock, bool(whole))
    ends = to_numpy(windows.column("end_ns")).astype(np.int64)  # nanoseconds: beyond a float64's integers
    return _alerts(columns, ends, medians, best, limits)


def _alerts(
    columns: dict[str, np.ndarray],
    ends_ns: np.ndarray,
    median_speed: np.ndarray,
    best_clock: np.ndarray,
    limits: GpuLimits,
) -> list[Alert]:
    """Every rule over windows given as arrays; a message is written only for the windows that fire."""
    found: list[tuple[int, str, str]] = []  # (window position, kind, what it says)
    with np.errstate(invalid="ignore", divide="ignore"):
        if limits.memory_total_bytes:
            total_gib = limits.memory_total_bytes / GIB
            used = np.fmax(columns["amu_gib_max"], columns["torch_peak_gib"])
            headroom = 1 - used / total_gib
            for at in np.flatnonzero(headroom < MEMORY_HEADROOM_MIN):
                said = f"GPU memory headroom {headroom[at]:.1%} ({used[at]:.1f} of {total_gib:.1f} GiB in use)"
                found.append((at, "oom_risk", f"{said}, below {MEMORY_HEADROOM_MIN:.0%}: out-of-memory risk"))
        speed = columns["tokens_per_sec"]
        for at in np.flatnonzero(speed < DEGRADATION_RATIO * median_speed):
            said = f"{speed[at]:,.0f} tokens/s, {speed[at] / median_speed[at]:.0%} of the earlier windows' median"
            found.append(
                (at, "throughput_drop", f"{said} {median_speed[at]:,.0f} (alert below {DEGRADATION_RATIO:.0%})")
            )
        skew, step = columns["end_skew_s"], columns["al_seconds"]
        for at in np.flatnonzero((skew > STRAGGLER_SKEW_SHARE * step) & (step > 0)):
            share = f"{skew[at] / step[at]:.0%} of the {step[at]:.3f} s step"
            said = f"ranks end a step {skew[at]:.3f} s apart on average, {share}"
            found.append((at, "straggler", f"{said} (alert above {STRAGGLER_SKEW_SHARE:.0%}): a rank is behind"))
        found += _throttled(columns, best_clock, limits)
        coverage = columns["coverage_power"]
        for at in np.flatnonzero(coverage < COVERAGE_MIN):
            said = f"power samples cover {coverage[at]:.0%} of the window (alert below {COVERAGE_MIN:.0%})"
            found.append((at, "sampling_gap", f"{said}: a GPU stopped answering, or the sampler fell behind"))
    order = {kind: rank for rank, kind in enumerate(KINDS)}
    found.sort(key=lambda item: (item[0], order[item[1]]))
    alerts = []
    for at, kind, message in found:
        window, first, last = (int(columns[key][at]) for key in ("window", "first_step", "step"))
        where = f"window {window} (steps {first}-{last})"
        alerts.append(Alert(kind, window, first, last, int(ends_ns[at]), f"{where}: {message}"))
    return alerts


def _throttled(columns: dict[str, np.ndarray], best_clock: np.ndarray, limits: GpuLimits) -> list[tuple[int, str, str]]:
    """A clock well below the run's best window so far, with the power at its limit or the GPU hot;
    a lower clock with neither may be a lighter phase of the job, so it is not called throttling."""
    clock, power, temperature = columns["sm_clock_mhz"], columns["aec_watts_per_gpu"], columns["temperature_c"]
    limit = limits.power_limit_w or math.nan
    at_limit = power >= POWER_AT_LIMIT_RATIO * limit
    hot = temperature >= HOT_CELSIUS
    found = []
    for at in np.flatnonzero((clock < CLOCK_DROP_RATIO * best_clock) & (at_limit | hot)):
        causes = []
        if at_limit[at]:
            causes.append(f"power {power[at]:.0f} W at {power[at] / limit:.0%} of the {limit:.0f} W limit")
        if hot[at]:
            causes.append(
                f"temperature {temperature[at]:.0f} °C (from {HOT_CELSIUS:.0f} °C clocks are cut to cool down)"
            )
        said = f"SM clock {clock[at]:,.0f} MHz, {1 - clock[at] / best_clock[at]:.0%} below the run's best window"
        found.append((at, "throttling", f"{said} ({best_clock[at]:,.0f} MHz), with {' and '.join(causes)}: throttled"))
    return found
