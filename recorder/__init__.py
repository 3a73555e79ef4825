"""efftrace's recorder: raw GPU telemetry and training events, written to Arrow during training.

The package is imported by every training process that ``effrec`` instruments, so its top level
stays light: the API below loads on first use.

    from recorder import Recorder            # a custom training loop
    from recorder import EffTraceCallback    # an explicit transformers.TrainerCallback
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["EffTraceCallback", "Recorder", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Recorder":
        from recorder.api import Recorder

        return Recorder
    if name == "EffTraceCallback":
        from recorder.hf_callback import EffTraceCallback

        return EffTraceCallback
    raise AttributeError(f"module 'recorder' has no attribute {name!r}")
