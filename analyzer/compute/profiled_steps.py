"""What the PyTorch profiler saw in the steps ``effrec --profile-steps`` profiled: top kernels, GPU idle time.

For the cases telemetry cannot settle: NVML says the GPU was busy 8 % of the time; the profile says
which kernels ran, for how long, and whether the idle time between them was the GPU waiting on the
host to queue work. The traces are read by Holistic Trace Analysis (the ``profile`` extra): its parser,
its kernel classes (computation, communication, memory), its short kernel names, its interval merge
and its idle-time breakdown (host wait, kernel wait, other). It is imported only when a run holds
profiles, so no other analysis pays for it (it brings pandas).

The profiled span of a rank is its steps as they ran on the GPU (the profiler's GPU-side
``ProfilerStep#N`` ranges), else on the host; a kernel whose end the profiler did not record (a
duration below zero) is left out and counted.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TOP_KERNELS = 5
"""Kernels listed per rank, by total GPU time: enough to name what dominates, short enough to read."""

_GPU_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")


class ProfileUnavailable(Exception):
    """The run has profiles but they cannot be read here (the extra is not installed, a damaged file)."""


def profiled_steps(files: dict[int, Path], steps: tuple[int, int] | None) -> dict[str, Any]:
    """Per rank: the profiled span, kernel time, idle time and its causes, and the top kernels.

    Raises :class:`ProfileUnavailable` with a one-line reason when the traces cannot be read."""
    try:
        with _quiet():
            from hta.trace_analysis import TraceAnalysis
            from hta.utils.utils import get_kernel_type, merge_kernel_intervals, shorten_name
    except ImportError:
        raise ProfileUnavailable(
            "the run holds PyTorch profiler traces (effrec --profile-steps); pip install 'efftrace[profile]' "
            "(Holistic Trace Analysis) to report their kernels and idle time"
        ) from None
    folder = next(iter(files.values())).parent
    try:
        with _quiet():
            analysis = TraceAnalysis(
                trace_files={rank: path.name for rank, path in files.items()},
                trace_dir=str(folder),
                include_last_profiler_step=True,
            )
    except Exception as error:  # noqa: BLE001 - HTA raises what its parser meets; any of it means unreadable
        names = ", ".join(path.name for path in files.values())
        raise ProfileUnavailable(f"the profiler traces {names} could not be read ({type(error).__name__})") from None
    ranks = {}
    helpers = _Hta(get_kernel_type, shorten_name, merge_kernel_intervals)
    for rank in sorted(files):
        with _quiet():
            ranks[str(rank)] = _rank_profile(analysis, rank, helpers)
    return {
        "steps": None if steps is None else list(steps),
        "source": "PyTorch profiler traces (effrec --profile-steps), read by Holistic Trace Analysis",
        "files": {str(rank): path.name for rank, path in files.items()},
        "ranks": ranks,
    }


@dataclass(frozen=True)
class _Hta:
    """HTA's helpers, imported with it (only when a run holds profiles)."""

    kernel_type: Callable[[str], str]
    short_name: Callable[[str], str]
    merge_intervals: Callable[[Any], Any]


