"""``effrec --profile-steps A-B``: the PyTorch profiler over a few chosen steps of every rank.

The one recorder feature that costs the training time, and only when asked: telemetry says what
bounds the GPU, a profile says which kernels and which gaps. The profiler starts as step A begins
and stops as step B ends (or when training ends first); each rank's trace goes, gzip'd, into the run
directory as ``profile-<host>-r<rank>.pt.trace.json.gz`` (Chrome trace format, which Holistic Trace
Analysis and Perfetto read). Every step inside the window is marked (``ProfilerStep#N``, N from 0), and the
trace says its rank so the analyzer can tell the files apart.

Like every hook, a failure here warns once and stops profiling; the training goes on.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path
from typing import Any

from efftrace.recorder.format import schema
from efftrace.recorder.log import warn


class ProfilerWindow:
    """Profiles steps ``first`` to ``last`` (the Trainer's 1-based global steps) of one rank."""

    def __init__(self, first: int, last: int, run_dir: Path, host: str, rank: int) -> None:
        self.first, self.last = first, last
        self.path = run_dir / schema.profile_file(host, rank)
        self._rank = rank
        self._profiler: Any = None
        self.done = False

    def before_step(self, step: int) -> None:
        """Called as step ``step`` begins: starts the profiler at the window's first step, marks the
        others inside it."""
        if self.done:
            return
        try:
            if self._profiler is None and self.first <= step <= self.last:
                self._profiler = _started_profiler()  # opens ProfilerStep#0 around this step
            elif self._profiler is not None:
                self._profiler.step()  # closes the last step's range, opens the next one's
        except Exception as error:  # noqa: BLE001 - the profiler must never stop training
            self._give_up(f"could not start the profiler ({type(error).__name__}: {error})")

    def after_step(self, step: int) -> None:
        """Called as step ``step`` ends: at the window's last step, stops and writes the trace."""
        if self._profiler is not None and step >= self.last:
            self.finish()

    def finish(self) -> None:
        """Stop profiling now (the window's end, or training ended inside it) and write the trace."""
        profiler, self._profiler = self._profiler, None
        if profiler is None or self.done:
            return
        self.done = True
        try:
            _wait_for_the_gpu()  # kernels still queued at the window's end would have no recorded end
            profiler.add_metadata_json("distributedInfo", f'{{"rank": {self._rank}}}')  # read only before stop()
            profiler.stop()
            plain = self.path.with_suffix("")  # the Chrome trace as torch writes it, gzip'd below
            profiler.export_chrome_trace(str(plain))
            with open(plain, "rb") as source, gzip.open(self.path, "wb", compresslevel=6) as target:
                shutil.copyfileobj(source, target)
            os.remove(plain)
        except Exception as error:  # noqa: BLE001 - a lost profile, never a lost step
            warn(f"could not write the profile of steps {self.first}-{self.last} to {self.path} ({error})")

    def _give_up(self, reason: str) -> None:
        self.done = True
        profiler, self._profiler = self._profiler, None
        warn(f"{reason}; steps {self.first}-{self.last} are not profiled, training continues")
        if profiler is not None:
            try:
                profiler.stop()
            except Exception:  # noqa: BLE001 - already giving up
                pass


def _started_profiler() -> Any:
    """A running ``torch.profiler.profile`` of the CPU and, where there is one, the GPU."""
    import torch  # the training process has it already: this is an import from its cache

    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    record = torch.profiler.ProfilerAction.RECORD
    # A schedule, although every step is recorded: only with one does the profiler mark its steps.
    profiler = torch.profiler.profile(activities=activities, schedule=lambda _step: record)
    profiler.start()
    return profiler


def _wait_for_the_gpu() -> None:
    """Let the GPU finish the profiled steps: one synchronize, at the window's end only."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
