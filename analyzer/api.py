"""The notebook API: one :class:`Run` per run directory, everything as pandas DataFrames.

    from efftrace import load_run
    run = load_run("runs/20261123T094050Z-lora")
    run.summary()          # every figure of every window, with unit, source and coverage
    run.windows()          # one row per log window
    run.samples()          # raw GPU samples, with seconds since the job started

It is a thin layer over the same loader and metrics the CLI uses, so a notebook and
``effanalyze`` never disagree. Raw-sample frames load the whole stream: fine for sample traces
and single runs, not for month-long ones (use the metrics, which stream).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.compute.settings import AnalysisSettings, PowerSource
from efftrace.analyzer.read.loader import Trace, open_run
from efftrace.analyzer.result import RunMetrics
from efftrace.recorder.format.units import GIB

if TYPE_CHECKING:
    import pandas as pd


class Run:
    """A recorded run, opened for exploration; figures are computed once, on first use.

    Made by :func:`load_run`. Opening checks the manifest and every file's schema (a damaged
    trace raises :class:`~efftrace.analyzer.errors.TraceError` here, naming the file); the
    figures stream the trace when first asked for.
    """

    def __init__(self, run_dir: Path | str, settings: AnalysisSettings | None = None, client: Any = None) -> None:
        self.trace: Trace = open_run(run_dir)
        self.settings = settings or AnalysisSettings.from_env()
        self.client = client  # a dask.distributed Client: the figures are then computed on its cluster

    def __repr__(self) -> str:
        return f"Run({str(self.trace.run_dir)!r}, status={self.trace.status!r})"

    @property
    def name(self) -> str:
        """The run's name, as in ``meta.json`` (its directory's name where the manifest has none)."""
        return self.trace.name

    @property
    def meta(self) -> dict[str, Any]:
        """The run manifest, ``meta.json``, as recorded (a copy: editing it changes nothing)."""
        return self.trace.meta

    @cached_property
    def metrics(self) -> RunMetrics:
        """Every figure and table of the run: the object the CLI's outputs are made from."""
        engine = None
        if self.client is not None:
            from efftrace.analyzer.cluster import DaskEngine

            engine = DaskEngine(self.client)
        return analyze(self.trace, self.settings, engine)

    @property
    def origin_ns(self) -> int:
        """Time zero of the ``seconds`` columns: the start of the job window."""
        return self.metrics.summaries["job"].start_ns

    def figure(self, key: str, window: str = "train") -> float | None:
        """One figure's value, e.g. ``run.figure("aec_watts")``; None where the run has no value for it.

        Raises KeyError, listing the valid ones, for a window this run does not have or a key that
        window has no figure of.
        """
        summaries = self.metrics.summaries
        if window not in summaries:
            raise KeyError(f"window {window!r}: this run has {', '.join(map(repr, summaries))}")
        figures = summaries[window].figures
        if key not in figures:
            raise KeyError(f"figure {key!r} is not one of the {window} window's: {', '.join(figures)}")
        return figures[key].value

    def summary(self) -> pd.DataFrame:
        """One row per (window, figure): value, unit, source and coverage, as the console prints them."""
        rows = [
            {
                "window": name,
                "key": key,
                "label": figure.label,
                "value": figure.value,
                "unit": figure.unit,
                "source": figure.source,
                "coverage": figure.coverage,
            }
            for name, summary in self.metrics.summaries.items()
            for key, figure in summary.figures.items()
        ]
        return _pandas().DataFrame(rows)

    def windows(self) -> pd.DataFrame:
        """One row per log window of L train steps: the points the TensorBoard backfill writes."""
        return self._with_seconds(self.metrics.windows, "end_ns")

    def per_gpu(self) -> pd.DataFrame:
        """One row per (summary window, GPU): each GPU's own figures before they are combined."""
        _pandas()
        return self.metrics.per_gpu.to_pandas()

    def generate_calls(self) -> pd.DataFrame:
        """One row per ``generate()`` call: duration, samples, tokens, its own IT."""
        return self._with_seconds(self.metrics.generate_calls, "start_ns")

    def samples(self) -> pd.DataFrame:
        """GPU samples with readable units: watts, GiB, ratios, and seconds since the job started."""
        frame = self._with_seconds(self.trace.gpu_samples(), "time_ns")
        for column in ("power_instant_mw", "power_avg_mw"):
            frame[column.replace("_mw", "_w")] = frame[column] / 1e3
        frame["mem_used_gib"] = frame["mem_used_bytes"] / GIB
        return frame

    def power(self) -> pd.DataFrame:
        """The driver's buffered power samples (about 20 ms apart on Hopper), in watts."""
        frame = self._with_seconds(self.trace.power_samples(), "time_ns")
        frame["power_w"] = frame["power_mw"] / 1e3
        return frame

    def events(self) -> pd.DataFrame:
        """Every event of every rank as recorded (train steps, generate calls, marks)."""
        return self._with_seconds(self.trace.events(), "start_ns")

    def steps(self) -> pd.DataFrame:
        """One row per optimizer step, all ranks merged (latency, tokens, samples, loss)."""
        return self._with_seconds(self.metrics.steps, "start_ns")

    def _with_seconds(self, table: pa.Table, time_column: str) -> pd.DataFrame:
        _pandas()  # a clear ImportError, naming the extra, where pandas is missing
        frame = table.to_pandas()
        if time_column in frame:
            frame["seconds"] = (frame[time_column].to_numpy(dtype=np.int64) - self.origin_ns) / 1e9
        return frame


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError("the notebook API's tables need pandas: pip install 'efftrace[analyze]'") from None
    return pandas


def load_run(
    run_dir: Path | str,
    *,
    log_interval: int | None = None,
    power_source: PowerSource = "auto",
    peak_tflops: float | None = None,
    max_gap_s: float | None = None,
    client: Any = None,
) -> Run:
    """Open a run directory written by ``effrec`` for exploration.

    The keywords are ``effanalyze``'s options: ``log_interval`` (steps per log window; default
    ``EFFICIENTLLM_LOG_INTERVAL``, else 10), ``power_source`` (``auto``, ``buffer``, ``instant``
    or ``average``), ``peak_tflops`` (dense TFLOP/s per GPU for MFU; default: the table, by GPU
    name) and ``max_gap_s`` (seconds beyond which a gap between samples is not bridged).
    ``client``, a ``dask.distributed.Client``, computes the figures on its cluster (same figures;
    the run directory must be on a filesystem its workers share).
    """
    settings = AnalysisSettings.from_env(
        log_interval=log_interval, power_source=power_source, peak_tflops=peak_tflops, max_gap_s=max_gap_s
    )
    return Run(run_dir, settings, client)
