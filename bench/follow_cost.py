"""What ``effanalyze --follow`` costs while it watches an 8-GPU host, and how soon a window's block appears.

    python bench/follow_cost.py [--seconds 60] [--gpus 8] [--step 0.5] [--log-interval 10]

A run is written here as effrec writes one (its own stream writer, flushed every 2 s, the power buffer
every second): GPU rows for
every GPU at the default 0.1-s poll, the driver's 20-ms power buffer harvested every second, and one
train-step event per rank (one rank per GPU) every ``--step`` seconds. ``effanalyze RUN --follow``
runs beside it in its own process, at its default look every 0.5 s; when the run ends, the benchmark reports
that process's CPU time (user + system, from the kernel) over its wall time, and for each window the
delay from its last step's end to the line of its block arriving.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from efftrace.recorder.config import FLUSH_INTERVAL_S, POWER_FLUSH_INTERVAL_S
from efftrace.recorder.format import schema
from efftrace.recorder.writer import StreamWriter

HOST = socket.gethostname()


def write_meta(run_dir: Path, gpus: int, ranks: int, status: str, started_ns: int, ended_ns: int | None) -> None:
    meta = {
        "format_version": schema.FORMAT_VERSION,
        "recorder_version": "bench",
        "recorder_pid": os.getpid(),
        "recorder_environment": {"hostname": HOST},
        "name": run_dir.name,
        "status": status,
        "started_ns": started_ns,
        "ended_ns": ended_ns,
        "command": ["train"],
        "hosts": [
            {
                "hostname": HOST,
                "gpus": [
                    {"index": i, "uuid": f"GPU-{i}", "name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": 80 << 30}
                    for i in range(gpus)
                ],
            }
        ],
        "sampling": {"interval_s": 0.1, "energy_interval_s": 2.0, "cuda_sync": True},
        "model": {"total_params": 1_000_000_000, "trainable_params": 1_000_000_000},
        "world_size": ranks,
    }
    temporary = run_dir / "meta.json.tmp"
    temporary.write_text(json.dumps(meta))
    os.replace(temporary, run_dir / schema.META_FILE)


def record(run_dir: Path, seconds: float, gpus: int, step_s: float, step_ends: list[int]) -> None:
    """Write the run for ``seconds``, as effrec and one rank per GPU would."""
    samples = StreamWriter(run_dir / schema.gpu_samples_file(HOST), schema.GPU_SAMPLES_SCHEMA, FLUSH_INTERVAL_S, 10**6)
    power = StreamWriter(
        run_dir / schema.power_samples_file(HOST), schema.POWER_SAMPLES_SCHEMA, POWER_FLUSH_INTERVAL_S, 10**6
    )
    events = [
        StreamWriter(run_dir / schema.events_file(HOST, rank), schema.EVENTS_SCHEMA, FLUSH_INTERVAL_S, 10**6)
        for rank in range(gpus)
    ]
    began, polls, step = time.monotonic(), 0, 1
    step_start = time.time_ns()
    last_buffer_ns = time.time_ns()
    while time.monotonic() - began < seconds:
        now = time.time_ns()
        for gpu in range(gpus):
            watts = int((400 + 200 * math.sin(polls / 9 + gpu)) * 1e3)
            energy = polls * 40_000 if polls % 20 == 0 else None
            row = (now, gpu, watts, watts, energy, 60 << 30, 80 << 30, 90, 40, 1980, 60, 80.0, 60.0, 30.0, 0)
            samples.append(row)
        if polls % 10 == 0:  # the driver buffer, harvested every second: 20-ms samples since the last harvest
            times = list(range(last_buffer_ns + 20_000_000, now, 20_000_000))
            for gpu in range(gpus):
                power.extend((times, [gpu] * len(times), [400_000 + gpu] * len(times)))
            last_buffer_ns = times[-1] if times else last_buffer_ns
        if time.monotonic() - began >= step * step_s:
            end = time.time_ns()
            for rank, writer in enumerate(events):
                fields = {"kind": "train_step", "rank": rank, "pid": os.getpid(), "step": step, "start_ns": step_start,
                          "end_ns": end, "synced": True, "micro_batches": 1, "samples": 8, "tokens": 4096}  # fmt: skip
                writer.append(tuple(fields.get(name) for name in schema.EVENTS_SCHEMA.names))
            step_ends.append(end)
            step_start, step = end, step + 1
        polls += 1
        time.sleep(max(0.0, began + polls * 0.1 - time.monotonic()))
    for writer in (samples, power, *events):
        writer.close()


def _cpu_seconds(pid: int) -> float:
    """A running process's user + system CPU seconds, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--step", type=float, default=0.5)
    parser.add_argument("--log-interval", type=int, default=10)
    args = parser.parse_args()
    with TemporaryDirectory() as scratch:
        run_dir = Path(scratch) / "run"
        run_dir.mkdir()
        started = time.time_ns()
        write_meta(run_dir, args.gpus, args.gpus, "running", started, None)
        step_ends: list[int] = []
        writer = threading.Thread(target=record, args=(run_dir, args.seconds, args.gpus, args.step, step_ends))
        writer.start()
        command = [sys.executable, "-m", "efftrace.analyzer", str(run_dir), "--follow"]
        command += ["--log-interval", str(args.log_interval)]
        follow = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        follow_started = time.monotonic()
        shown: dict[int, float] = {}
        assert follow.stdout is not None
        lines = []
        reader_done = threading.Event()

        def read() -> None:
            for line in follow.stdout:  # type: ignore[union-attr]
                lines.append(line)
                if line.startswith("[EfficientLLM Metrics] Step") and "[live:" in line:
                    shown[int(line.split()[3].rstrip(":"))] = time.time()
            reader_done.set()

        threading.Thread(target=read, daemon=True).start()
        time.sleep(min(10.0, args.seconds / 3))  # past start-up (imports, the first look at the run)
        steady_from = (_cpu_seconds(follow.pid), time.monotonic())
        writer.join()
        steady_to = (_cpu_seconds(follow.pid), time.monotonic())
        write_meta(run_dir, args.gpus, args.gpus, "complete", started, time.time_ns())
        _, status, usage = os.wait4(follow.pid, 0)
        wall = time.monotonic() - follow_started
        reader_done.wait(10)
    cpu = usage.ru_utime + usage.ru_stime
    delays = [shown[step] - step_ends[step - 1] / 1e9 for step in sorted(shown)]
    print(
        f"{args.gpus} GPUs at 0.1 s, {args.gpus} ranks, a step every {args.step} s, log windows of {args.log_interval}"
    )
    steady = (steady_to[0] - steady_from[0]) / (steady_to[1] - steady_from[1])
    print(f"effanalyze --follow: {100 * steady:.2f} % of one core while following "
          f"({steady_to[1] - steady_from[1]:.0f} s after start-up); {cpu:.2f} s CPU over its whole {wall:.1f} s "
          f"= {100 * cpu / wall:.2f} % with start-up and the final analysis (exit status {status})")  # fmt: skip
    if delays:
        print(f"{len(delays)} live blocks; delay from a window's last step to its block: "
              f"median {sorted(delays)[len(delays) // 2]:.2f} s, max {max(delays):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
