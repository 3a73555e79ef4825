"""Synthetic runs several test modules draw: a square-wave power run, and a name that tries to inject script."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers.trace_builder import TraceBuilder

HOSTILE = '</script><script>document.title="pwned"</script><img src=x onerror=alert(1)>'
"""A run name that would run script in a page that did not escape it."""


def square_wave_run(run_dir: Path, gpus: int = 2, seconds: float = 60.0, name: str = "square") -> Path:
    """Power alternating 100 W / 300 W every 0.5 s on each GPU, and steps of 1 s."""
    builder = TraceBuilder(run_dir)
    builder.meta["name"] = name
    times = np.arange(0, seconds + 1e-9, 0.1)
    high = (np.floor(times / 0.5) % 2).astype(bool)
    for gpu in range(gpus):
        builder.gpu(gpu)
        builder.gpu_samples(
            gpu,
            times,
            power_instant_mw=np.where(high, 300e3, 100e3),
            mem_used_bytes=np.full(times.size, 2.0**33),
            util_gpu_pct=np.full(times.size, 50.0),
        )
    for step in range(1, int(seconds) - 1):
        builder.step(0, step, float(step), float(step) + 0.9, samples=4, tokens=400, loss=1.0)
    return builder.write(end_s=seconds)