def _rank_profile(analysis: Any, rank: int, hta: _Hta) -> dict[str, Any]:
    """One rank's profile. Events are matched by their symbol ids, as HTA stores them: names are looked at
    once per distinct symbol, never once per event (kernel names run to kilobytes)."""
    trace = analysis.t.get_trace(rank)
    symbols = analysis.t.symbol_table.get_sym_table()
    ids = analysis.t.symbol_table.get_sym_id_map()
    category, name = trace["cat"].to_numpy(), trace["name"].to_numpy()
    starts = trace["ts"].to_numpy(dtype=np.float64)
    durations = trace["dur"].to_numpy(dtype=np.float64)

    def of_category(*names: str) -> np.ndarray:
        return np.isin(category, [ids[text] for text in names if text in ids])

    stepping = np.isin(name, [at for at, text in enumerate(symbols) if text.startswith("ProfilerStep#")])
    on_gpu = stepping & of_category("gpu_user_annotation")
    marked = on_gpu if on_gpu.any() else stepping & of_category("user_annotation")
    if not marked.any():
        return {"profiled_steps": 0, "note": "no ProfilerStep ranges in the trace"}
    span_start = float(starts[marked].min())
    span_end = float((starts[marked] + durations[marked]).max())
    work = of_category(*_GPU_CATEGORIES)
    unfinished = int(np.count_nonzero(work & (durations < 0)))
    inside = work & (durations >= 0) & (starts >= span_start) & (starts < span_end)
    span_s = (span_end - span_start) / 1e6
    result: dict[str, Any] = {
        "profiled_steps": int(np.count_nonzero(marked)),
        "span_s": span_s,
        "gpu_side": bool(on_gpu.any()),
        "kernels": int(np.count_nonzero(inside)),
        "unfinished_kernels": unfinished,
    }
    if not inside.any():
        result["note"] = "no GPU kernels ran in the profiled steps (a CPU run?)"
        return result
    ends = np.minimum(starts[inside] + durations[inside], span_end)
    busy_s = _merged_length(starts[inside], ends, hta.merge_intervals) / 1e6
    result["gpu_busy_s"] = busy_s
    result["gpu_idle_share"] = max(0.0, 1 - busy_s / span_s) if span_s > 0 else None
    kinds, where = np.unique(name[inside], return_inverse=True)  # each kernel name once
    seconds = np.bincount(where, weights=durations[inside]) / 1e6
    texts = [symbols[kind] for kind in kinds]
    result["kernel_types"] = _kernel_type_shares(texts, seconds, hta.kernel_type)
    result["top_kernels"] = _top_kernels(texts, seconds, np.bincount(where), hta.short_name)
    result["idle_causes"] = _idle_causes(analysis, rank)
    return result


def _merged_length(starts: np.ndarray, ends: np.ndarray, merge_intervals: Callable[[Any], Any]) -> float:
    """The length of the union of intervals (kernels on several streams overlap), by HTA's merge."""
    if starts.size == 0:
        return 0.0
    import pandas as pd  # HTA's own dependency, here only once HTA is imported

    merged = merge_intervals(pd.DataFrame({"ts": starts, "dur": ends - starts}))
    return float((merged["end"] - merged["ts"]).sum())


def _kernel_type_shares(names: list[str], seconds: np.ndarray, kernel_type: Callable[[str], str]) -> dict[str, float]:
    """Each kernel class's share of the kernel time (HTA's classes: computation, communication, memory)."""
    types = np.array([kernel_type(text) for text in names], dtype=object)
    total = float(seconds.sum())
    shares = {}
    for kind in ("COMPUTATION", "COMMUNICATION", "MEMORY", "OTHER"):
        taken = float(seconds[types == kind].sum())
        if taken > 0 and total > 0:
            shares[kind.lower()] = taken / total
    return shares


def _top_kernels(
    names: list[str], seconds: np.ndarray, counts: np.ndarray, short_name: Callable[[str], str]
) -> list[dict[str, Any]]:
    total = float(seconds.sum())
    order = np.argsort(-seconds, kind="stable")[:TOP_KERNELS]
    return [
        {
            "name": short_name(names[at]) or names[at][:80],
            "seconds": float(seconds[at]),
            "share": float(seconds[at] / total) if total > 0 else None,
            "count": int(counts[at]),
        }
        for at in order
    ]


def _idle_causes(analysis: Any, rank: int) -> dict[str, float] | None:
    """HTA's split of the GPU's idle time on its busiest stream: waiting for the host to queue work,
    the gaps between back-to-back kernels, and the rest; None where HTA cannot split it."""
    try:
        table, _ = analysis.get_idle_time_breakdown(ranks=[rank], visualize=False)
    except Exception:  # noqa: BLE001 - HTA asserts on some traces: the split is then not given
        return None
    if table is None or len(table) == 0:
        return None
    totals = table.groupby("stream")["idle_time"].sum()
    stream = totals.idxmax() if totals.size else None
    chosen = table[table["stream"] == stream]
    whole = float(chosen["idle_time"].sum())
    if whole <= 0:
        return None
    return {str(row.idle_category): float(row.idle_time) / whole for row in chosen.itertuples()}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """HTA logs each file it parses and pandas warns about its calls: none of it is the user's business."""
    logger = logging.getLogger("hta")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
