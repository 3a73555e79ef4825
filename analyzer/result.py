"""The one result object every output is a thin layer over: figures, per-GPU and per-window tables.

A :class:`Figure` is a number together with what users need to trust it: its unit, where it
was read from, and how much of its window the samples covered. Tables are plain pyarrow tables
(one row per GPU, one row per log window) so that writing them needs neither pandas nor torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

ENERGY_CHECK_TOLERANCE = 0.02
"""|trapezoid energy - counter increase| / counter increase above which a window is flagged: the counter
and a 20-ms power series agree within ~0.5 % on H100 (docs/benchmarks.md), so 2 % is a real disagreement."""


@dataclass(frozen=True)
class Figure:
    key: str  # machine name, also the JSON/CSV key
    label: str  # what the console prints (the seed's label where the seed has one)
    value: float | None
    unit: str
    source: str
    coverage: float | None = None  # fraction of the window covered by samples (None: not sampled)

    @property
    def known(self) -> bool:
        return self.value is not None and math.isfinite(self.value)


@dataclass(frozen=True)
class WindowSummary:
    """The figures of one window: ``train``, ``inference`` or ``job``."""

    name: str
    start_ns: int
    end_ns: int
    figures: dict[str, Figure]

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    def value(self, key: str) -> float | None:
        figure = self.figures.get(key)
        return figure.value if figure is not None else None


@dataclass(frozen=True)
class RunMetrics:
    """Everything ``effanalyze`` knows about one run; outputs only format it."""

    run_dir: Path
    run: dict[str, Any]  # name, status, model, GPUs, settings the figures depend on
    summaries: dict[str, WindowSummary]  # train, inference, job (those the run has)
    per_gpu: pa.Table  # one row per (window, host, GPU)
    windows: pa.Table  # one row per log window of L train steps
    generate_calls: pa.Table  # one row per generate() call
    steps: pa.Table  # one row per optimizer step, all ranks merged
    ranks: pa.Table  # one row per rank: its own mean step duration
    notes: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # compute.alerts, one per (window, kind)
    diagnosis: dict[str, Any] = field(default_factory=dict)  # time_buckets: compute.time_buckets, per window

    @property
    def train(self) -> WindowSummary | None:
        return self.summaries.get("train")

    @property
    def inference(self) -> WindowSummary | None:
        return self.summaries.get("inference")
