"""efftrace's analyzer: turns a trace recorded by ``effrec`` into the EfficientLLM metrics.

Layers, each used only by the next: :mod:`analyzer.loader` (the only file reader) ->
:mod:`analyzer.integrate`, :mod:`analyzer.steps`, :mod:`analyzer.signals` (pure computation) ->
:mod:`analyzer.metrics` (one :class:`~analyzer.result.RunMetrics`) -> outputs
(:mod:`analyzer.console`, :mod:`analyzer.files`, :mod:`analyzer.tensorboard_events`) and the
notebook API (:mod:`analyzer.api`).
"""

from analyzer.api import Run, load_run
from analyzer.errors import TraceError
from analyzer.loader import Trace, open_run
from analyzer.metrics import AnalysisSettings, analyze
from analyzer.result import Figure, RunMetrics, WindowSummary

__all__ = [
    "AnalysisSettings",
    "Figure",
    "Run",
    "RunMetrics",
    "Trace",
    "TraceError",
    "WindowSummary",
    "analyze",
    "load_run",
    "open_run",
]
