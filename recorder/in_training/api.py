"""Recording a custom training loop: a :class:`Recorder` context and its ``step()`` windows.

    from efftrace.recorder import Recorder

    with Recorder(name="my-loop") as rec:
        for batch in loader:
            with rec.step(samples=len(batch), tokens=int(batch["attention_mask"].sum())) as step:
                loss = train_one_step(batch)
                step.loss = loss.item()

Under ``effrec`` the events go into effrec's run and effrec samples the GPUs. Without it, the
Recorder makes its own run directory and ``meta.json`` and starts a helper process
(:mod:`efftrace.recorder.sampling.process`) to sample the GPUs, so the result is the same kind of trace.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from efftrace.recorder import meta
from efftrace.recorder.config import ENV_RUN_DIR, FLUSH_INTERVAL_S, RecorderSettings, cuda_sync_enabled, profiled_steps
from efftrace.recorder.format.ranges import POLL_INTERVAL_S, parse_step_range
from efftrace.recorder.in_training import torch_probe
from efftrace.recorder.in_training.events import EventLog, current_rank, process_event_log, world_size
from efftrace.recorder.in_training.model_info import parameter_counts
from efftrace.recorder.in_training.profiler_window import ProfilerWindow
from efftrace.recorder.run_dir import create_run_dir


@dataclass
class StepRecord:
    """What the body of ``rec.step()`` may fill in before the step's event is written."""

    samples: int | None = None
    tokens: int | None = None
    loss: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None


