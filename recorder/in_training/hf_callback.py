"""A ``transformers.TrainerCallback`` that writes one ``train_step`` event per optimizer step.

``effrec`` adds it to every ``Trainer`` on its own (see :mod:`efftrace.recorder.in_training.hf_instrument`); code
that records without ``effrec`` can call :meth:`EffTraceCallback.install` on its trainer.

Timing: a step runs from ``on_step_begin`` (its micro-batches are already fetched) to
``on_step_end``. On a GPU both are CUDA events in the training stream (:mod:`efftrace.recorder.in_training.gpu_clock`),
so a step's end is when the GPU finished it, not when the CPU queued it, and nothing waits for
the GPU; ``--no-sync`` takes the host's clock instead. The host's clock at both hooks is written
beside them: how far the GPU trails the host at a step's end tells a host that sets the pace (the
GPU finishes as soon as the work is queued) from a GPU that does (the host queues ahead).

Loss, learning rate and grad norm are logged by the Trainer *after* ``on_step_end``, so a step's
event is held open until the next step begins (or training ends) to pick them up, and written once
the GPU has passed its end.

Nothing in here may break a training run: every hook is guarded, warns once and then stops
recording for this process.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback

from efftrace.recorder.config import cuda_sync_enabled, profiled_steps
from efftrace.recorder.in_training import torch_probe
from efftrace.recorder.in_training.events import EventLog, process_event_log
from efftrace.recorder.in_training.gpu_clock import GpuClock, GpuMark
from efftrace.recorder.in_training.model_info import library_versions, parameter_counts
from efftrace.recorder.in_training.profiler_window import ProfilerWindow
from efftrace.recorder.log import warn


def _guarded(hook: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(hook)
    def run(self: EffTraceCallback, *args: Any, **kwargs: Any) -> Any:
        if self.disabled:
            return None
        try:
            return hook(self, *args, **kwargs)
        except Exception as error:  # noqa: BLE001 - recording must never stop training
            self.disabled = True
            warn(f"step recording stopped in {hook.__name__} ({type(error).__name__}: {error}); training continues")
            return None

    return run


TimePoint = int | GpuMark
"""A step boundary: host wall-clock ns, or a mark in the GPU's queue read once the GPU passed it."""


def _wall_ns(point: TimePoint) -> int:
    return GpuClock.wall_ns(point) if isinstance(point, GpuMark) else point


@dataclass
class _Step:
    step: int
    start: TimePoint
    end: TimePoint
    host_start_ns: int  # the host's clock at the hooks, beside the GPU's where start/end are GPU marks
    host_end_ns: int
    tally: torch_probe.TokenTally
    memory: dict[str, int | None]
    loss: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None


