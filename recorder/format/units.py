"""Units and defaults both halves of efftrace share, each defined once.

A trace stores raw units (bytes, milliwatts, millijoules, nanoseconds since the epoch) and the
analyzer reports GiB, watts, joules and seconds: these are the factors between them, and the
seed's log-window setting both ``effrec`` and ``effanalyze`` honour.
"""

from __future__ import annotations

GIB = float(1 << 30)
"""Bytes per GiB: AMU is reported in GiB (2^30 bytes), under the seed's ``amu_gb`` name."""
NS_PER_S = 1e9
"""Trace times are int64 nanoseconds (``time.time_ns()``)."""
MW_PER_W = 1e3
"""NVML reports power in milliwatts."""
MJ_PER_J = 1e3
"""NVML's energy counter counts millijoules."""

ENV_LOG_INTERVAL = "EFFICIENTLLM_LOG_INTERVAL"
"""The seed's variable: train steps per log window (per ``[EfficientLLM Metrics]`` block)."""
DEFAULT_LOG_INTERVAL = 10
"""The seed's default log interval."""
