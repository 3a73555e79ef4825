"""efftrace's analyzer: turns a trace recorded by ``effrec`` into the EfficientLLM metrics.

Three layers, each importing only those below it (checked by ``tests/test_architecture.py``):

- :mod:`efftrace.analyzer.read`: the loader, the manifest's checks and the read-ahead; the only
  code that opens trace files;
- :mod:`efftrace.analyzer.compute`: windows, integration, signals, steps, metrics and the metric
  catalog; pure functions over what ``read`` yields, no files written, nothing printed;
- :mod:`efftrace.analyzer.present`: console, JSON/CSV, TensorBoard, HTML report, comparison and
  progress; thin layers over one :class:`~efftrace.analyzer.result.RunMetrics`, reading the
  catalog for what to show and never recomputing a figure.

Beside them: :mod:`~efftrace.analyzer.result` (the result object), :mod:`~efftrace.analyzer.errors`,
:mod:`~efftrace.analyzer.api` (the notebook API, also ``from efftrace import load_run``) and
:mod:`~efftrace.analyzer.cli` (``effanalyze``). The analyzer imports nothing of the recorder but
:mod:`efftrace.recorder.format`, the trace format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from efftrace.analyzer.api import Run, load_run
    from efftrace.analyzer.errors import TraceError

__all__ = ["Run", "TraceError", "load_run"]


def __getattr__(name: str) -> Any:
    import efftrace

    if name in __all__:
        return getattr(efftrace, name)
    raise AttributeError(f"module 'efftrace.analyzer' has no attribute {name!r}")
