"""What bounds the GPU, per log window, from the recorded signals; and what usually helps.

Each rule reads figures a log window already has (its share of time between steps, NVML's
utilisation, GPM's SM, tensor and DRAM activity, memory, clocks) and fires only when they show it;
a window whose signals are missing (no GPM on an older GPU, no GPU sampled) gets no finding from
the rules that need them, never a guess. A finding names its windows, the figures and their values,
and the LLaMA-Factory setting that usually helps. The thresholds are named below with why.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

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
}


@dataclass(frozen=True)
class Finding:
    kind: str
    windows: list[int]  # the log windows it holds in
    evidence: dict[str, float]  # the figures that show it, as means over those windows
    message: str
    suggestion: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _value(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def window_bounds(row: dict[str, Any], between_share: float | None) -> dict[str, dict[str, float]]:
    """The rules a log window meets, each with the figures that show it."""
    found: dict[str, dict[str, float]] = {}
    if between_share is not None and between_share >= INPUT_BOUND_SHARE:
        found["input_bound"] = {"between_steps_share": between_share}
    busy, sm = _value(row, "pcu_ratio"), _value(row, "pcu_sm_ratio")
    tensor, dram = _value(row, "pcu_tensor_ratio"), _value(row, "dram_bw_ratio")
    if busy is not None and sm is not None and busy >= LAUNCH_BOUND_BUSY and sm < LAUNCH_BOUND_SM:
        found["launch_bound"] = {"pcu_ratio": busy, "pcu_sm_ratio": sm}
    inside = None if between_share is None else 1 - between_share
    if busy is not None and inside is not None and busy < LAUNCH_BOUND_BUSY and between_share < INPUT_BOUND_SHARE:
        found["host_bound"] = {"pcu_ratio": busy, "inside_steps_share": inside}
    if dram is not None and tensor is not None and dram >= MEMORY_BOUND_DRAM and tensor < MEMORY_BOUND_TENSOR:
        found["memory_bound"] = {"dram_bw_ratio": dram, "pcu_tensor_ratio": tensor}
    if tensor is not None and tensor >= COMPUTE_BOUND_TENSOR:
        found["compute_bound"] = {"pcu_tensor_ratio": tensor}
    return found


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
}


def findings(
    rows: list[dict[str, Any]], between_shares: list[float | None], alerts: list[dict[str, Any]]
) -> list[Finding]:
    """The run's findings: each rule with the complete log windows it holds in, its evidence averaged
    over them; and the alerts that bear on speed (memory headroom, stragglers, throttling), grouped."""
    held: dict[str, list[tuple[int, dict[str, float]]]] = {}
    complete = [row for row in rows if row.get("complete")]
    for row, share in zip(rows, between_shares, strict=True):
        if not row.get("complete"):
            continue
        for kind, evidence in window_bounds(row, share).items():
            held.setdefault(kind, []).append((int(row["window"]), evidence))
    result = []
    for kind, hits in held.items():
        keys = hits[0][1].keys()
        mean = {key: sum(evidence[key] for _, evidence in hits) / len(hits) for key in keys}
        windows = [number for number, _ in hits]
        where = f"{len(windows)} of {len(complete)} log windows ({_ranges(windows)})"
        result.append(Finding(kind, windows, mean, f"{_SAID[kind].format(**mean)}; in {where}", SUGGESTIONS[kind]))
    for kind in ("oom_risk", "straggler", "throttling"):
        mine = [alert for alert in alerts if alert["kind"] == kind]
        if mine:
            windows = [int(alert["window"]) for alert in mine]
            message = f"{mine[-1]['message']} (so in {len(windows)} of {len(complete)} windows: {_ranges(windows)})"
            result.append(Finding(kind, windows, {}, message, SUGGESTIONS[kind]))
    return result


def _ranges(numbers: list[int]) -> str:
    """1, 2, 3, 5 -> '1-3, 5'."""
    parts, start = [], None
    for at, number in enumerate(numbers):
        if start is None:
            start = number
        if at + 1 == len(numbers) or numbers[at + 1] != number + 1:
            parts.append(str(start) if start == number else f"{start}-{number}")
            start = None
    return ", ".join(parts)
