"""What bounds the GPU, per log window, from the recorded signals; and what usually helps.

Each rule reads figures a log window already has (its share of time between steps, NVML's
utilisation, GPM's SM, tensor and DRAM activity, memory, clocks and NVML's reasons for them) and
fires only when they show it;
a window whose signals are missing (no GPM on an older GPU, no GPU sampled) gets no finding from
the rules that need them, never a guess. A finding names its windows, the figures and their values,
and the LLaMA-Factory setting that usually helps. The thresholds are named below with why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from efftrace.recorder.format.columns import to_numpy

INPUT_BOUND_SHARE = 0.25
"""A quarter of a window spent between steps (the host fetching and collating the next batch,
logging, saving) leaves the GPU idle that long: a data pipeline that keeps up costs a few %."""

LAUNCH_BOUND_BUSY = 0.5
LAUNCH_BOUND_SM = 0.25
"""NVML counts the GPU busy whenever any kernel runs; GPM counts the SMs that work. Busy at least half
the time while under a quarter of the SMs work means kernels too small to fill the GPU, launched one
after another by the host: the step is bound by launches, not by the GPU. Busy less than half the
time although the time is spent inside steps (not between them) means the GPU waits on the host
within each step (Python, CPU-side work, synchronisations): the host sets the pace either way."""

MEMORY_BOUND_DRAM = 0.5
MEMORY_BOUND_TENSOR = 0.25
"""DRAM bandwidth over half its peak with tensor cores busy under a quarter of the time: the step
waits on memory traffic (attention's reads and writes, element-wise kernels) more than on math."""

COMPUTE_BOUND_TENSOR = 0.4
"""Tensor cores busy 40 % of the time or more: dense bf16 math dominates, as in well-fed LLM training
(large-batch GEMMs reach 90 %); the way faster is less math or more GPUs, not the input pipeline."""

POWER_CAPPED_SHARE = 0.25
THERMAL_SHARE = 0.1
CLOCK_HELD_RATIO = 0.9
"""NVML names why the clocks are below their maximum at every poll (clock-event reasons). Held by the
power cap a quarter of the time or more, or cut by heat or a hardware slowdown a tenth of it, with the
SM clock on average at 90 % of its maximum or less: the GPU ran slower than it can. A cap that only
grazes the clock (a few % below maximum) costs less than the noise of a step time and is not called.
On the H200, the compute-bound sample ran into its 700 W cap at 17 of the 21 readings of its train
window, the SM clock 1,651 MHz on average over windows 2-4, 83 % of 1,980
(sample_traces/h200-diagnosis-compute); the other three never did."""

WARMUP_WINDOWS = 1
"""The first log window carries start-up work later ones do not (CUDA context, kernel and allocator
warm-up, cuBLAS autotuning): it is left out of the bound rules when at least two windows follow it.
On the H200, a compute-bound job's first window showed the GPU busy 44 % of the time, its later ones
over 90 % (sample_traces/h200-diagnosis-compute)."""

SUGGESTIONS = {
    "input_bound": "raise dataloader_num_workers (and preprocessing_num_workers); check what the collator "
    "does per batch",
    "launch_bound": "raise per_device_train_batch_size (lowering gradient_accumulation_steps to keep the "
    "global batch), so each kernel does more work per launch",
    "host_bound": "raise per_device_train_batch_size (lowering gradient_accumulation_steps to keep the global "
    "batch) so the GPU has more work per host step; enable_liger_kernel: true and torch_compile cut host work",
    "memory_bound": "flash_attn: fa2 and enable_liger_kernel: true fuse the memory-heavy kernels",
    "compute_bound": "the GPU is doing math: fewer FLOPs (finetuning_type: lora, a shorter cutoff_len) or more "
    "GPUs are what speeds it up",
    "oom_risk": "gradient_checkpointing: true, or a smaller per_device_train_batch_size with more "
    "gradient_accumulation_steps",
    "straggler": "look at the slow rank's host (its data loading, CPU, other jobs) and its GPU's clocks",
    "throttling": "check the GPU's cooling and power cap (nvidia-smi -q -d PERFORMANCE)",
    "power_capped": "the GPU draws all the power it may: expected of compute-bound work; a higher power limit "
    "(where the site allows) or fewer FLOPs per token speeds it up. A limit below the GPU's default is worth "
    "asking about",
}


@dataclass(frozen=True)
class Finding:
    kind: str
    windows: list[int]  # the log windows it holds in
    evidence: dict[str, float]  # the figures that show it, as means over those windows
    message: str
    suggestion: str

    def as_dict(self) -> dict[str, Any]:
        """As JSON has it (a plain copy: ``dataclasses.asdict`` would deep-copy a long window list)."""
        return {"kind": self.kind, "windows": list(self.windows), "evidence": dict(self.evidence),
                "message": self.message, "suggestion": self.suggestion}  # fmt: skip


def window_bounds(
    columns: dict[str, np.ndarray], between_share: np.ndarray, max_sm_clock_mhz: float | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """For each rule, where the log windows meet it (a mask) and the figures that show it (arrays over
    the windows; NaN, where a signal is missing, meets no rule). ``max_sm_clock_mhz``: the job's GPUs'
    maximum SM clock (None: not recorded, so the clock rules rest on the reasons alone)."""
    busy, sm = columns["pcu_ratio"], columns["pcu_sm_ratio"]
    tensor, dram = columns["pcu_tensor_ratio"], columns["dram_bw_ratio"]
    inside = 1 - between_share
    clock = columns["sm_clock_mhz"]
    clock_ratio = clock / max_sm_clock_mhz if max_sm_clock_mhz else np.zeros(clock.size)
    held = clock_ratio <= CLOCK_HELD_RATIO
    capped, hot = columns["power_capped_ratio"], columns["thermal_slowdown_ratio"]
    with np.errstate(invalid="ignore"):
        return {
            "input_bound": {"mask": between_share >= INPUT_BOUND_SHARE, "between_steps_share": between_share},
            "launch_bound": {"mask": (busy >= LAUNCH_BOUND_BUSY) & (sm < LAUNCH_BOUND_SM), "pcu_ratio": busy,
                             "pcu_sm_ratio": sm},
            "host_bound": {"mask": (busy < LAUNCH_BOUND_BUSY) & (between_share < INPUT_BOUND_SHARE), "pcu_ratio": busy,
                           "inside_steps_share": inside},
            "memory_bound": {"mask": (dram >= MEMORY_BOUND_DRAM) & (tensor < MEMORY_BOUND_TENSOR),
                             "dram_bw_ratio": dram, "pcu_tensor_ratio": tensor},
            "compute_bound": {"mask": tensor >= COMPUTE_BOUND_TENSOR, "pcu_tensor_ratio": tensor},
            "power_capped": {"mask": (capped >= POWER_CAPPED_SHARE) & held, "power_capped_ratio": capped,
                             "sm_clock_mhz": clock, "sm_clock_ratio": clock_ratio},
            "throttling": {"mask": (hot >= THERMAL_SHARE) & held, "thermal_slowdown_ratio": hot,
                           "sm_clock_mhz": clock, "sm_clock_ratio": clock_ratio},
        }  # fmt: skip


_SAID = {
    "input_bound": "input-bound: {between_steps_share:.0%} of the time between steps (the GPU waits for the "
    "next batch)",
    "launch_bound": "launch-bound: NVML busy {pcu_ratio:.0%} of the time but only {pcu_sm_ratio:.0%} of the SMs "
    "working (small kernels, launched one by one)",
    "host_bound": "host-bound: the GPU ran kernels only {pcu_ratio:.0%} of the time, though {inside_steps_share:.0%} "
    "of it was inside steps (the GPU waits on the host within each step)",
    "memory_bound": "memory-bandwidth-bound: DRAM bandwidth {dram_bw_ratio:.0%} of peak, tensor cores busy "
    "{pcu_tensor_ratio:.0%}",
    "compute_bound": "compute-bound: tensor cores busy {pcu_tensor_ratio:.0%} of the time",
    "power_capped": "power-capped: NVML says the power cap held the clocks down {power_capped_ratio:.0%} of the "
    "time; SM clock {sm_clock_mhz:,.0f} MHz{of_maximum}",
    "throttling": "throttled: NVML says heat or a hardware slowdown cut the clocks {thermal_slowdown_ratio:.0%} of "
    "the time; SM clock {sm_clock_mhz:,.0f} MHz{of_maximum}",
}


def findings(
    windows: pa.Table,
    between_share: np.ndarray,
    alerts: list[dict[str, Any]],
    max_sm_clock_mhz: float | None = None,
    profiled: tuple[int, int] | None = None,
) -> list[Finding]:
    """The run's findings: each rule with the complete log windows it holds in, its evidence averaged
    over them; and the alerts that bear on speed (memory headroom, stragglers; throttling where the
    clock-event reasons were not recorded, from power and temperature), grouped.

    ``profiled``: the steps ``effrec --profile-steps`` ran under the profiler. The windows holding them,
    or the step after them (the trace is written before it starts), are slowed by the profiler, so the
    rules leave them out, as they do the warm-up window."""
    if windows.num_rows == 0:
        return []
    number = to_numpy(windows.column("window")).astype(np.int64)
    complete = to_numpy(windows.column("complete")).astype(bool)
    judged_windows = int(complete.sum())
    warm_up = WARMUP_WINDOWS if judged_windows >= WARMUP_WINDOWS + 2 else 0
    slowed = np.zeros(number.size, bool)
    if profiled is not None:
        first, last = (to_numpy(windows.column(key)).astype(np.int64) for key in ("first_step", "step"))
        slowed = (first <= profiled[1] + 1) & (last >= profiled[0])
    judged = complete & (number > warm_up) & ~slowed
    left_out = ""
    if warm_up:
        left_out += f", window {_ranges(np.arange(1, warm_up + 1))} left out as warm-up"
    if slowed.any():
        left_out += f", {_ranges(number[slowed])} as profiled (effrec --profile-steps)"
    rated = int(np.count_nonzero(judged))
    names = ("pcu_ratio", "pcu_sm_ratio", "pcu_tensor_ratio", "dram_bw_ratio", "sm_clock_mhz")
    names += ("power_capped_ratio", "thermal_slowdown_ratio")
    columns = {name: to_numpy(windows.column(name)).astype(np.float64) for name in names}
    result = []
    for kind, rule in window_bounds(columns, between_share, max_sm_clock_mhz).items():
        hits = rule.pop("mask") & judged
        if not hits.any():
            continue
        mean = {key: float(values[hits].mean()) for key, values in rule.items()}
        if not max_sm_clock_mhz:
            mean.pop("sm_clock_ratio", None)
        held_windows = number[hits]
        held = held_windows.tolist()
        where = f"{len(held)} of {rated} log windows ({_ranges(held_windows)}{left_out})"
        of_maximum = _of_maximum(mean, max_sm_clock_mhz) if "sm_clock_mhz" in mean else ""
        said = _SAID[kind].format(**mean, of_maximum=of_maximum)
        result.append(Finding(kind, held, mean, f"{said}; in {where}", SUGGESTIONS[kind]))
    reasons_recorded = bool(np.isfinite(columns["power_capped_ratio"][judged]).any())
    inferred = ("oom_risk", "straggler") if reasons_recorded else ("oom_risk", "straggler", "throttling")
    for kind in inferred:
        mine = [alert for alert in alerts if alert["kind"] == kind]
        if mine:
            held = [int(alert["window"]) for alert in mine]
            message = f"{mine[-1]['message']} (so in {len(held)} of {judged_windows} windows: {_ranges(held)})"
            result.append(Finding(kind, held, {}, message, SUGGESTIONS[kind]))
    return result


def _of_maximum(mean: dict[str, float], max_sm_clock_mhz: float | None) -> str:
    if not max_sm_clock_mhz:
        return " (its maximum was not recorded)"
    return f", {mean['sm_clock_ratio']:.0%} of its {max_sm_clock_mhz:,.0f} MHz maximum"


def _ranges(numbers: list[int] | np.ndarray, at_most: int = 8) -> str:
    """1, 2, 3, 5 -> '1-3, 5' (sorted numbers). The runs are found by one diff: a rule may hold in tens
    of thousands of windows. Past ``at_most`` runs, the first ones and the last are written and the rest
    counted ('1-3, 5, ..., 98-99 (40 runs)'): a message is read, and ``windows`` holds them all."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(numbers) != 1)
    firsts, lasts = np.concatenate(([0], breaks + 1)), np.concatenate((breaks, [numbers.size - 1]))
    shown = np.arange(firsts.size) if firsts.size <= at_most else np.r_[0 : at_most - 1, firsts.size - 1]
    written = [
        str(first) if first == last else f"{first}-{last}"
        for first, last in zip(numbers[firsts[shown]].tolist(), numbers[lasts[shown]].tolist(), strict=True)
    ]
    if firsts.size <= at_most:
        return ", ".join(written)
    return f"{', '.join(written[:-1])}, ..., {written[-1]} ({firsts.size} runs)"
