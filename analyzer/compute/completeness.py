"""What an unfinished run's figures cover: said at the top of every output, never left to be guessed.

A run is unfinished while ``meta.json`` says ``running``: effrec is still recording (the run is
analysed beside the job), or effrec was killed before it could finalise the manifest. Every
figure is still computed from what is on disk, but the job window ends at the last sample
written, the train window at the last step flushed (up to one flush interval behind the job), and
the last log window may hold fewer than L steps.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from efftrace.analyzer.compute.steps import LogWindows, Steps
from efftrace.analyzer.read.loader import Trace
from efftrace.recorder.format.units import NS_PER_S


def _utc(ns: int) -> str:
    return datetime.fromtimestamp(ns / NS_PER_S, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def unfinished(
    trace: Trace, steps: Steps, logs: LogWindows, job_start_ns: int, job_end_ns: int
) -> dict[str, Any] | None:
    """None for a finished run; else what it is and which windows cover only part of the job."""
    if trace.status != "running":
        return None
    alive = trace.recorder_alive()
    pid = trace.meta.get("recorder_pid")
    if alive:
        state, why = "recording", f"effrec (pid {pid}) is still recording it"
    elif alive is False:
        state, why = "stopped", f"effrec (pid {pid}) is not running: it stopped before it could finish the run"
    else:
        state, why = "unknown", "effrec did not finish it (still recording on another host, or killed)"
    partial = ["job"]
    covered = f"what was on disk: up to {_utc(job_end_ns)} ({(job_end_ns - job_start_ns) / NS_PER_S:,.1f} s)"
    if steps.count:
        partial.append("train")
        covered += f", {steps.count} train steps (to step {int(steps.step[-1])})"
        if logs.count and not bool(logs.complete[-1]):
            first, last = int(steps.step[logs.first[-1]]), int(logs.last_step[-1])
            partial.append(f"log window {logs.count}")
            covered += f"; the last log window (steps {first}-{last}) is not complete"
    for gone in trace.recorder_gone:
        noticed = gone.get("noticed_ns")
        if isinstance(noticed, int):
            covered += (
                f"; rank {gone.get('rank')} saw effrec stop by {_utc(noticed)}: later steps have no GPU samples "
                "(see each figure's coverage)"
            )
            break
    message = f"unfinished run (meta.json says 'running'): {why}. Figures cover {covered}."
    return {"state": state, "recorded_until_ns": int(job_end_ns), "partial_windows": partial, "message": message}
