"""Each rank's steps seen twice: on the GPU (CUDA events) and on the host (the Trainer's hooks).

The time buckets take a step's GPU-side span where CUDA events timed it, so "between steps" is time
the GPU had nothing of the training's to do. The host's view beside it tells the two kinds of time
apart that one clock cannot: the host's own time between steps (fetching the next batch, logging)
against the part of it the GPU sat idle, the rest having overlapped with the GPU finishing the step;
and how long after the host queued a step's end the GPU got there. Near zero, the GPU keeps up with
the host and waits on it inside the step; a GPU that trails by milliseconds is what sets the pace.

Only steps with both views count (a step recorded before the host times were, or on a host's clock
alone, has one): they say how many.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from efftrace.analyzer.compute.steps import kind_is
from efftrace.recorder.format.columns import to_numpy, values_and_validity
from efftrace.recorder.format.units import NS_PER_S


def step_timing(events: pa.Table, train_start_ns: int, train_end_ns: int) -> dict[str, dict[str, Any]]:
    """Per rank, over the train window: its steps with both views and their means per step, in
    seconds: ``gpu_step_s``, ``host_step_s``, ``gpu_between_s`` (the GPU's time from one step's end
    to the next one's start), ``host_between_s`` and ``gpu_after_host_s`` (step end on the GPU minus
    on the host). Ranks without such steps are left out; an empty dict when none has them."""
    if events.num_rows == 0:
        return {}
    is_step = to_numpy(kind_is(events, "train_step")).astype(bool)
    synced, synced_valid = values_and_validity(events.column("synced"))
    host_start, start_valid = values_and_validity(events.column("host_start_ns"))
    host_end, end_valid = values_and_validity(events.column("host_end_ns"))
    start = to_numpy(events.column("start_ns")).astype(np.int64)
    end = to_numpy(events.column("end_ns")).astype(np.int64)
    both = is_step & synced.astype(bool) & (start >= train_start_ns) & (end <= train_end_ns)
    for valid in (synced_valid, start_valid, end_valid):
        if valid is not None:
            both &= valid
    chosen = np.flatnonzero(both)
    if chosen.size == 0:
        return {}
    rank = to_numpy(events.column("rank")).astype(np.int64)[chosen]
    order = np.lexsort((start[chosen], rank))
    chosen, rank = chosen[order], rank[order]
    gpu_start, gpu_end = start[chosen], end[chosen]
    cpu_start, cpu_end = host_start[chosen].astype(np.int64), host_end[chosen].astype(np.int64)
    ranks, first, place = np.unique(rank, return_index=True, return_inverse=True)
    steps = np.diff(np.append(first, rank.size))
    follows = rank[1:] == rank[:-1]  # a step and the next one of the same rank
    gap_rank = place[1:][follows]  # the rank (its place in ``ranks``) of each gap between two steps
    gaps = np.bincount(gap_rank, minlength=ranks.size)

    def mean_per_step(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values / NS_PER_S, first) / steps

    def mean_per_gap(after: np.ndarray, before: np.ndarray) -> np.ndarray:
        seconds = (after[1:] - before[:-1])[follows] / NS_PER_S
        total = np.bincount(gap_rank, weights=seconds, minlength=ranks.size)
        return np.divide(total, gaps, out=np.full(ranks.size, np.nan), where=gaps > 0)

    columns = {
        "gpu_step_s": mean_per_step(gpu_end - gpu_start),
        "host_step_s": mean_per_step(cpu_end - cpu_start),
        "gpu_between_s": mean_per_gap(gpu_start, gpu_end),
        "host_between_s": mean_per_gap(cpu_start, cpu_end),
        "gpu_after_host_s": mean_per_step(gpu_end - cpu_end),
    }
    return {
        str(int(number)): {"steps": int(steps[at]), **{key: _number(values[at]) for key, values in columns.items()}}
        for at, number in enumerate(ranks)
    }


def _number(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
