"""A run written while a test reads it: effrec's own stream writer, GPU rows and step events as they
would come from effrec and two ranks, with a manifest that says ``running`` until the end."""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from pathlib import Path

from efftrace.recorder.format import schema
from efftrace.recorder.writer import StreamWriter

HOST = socket.gethostname()
GPUS = 2
RANKS = 2


def _gpu(index: int) -> dict:
    return {"index": index, "uuid": f"GPU-{index}", "name": "NVIDIA H100 80GB HBM3", "memory_total_bytes": 80 << 30,
            "power_limit_mw": 700_000}  # fmt: skip


def _meta(run_dir: Path, status: str, ended_ns: int | None = None) -> None:
    meta = {
        "format_version": schema.FORMAT_VERSION,
        "recorder_version": "0.1.0",
        "recorder_pid": os.getpid(),
        "recorder_environment": {"hostname": HOST},
        "name": run_dir.name,
        "status": status,
        "started_ns": _meta.started_ns,  # type: ignore[attr-defined]
        "ended_ns": ended_ns,
        "command": ["train"],
        "hosts": [{"hostname": HOST, "gpus": [_gpu(index) for index in range(GPUS)]}],
        "sampling": {"interval_s": 0.01, "energy_interval_s": 0.25, "cuda_sync": True},
        "model": {"total_params": 1_000_000, "trainable_params": 1_000_000},
        "world_size": RANKS,
    }
    temporary = run_dir / "meta.json.tmp"
    temporary.write_text(json.dumps(meta))
    os.replace(temporary, run_dir / schema.META_FILE)


class LiveRun(threading.Thread):
    """Writes ``steps`` train steps of ``step_s`` seconds on two ranks, and GPU rows every 10 ms; the
    GPUs' memory fills by 1 GiB a step (60 GiB + step of 80), so later windows are short of headroom."""

    def __init__(self, run_dir: Path, steps: int = 30, step_s: float = 0.06, flush_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.run_dir, self.steps, self.step_s, self.flush_s = run_dir, steps, step_s, flush_s
        run_dir.mkdir(parents=True)
        _meta.started_ns = time.time_ns()  # type: ignore[attr-defined]
        _meta(run_dir, "running")
        self.step_ends_ns: list[int] = []

    def run(self) -> None:
        gpu = StreamWriter(self.run_dir / schema.gpu_samples_file(HOST), schema.GPU_SAMPLES_SCHEMA, self.flush_s, 10**6)
        events = [
            StreamWriter(self.run_dir / schema.events_file(HOST, rank), schema.EVENTS_SCHEMA, self.flush_s, 10**6)
            for rank in range(RANKS)
        ]
        began = time.monotonic()
        step, step_start = 1, [time.time_ns()] * RANKS
        polls = 0
        last_step_at = None
        while last_step_at is None or time.monotonic() < last_step_at + 0.1:  # samples go on past the last step
            now = time.time_ns()
            for index in range(GPUS):
                watts = 300 + 200 * math.sin(polls / 7 + index)  # varying, so that edges matter
                energy = int(polls * 4_000) if polls % 25 == 0 else None
                gpu.append((now, index, int(watts * 1e3), int(watts * 1e3), energy, (60 + step) << 30, 80 << 30,
                            80, 40, 1980 - 10 * index, 50, 70.0, 50.0, 20.0, 0))  # fmt: skip
            polls += 1
            if step <= self.steps and time.monotonic() - began >= step * self.step_s:
                for rank in range(RANKS):
                    end = time.time_ns() + rank * 2_000_000  # rank 1 ends 2 ms later
                    row = {"kind": "train_step", "rank": rank, "pid": os.getpid(), "step": step,
                           "start_ns": step_start[rank], "end_ns": end, "synced": True, "micro_batches": 1,
                           "samples": 4, "tokens": 100 + step, "loss": 1.0 / step}  # fmt: skip
                    events[rank].append(tuple(row.get(name) for name in schema.EVENTS_SCHEMA.names))
                    step_start[rank] = end
                self.step_ends_ns.append(time.time_ns() + 2_000_000)
                if step == self.steps:
                    last_step_at = time.monotonic()
                step += 1
            time.sleep(0.01)
        for writer in (gpu, *events):
            writer.close()
        _meta(self.run_dir, "complete", time.time_ns())