class Recorder:
    """A recording session for code that is not a ``transformers.Trainer``."""

    def __init__(
        self,
        out: str | os.PathLike[str] = "effrec_runs",
        name: str = "custom-loop",
        interval_s: float | None = None,
        cuda_sync: bool | None = None,
        total_params: int | None = None,
        trainable_params: int | None = None,
        profile_steps: tuple[int, int] | None = None,
    ) -> None:
        """``total_params`` and ``trainable_params`` feed TT and ST (or call :meth:`describe_model`).
        ``profile_steps`` (first, last): run the PyTorch profiler over those steps, as
        ``effrec --profile-steps`` does (under effrec, its option applies when this is not given).

        Raises ValueError, before anything is recorded, for an ``interval_s`` or ``profile_steps`` out
        of range (as effrec refuses them); a bad ``EFFICIENTLLM_*`` variable is warned about instead.
        """
        settings = RecorderSettings.from_env()
        self.out = Path(out)
        self.name = name
        self.interval_s = (
            settings.interval_s if interval_s is None else float(POLL_INTERVAL_S.check("interval_s", interval_s))
        )
        self.history_size = settings.history_size
        self.cuda_sync = cuda_sync_enabled() if cuda_sync is None else cuda_sync
        self.run_dir: Path | None = None
        self._model_info: dict[str, Any] = {"total_params": total_params, "trainable_params": trainable_params}
        self._log: EventLog | None = None
        self._helper: subprocess.Popen[str] | None = None
        self._manifest: dict[str, Any] | None = None
        self._next_step = 1
        self._profile_steps = (
            profiled_steps()
            if profile_steps is None
            else parse_step_range("profile_steps", "-".join(str(step) for step in profile_steps))
        )
        self._profiler: ProfilerWindow | None = None

    def __enter__(self) -> Recorder:
        # inside an effrec run, this process's events go to effrec's run; were its events file not
        # to open there, the Recorder records a run of its own rather than fail the training loop
        log = process_event_log() if os.environ.get(ENV_RUN_DIR) else None
        if log is not None:
            self._log, self.run_dir = log, log.run_dir
        else:
            self.run_dir = create_run_dir(self.out, self.name)
            host = self._start_helper()
            self._manifest = meta.new_manifest(
                [sys.executable, *sys.argv],
                self.run_dir.name,
                {"interval_s": self.interval_s, "cuda_sync": self.cuda_sync, "flush_interval_s": FLUSH_INTERVAL_S},
                host,
                sys.argv,
            )
            meta.start(self.run_dir, self._manifest)
            self._log = EventLog(self.run_dir, current_rank(), self.history_size)
        if self._profile_steps is not None:
            log = self._log
            self._profiler = ProfilerWindow(*self._profile_steps, log.run_dir, log.host, log.rank)
        self._write_rank_info()
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        if self._log is None:
            return
        if self._profiler is not None:
            self._profiler.finish()  # the loop ended inside the window: keep what was profiled
        self._log.flush()
        if self._manifest is None or self.run_dir is None:
            return  # effrec owns the run and finalises it
        self._log.close()
        stats = self._stop_helper()
        status = "complete" if exc_type is None else ("killed" if exc_type is KeyboardInterrupt else "failed")
        meta.finalise(self.run_dir, self._manifest, status, None, stats)

    def describe_model(self, model: Any) -> None:
        """Record the model's parameter counts (total and trainable) for TT and ST."""
        total, trainable = parameter_counts(model)
        self._model_info = {"class": type(model).__name__, "total_params": total, "trainable_params": trainable}
        if self._log is not None:
            self._write_rank_info()

    def _write_rank_info(self) -> None:
        log = self._require_log()
        info = {"rank": log.rank, "world_size": world_size(), "host": log.host, "pid": os.getpid()}
        info["model"] = self._model_info
        info.update(cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"), **torch_probe.device_identity())
        log.write_rank_info(info)

    @contextlib.contextmanager
    def step(
        self, samples: int | None = None, tokens: int | None = None, step: int | None = None
    ) -> Iterator[StepRecord]:
        """Time one optimizer step; its end is taken after a CUDA synchronize unless disabled."""
        record = StepRecord(samples=samples, tokens=tokens)
        number = self._next_step if step is None else step
        if self._profiler is not None:
            self._profiler.before_step(number)
        start_ns = time.time_ns()
        yield record
        host_end_ns = time.time_ns()  # the host is done queueing; the GPU may still be working on it
        synced = torch_probe.synchronize() if self.cuda_sync else False
        end_ns = time.time_ns()
        self._next_step = number + 1
        self._require_log().write(
            "train_step",
            start_ns,
            end_ns,
            step=number,
            synced=synced,
            host_start_ns=start_ns,
            host_end_ns=host_end_ns,
            micro_batches=1,
            samples=record.samples,
            tokens=record.tokens,
            loss=record.loss,
            learning_rate=record.learning_rate,
            grad_norm=record.grad_norm,
            **torch_probe.allocator_memory(),
        )
        if self._profiler is not None:
            self._profiler.after_step(number)

    @contextlib.contextmanager
    def mark(self, name: str) -> Iterator[None]:
        """Time any named span (a data-loading phase, a checkpoint save) as a ``mark`` event."""
        start_ns = time.time_ns()
        yield
        synced = torch_probe.synchronize() if self.cuda_sync else False
        self._require_log().write("mark", start_ns, time.time_ns(), name=name, synced=synced)

    def _require_log(self) -> EventLog:
        if self._log is None:
            raise RuntimeError("use the Recorder as a context manager: with Recorder() as rec: ...")
        return self._log

    def _start_helper(self) -> dict[str, Any]:
        arguments = [str(self.run_dir), str(self.interval_s), str(self.history_size)]
        self._helper = subprocess.Popen(
            [sys.executable, "-m", "efftrace.recorder.sampling.process", *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._helper.stdout.readline() if self._helper.stdout else ""
        try:
            return json.loads(line)
        except ValueError:
            return {"nvml_error": "the sampling helper did not start"}

    def _stop_helper(self) -> dict[str, Any]:
        if self._helper is None:
            return {}
        try:
            output, _ = self._helper.communicate(input="", timeout=30)
            return json.loads(output.strip().splitlines()[-1])
        except (ValueError, IndexError, subprocess.TimeoutExpired):
            self._helper.kill()
            return {"error": "the sampling helper did not stop cleanly"}