class EffTraceCallback(TrainerCallback):
    """Records optimizer steps, evaluations and the trainer's setup of one process."""

    def __init__(self, event_log: EventLog | None = None, cuda_sync: bool | None = None) -> None:
        self._log = event_log
        self.cuda_sync = cuda_sync_enabled() if cuda_sync is None else cuda_sync
        self.disabled = False
        self._trainer: Any = None
        self._tally = torch_probe.TokenTally()
        self._clock: GpuClock | None = None
        self._step_start: TimePoint | None = None
        self._step_host_start_ns = 0
        self._open: _Step | None = None
        self._unresolved: deque[_Step] = deque()
        self._tokens_seen = 0
        self._described = False
        self._profiler: ProfilerWindow | None = None

    @classmethod
    def install(cls, trainer: Any, **kwargs: Any) -> EffTraceCallback:
        """Add the callback to ``trainer`` (once) and count the tokens of every micro-batch it trains on."""
        for callback in trainer.callback_handler.callbacks:
            if isinstance(callback, cls):
                return callback
        callback = cls(**kwargs)
        callback._trainer = trainer
        trainer.add_callback(callback)
        training_step = trainer.training_step

        @functools.wraps(training_step)
        def counting_training_step(model: Any, inputs: Any, *args: Any, **kw: Any) -> Any:
            if not callback.disabled:
                try:
                    callback._tally.add(inputs)
                except Exception:  # noqa: BLE001 - an odd batch leaves the step uncounted
                    pass
            return training_step(model, inputs, *args, **kw)

        trainer.training_step = counting_training_step
        evaluate = trainer.evaluate

        @functools.wraps(evaluate)
        def timed_evaluate(*args: Any, **kw: Any) -> Any:
            callback.describe_without_training()
            start_ns = time.time_ns()
            result = evaluate(*args, **kw)
            callback._record_eval(start_ns)
            return result

        trainer.evaluate = timed_evaluate
        predict = trainer.predict

        @functools.wraps(predict)
        def described_predict(*args: Any, **kw: Any) -> Any:
            callback.describe_without_training()
            return predict(*args, **kw)

        trainer.predict = described_predict
        save_checkpoint = getattr(trainer, "_save_checkpoint", None)
        if save_checkpoint is not None:  # a Trainer method since transformers 4.x; absent: saves go unrecorded

            @functools.wraps(save_checkpoint)
            def timed_save_checkpoint(*args: Any, **kw: Any) -> Any:
                start_ns = time.time_ns()
                result = save_checkpoint(*args, **kw)
                callback._record_span("checkpoint", start_ns)
                return result

            trainer._save_checkpoint = timed_save_checkpoint
        return callback

    # -- Trainer hooks -------------------------------------------------------------------------

    @_guarded
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._describe(args, state, model)

    @_guarded
    def describe_without_training(self) -> None:
        """Write this process's setup for a run that only evaluates or predicts (no ``on_train_begin``)."""
        if not self._described and self._trainer is not None:
            trainer = self._trainer
            self._describe(trainer.args, trainer.state, getattr(trainer, "model", None))

    def _describe(self, args: Any, state: Any, model: Any) -> None:
        if self._log is None:
            self._log = process_event_log(rank=int(getattr(args, "process_index", 0)))
        if self._log is None:
            self.disabled = True  # neither under effrec nor given a log: nothing to record into
            return
        self._described = True
        info: dict[str, Any] = {
            "rank": self._log.rank,
            "local_rank": int(getattr(args, "local_process_index", 0)),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            **torch_probe.device_identity(),
            "world_size": int(getattr(args, "world_size", 1)),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "cuda_sync": self.cuda_sync,
            "versions": library_versions(),
            "output_dir": getattr(args, "output_dir", None),
            "tensorboard_dir": self._tensorboard_dir(),
            "report_to": getattr(args, "report_to", None),
            "per_device_train_batch_size": getattr(args, "per_device_train_batch_size", None),
            "per_device_eval_batch_size": getattr(args, "per_device_eval_batch_size", None),
            "gradient_accumulation_steps": getattr(args, "gradient_accumulation_steps", None),
            "gradient_checkpointing": getattr(args, "gradient_checkpointing", None),
            "logging_steps": getattr(args, "logging_steps", None),
            "max_steps": getattr(state, "max_steps", None),
            "bf16": getattr(args, "bf16", None),
            "fp16": getattr(args, "fp16", None),
        }
        if model is not None:
            total, trainable = parameter_counts(model)
            config = getattr(model, "config", None)
            info["model"] = {
                "class": type(model).__name__,
                "name_or_path": getattr(config, "_name_or_path", None),
                "total_params": total,
                "trainable_params": trainable,
                "hidden_size": getattr(config, "hidden_size", None),
                "num_hidden_layers": getattr(config, "num_hidden_layers", None),
                "num_attention_heads": getattr(config, "num_attention_heads", None),
                "dtype": str(getattr(config, "torch_dtype", None) or getattr(config, "dtype", None)),
            }
        self._log.write_rank_info(info)
        self._tokens_seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        window = profiled_steps()
        if window is not None:
            self._profiler = ProfilerWindow(*window, self._log.run_dir, self._log.host, self._log.rank)

    @_guarded
    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._close_open_step()
        if self._profiler is not None:
            self._profiler.before_step(int(state.global_step) + 1)  # the step about to run
        self._step_start = self._now()
        self._step_host_start_ns = _host_ns(self._step_start)

    @_guarded
    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._log is None or self._step_start is None:
            return
        end = self._now()
        host_end_ns = _host_ns(end)
        tally, self._tally = self._tally, torch_probe.TokenTally()
        if not tally.counted:  # plain add_callback(): fall back on the Trainer's own token count
            seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
            if seen > self._tokens_seen:
                tally.add_tokens(seen - self._tokens_seen)
            self._tokens_seen = seen
        tally.start_host_copy()
        self._open = _Step(
            step=int(state.global_step),
            start=self._step_start,
            end=end,
            host_start_ns=self._step_host_start_ns,
            host_end_ns=host_end_ns,
            tally=tally,
            memory=torch_probe.allocator_memory(),
        )
        self._step_start = None
        if self._profiler is not None:
            self._profiler.after_step(int(state.global_step))

    @_guarded
    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        step = self._open
        if step is None or not logs or step.step != state.global_step:
            return
        # The end-of-training summary is logged at the last step too, without these keys.
        for key in ("loss", "learning_rate", "grad_norm"):
            value = _number(logs.get(key))
            if value is not None:
                setattr(step, key, value)

    @_guarded
    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._profiler is not None:
            self._profiler.finish()  # training ended inside the window: keep what was profiled
        self._close_open_step()
        self._write_resolved(wait=True)
        if self._log is not None:
            self._log.flush()

    # -- internals ------------------------------------------------------------------------------

    def _record_eval(self, start_ns: int) -> None:
        self._record_span("eval", start_ns)

    def _record_span(self, kind: str, start_ns: int) -> None:
        """An evaluation pass or a checkpoint save, from ``start_ns`` to now (after the GPU is done)."""
        if self.disabled or self._log is None:
            return
        try:
            synced = torch_probe.synchronize() if self.cuda_sync else False
            self._log.write(kind, start_ns, time.time_ns(), synced=synced)
        except Exception as error:  # noqa: BLE001 - a lost span, never a failed save or evaluation
            warn(f"could not record a {kind} span ({error})")

    def _close_open_step(self) -> None:
        if self._open is not None:
            self._unresolved.append(self._open)
            self._open = None
        self._write_resolved(wait=False)

    def _now(self) -> TimePoint:
        """This moment in the GPU's queue where step ends are GPU-side, else on the host's clock."""
        if self.cuda_sync and self._clock is None:
            self._clock = torch_probe.gpu_clock()  # None until the process has used its GPU
        return time.time_ns() if self._clock is None else self._clock.mark()

    def _write_resolved(self, wait: bool) -> None:
        """Write, in order, the steps the GPU has finished and whose token counts are known."""
        log = self._log
        if log is None:
            return  # not set up yet (set-up failed): the callback records nothing
        while self._unresolved and (wait or _resolved(self._unresolved[0])):
            step = self._unresolved.popleft()
            log.write(
                "train_step",
                _wall_ns(step.start),
                _wall_ns(step.end),
                step=step.step,
                synced=isinstance(step.end, GpuMark),
                host_start_ns=step.host_start_ns,
                host_end_ns=step.host_end_ns,
                micro_batches=step.tally.micro_batches or None,
                samples=step.tally.resolved_samples(),
                tokens=step.tally.resolve(),
                loss=step.loss,
                learning_rate=step.learning_rate,
                grad_norm=step.grad_norm,
                **step.memory,
            )

    def _tensorboard_dir(self) -> str | None:
        """Where the Trainer's own TensorBoard callback writes, so effanalyze can write beside it."""
        if self._trainer is None:
            return None
        for callback in self._trainer.callback_handler.callbacks:
            logging_dir = getattr(callback, "logging_dir", None)
            if type(callback).__name__ == "TensorBoardCallback" and logging_dir:
                return os.path.abspath(logging_dir)
        return None


def _host_ns(point: TimePoint) -> int:
    """The host's clock at ``point``: the point itself where it is the host's, else now (a GPU mark is
    queued in microseconds, so now is when the host got there)."""
    return point if isinstance(point, int) else time.time_ns()


def _resolved(step: _Step) -> bool:
    return step.tally.ready() and (not isinstance(step.end, GpuMark) or GpuClock.passed(step.end))


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
