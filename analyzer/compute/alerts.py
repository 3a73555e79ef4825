"""Alerts: what a person watching the job should be told about a log window, from its own figures.

Each rule reads figures the window already has (no new signal) and fires only on evidence: the
figure, its value and the threshold are in the message. The same rules run after the job (over
every log window) and live in ``effanalyze --follow`` (over each window as it completes, with the
windows before it as history), so both say the same thing about a window.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from efftrace.analyzer.read.loader import RecordedGpu
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


@dataclass(frozen=True)
class Alert:
    kind: str  # oom_risk, throughput_drop, straggler, throttling, sampling_gap
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


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def window_alerts(row: dict[str, Any], earlier: list[dict[str, Any]], limits: GpuLimits) -> list[Alert]:
    """The alerts of one log window (``row``, a row of the windows table), given the windows before it."""
    where = f"window {row['window']} (steps {row['first_step']}-{row['step']})"
    found = [
        *_memory(where, row, limits),
        *_slowdown(where, row, earlier),
        *_straggler(where, row),
        *_throttling(where, row, earlier, limits),
        *_sampling(where, row),
    ]
    return [
        Alert(kind, int(row["window"]), int(row["first_step"]), int(row["step"]), int(row["end_ns"]), message)
        for kind, message in found
    ]


Found = list[tuple[str, str]]


def _memory(where: str, row: dict[str, Any], limits: GpuLimits) -> Found:
    """The window's highest memory in use (NVML's, or torch's allocator peak) against the GPU's total."""
    readings = [_finite(row.get("amu_gib_max")), _finite(row.get("torch_peak_gib"))]
    used_gib = max((value for value in readings if value), default=0.0)
    if not limits.memory_total_bytes or not used_gib:
        return []
    total_gib = limits.memory_total_bytes / GIB
    headroom = 1 - used_gib / total_gib
    if headroom >= MEMORY_HEADROOM_MIN:
        return []
    said = f"GPU memory headroom {headroom:.1%} ({used_gib:.1f} of {total_gib:.1f} GiB in use)"
    return [("oom_risk", f"{where}: {said}, below {MEMORY_HEADROOM_MIN:.0%}: out-of-memory risk")]


def _slowdown(where: str, row: dict[str, Any], earlier: list[dict[str, Any]]) -> Found:
    speed = _finite(row.get("tokens_per_sec"))
    before = [
        value for value in (_finite(old.get("tokens_per_sec")) for old in earlier if old.get("complete")) if value
    ]
    if speed is None or len(before) < DEGRADATION_MIN_WINDOWS:
        return []
    typical = statistics.median(before)
    if speed >= DEGRADATION_RATIO * typical:
        return []
    said = f"{speed:,.0f} tokens/s, {speed / typical:.0%} of the earlier windows' median {typical:,.0f}"
    return [("throughput_drop", f"{where}: {said} (alert below {DEGRADATION_RATIO:.0%})")]


def _straggler(where: str, row: dict[str, Any]) -> Found:
    skew, step = _finite(row.get("end_skew_s")), _finite(row.get("al_seconds"))
    if not skew or not step or skew <= STRAGGLER_SKEW_SHARE * step:
        return []
    said = f"ranks end a step {skew:.3f} s apart on average, {skew / step:.0%} of the {step:.3f} s step"
    return [("straggler", f"{where}: {said} (alert above {STRAGGLER_SKEW_SHARE:.0%}): a rank is behind")]


def _sampling(where: str, row: dict[str, Any]) -> Found:
    coverage = _finite(row.get("coverage_power"))
    if coverage is None or coverage >= COVERAGE_MIN:
        return []
    said = f"power samples cover {coverage:.0%} of the window (alert below {COVERAGE_MIN:.0%})"
    return [("sampling_gap", f"{where}: {said}: a GPU stopped answering, or the sampler fell behind")]


def _throttling(where: str, row: dict[str, Any], earlier: list[dict[str, Any]], limits: GpuLimits) -> Found:
    """A clock well below the run's best window, with the power at its limit or the GPU hot."""
    clock = _finite(row.get("sm_clock_mhz"))
    best = max([value for value in (_finite(old.get("sm_clock_mhz")) for old in earlier) if value] or [0.0])
    if clock is None or best == 0 or clock >= CLOCK_DROP_RATIO * best:
        return []
    causes = []
    power, limit = _finite(row.get("aec_watts_per_gpu")), limits.power_limit_w
    if power is not None and limit and power >= POWER_AT_LIMIT_RATIO * limit:
        causes.append(f"power {power:.0f} W at {power / limit:.0%} of the {limit:.0f} W limit")
    temperature = _finite(row.get("temperature_c"))
    if temperature is not None and temperature >= HOT_CELSIUS:
        causes.append(f"temperature {temperature:.0f} °C (from {HOT_CELSIUS:.0f} °C clocks are cut to cool down)")
    if not causes:
        return []  # a lower clock alone may be a lighter phase of the job: nothing shows it is throttled
    said = f"SM clock {clock:,.0f} MHz, {1 - clock / best:.0%} below the run's best window ({best:,.0f} MHz)"
    return [("throttling", f"{where}: {said}, with {' and '.join(causes)}: throttled")]


def run_alerts(rows: list[dict[str, Any]], limits: GpuLimits) -> list[Alert]:
    """Every log window's alerts, each window judged against the windows before it."""
    alerts = []
    for at, row in enumerate(rows):
        alerts += window_alerts(row, rows[:at], limits)
    return alerts
