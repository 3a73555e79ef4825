"""What the report and the comparison page both draw: budgets, series payloads, step latencies.

Both pages import these from here, so neither imports the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from efftrace.analyzer.compute.timeline import GPU_SIGNALS, DisplaySignal, Series, Timeline
from efftrace.analyzer.present.html_page import rounded
from efftrace.analyzer.result import RunMetrics
from efftrace.recorder.format.columns import to_numpy

MAX_DISPLAY_VALUES = 600_000
"""The most numbers one page embeds, so an 8-GPU day stays a few MB."""
MAX_BUCKETS = 6_000
LATENCY = DisplaySignal("latency_s", "step latency", "s", 1.0, 4)


def max_buckets_for(gpus: int) -> int:
    """Buckets per series so that every GPU's seven signals (min, max, mean) fit the page's budget."""
    values_per_bucket = max(gpus, 1) * (len(GPU_SIGNALS) + 1) * 3
    return int(np.clip(MAX_DISPLAY_VALUES // values_per_bucket, 500, MAX_BUCKETS))


def series_payload(series: Series, timeline: Timeline, origin_ns: int) -> dict[str, Any] | None:
    """A series as the chart script draws it; None when it holds no sample at all."""
    if series.samples == 0:
        return None
    decimals = series.signal.decimals
    payload: dict[str, Any] = {
        "label": series.signal.label,
        "t0": (timeline.origin_ns - origin_ns) / 1e9,
        "dt": timeline.bucket_s,
        "mean": rounded(series.mean(), decimals),
    }
    if int(series.count.max()) > 1:  # buckets hold several samples: draw their spread
        low, high = series.envelope()
        payload["min"], payload["max"] = rounded(low, decimals), rounded(high, decimals)
    return payload


def latency_series(result: RunMetrics, timeline: Timeline) -> Series:
    """Step latencies on the timeline's grid, each step in the bucket where it ended."""
    series = Series.empty(LATENCY, timeline.buckets)
    ends = to_numpy(result.steps.column("end_ns")).astype(np.int64)
    bucket, inside = timeline.bucket_of(ends)
    series.add(bucket[inside], to_numpy(result.steps.column("latency_s"))[inside])
    return series
