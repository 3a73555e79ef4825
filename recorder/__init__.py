"""efftrace's recorder: raw GPU telemetry and training events, written to Arrow during training.

The package is imported by every training process that ``effrec`` instruments, so its top level
stays light: the API below loads on first use. Its parts, by the process they run in:

- :mod:`efftrace.recorder.format`: the trace format, the one contract with the analyzer;
- :mod:`efftrace.recorder.in_training`: what runs inside the training processes (the Trainer
  callback and patches, torch probes, the events writer, :class:`Recorder`): light, never raises;
- :mod:`efftrace.recorder.sampling`: what runs in effrec's own process (the NVML sampler);
- shared by both: :mod:`~efftrace.recorder.config`, :mod:`~efftrace.recorder.writer`,
  :mod:`~efftrace.recorder.meta`, :mod:`~efftrace.recorder.run_dir`, :mod:`~efftrace.recorder.log`,
  and effrec's command line, :mod:`~efftrace.recorder.cli`.

    from efftrace.recorder import Recorder            # a custom training loop
    from efftrace.recorder import EffTraceCallback    # an explicit transformers.TrainerCallback
"""

from __future__ import annotations

from typing import Any

from efftrace.recorder.format.version import __version__

__all__ = ["EffTraceCallback", "Recorder", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Recorder":
        from efftrace.recorder.in_training.api import Recorder

        return Recorder
    if name == "EffTraceCallback":
        from efftrace.recorder.in_training.hf_callback import EffTraceCallback

        return EffTraceCallback
    raise AttributeError(f"module 'efftrace.recorder' has no attribute {name!r}")
