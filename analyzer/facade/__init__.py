"""efftrace: how efficiently an LLM fine-tuning job used its GPUs, and why.

Record with ``effrec -- COMMAND`` (or :class:`efftrace.recorder.Recorder` in a custom loop),
then analyse with ``effanalyze RUN_DIR`` or, in a notebook::

    from efftrace import load_run
    run = load_run("effrec_runs/20261123T094050Z-lora", log_interval=10)
    run.summary()          # every figure of every window, with unit, source and coverage
    run.windows()          # one row per log window
    run.samples()          # raw GPU samples, with seconds since the job started

This package is the one import name efftrace installs: ``efftrace.recorder`` (the recorder, light
enough for every training process) and ``efftrace.analyzer`` live under it. Its names load on
first use, so that importing ``efftrace.recorder`` in a training process never loads the analyzer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from efftrace.analyzer.api import Run, load_run
    from efftrace.analyzer.errors import TraceError

from efftrace.recorder.format.version import __version__

__all__ = ["Run", "TraceError", "__version__", "load_run"]


def __getattr__(name: str) -> Any:
    if name in ("Run", "load_run"):
        from efftrace.analyzer import api

        return getattr(api, name)
    if name == "TraceError":
        from efftrace.analyzer.errors import TraceError

        return TraceError
    raise AttributeError(f"module 'efftrace' has no attribute {name!r}")
