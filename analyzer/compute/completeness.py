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
from efftrace.recorder.format import schema
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
    hosts = [host for host in trace.meta.get("hosts") or [] if isinstance(host, dict)]
    still = [str(host.get("hostname")) for host in hosts if host.get("status") == "running"]
    if len(hosts) > 1 and still:
        covered += f"; host(s) not finished: {', '.join(still)}"
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


def missing_pieces(trace: Trace, sampled: set[tuple[str, int]]) -> tuple[list[str], list[dict[str, Any]]]:
    """What the manifest promises that the files do not hold, said before any figure: hosts whose
    NVML never started (with the reason effrec recorded), GPUs without samples (their file named),
    ranks without an events file. Returns the lines, and the GPUs to show as missing."""
    lines: list[str] = []
    for host in trace.meta.get("hosts") or []:
        error = host.get("nvml_error") if isinstance(host, dict) else None
        if error:
            lines.append(
                f"no GPU was sampled on host {host.get('hostname')}: NVML was not available ({error}). Still "
                "measured from the training events: AL, TT, ST, tokens/s, IT; not measured: AMU, PCU, AEC, "
                "energy, MFU"
            )
    files = {stream.host for stream in trace.gpu_files}
    missing_gpus = []
    for gpu in trace.gpus:
        if (gpu.host, gpu.index) in sampled:
            continue
        name = schema.gpu_samples_file(gpu.host)
        why = f"{name} is missing" if gpu.host not in files else f"{name} holds no samples of it"
        missing_gpus.append({"host": gpu.host, "gpu": gpu.index, "name": gpu.name, "why": why})
        lines.append(f"GPU {gpu.index} of host {gpu.host} ({gpu.name}) is listed in meta.json but {why}")
    hosts = {schema.host_tag(str(host.get("hostname") or "")) for host in trace.meta.get("hosts") or []}
    only_host = next(iter(hosts)) if len(hosts) == 1 else None
    have = {(stream.host, stream.rank) for stream in trace.event_files}
    for rank in trace.meta.get("ranks") or []:
        host = schema.host_tag(str(rank["host"])) if isinstance(rank.get("host"), str) else only_host
        number = rank.get("rank")
        if host is None or not isinstance(number, int) or (host, number) in have:
            continue
        lines.append(f"rank {number} of host {host} reported itself but {schema.events_file(host, number)} is missing")
    return lines, missing_gpus
