"""``--tensorboard``: the metrics as TensorBoard scalars beside the trainer's own curves.

One point per log window, at the window's last step and with that step's end as wall time,
under the seed's tags. The points go into one event file whose name is fixed by the run, so
running the analyzer again replaces the file instead of adding a second copy of every point.
Only TensorBoard's protobufs and record framing are used: no torch, no TensorFlow.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from efftrace.analyzer.compute.catalog import IT_TAG, where
from efftrace.analyzer.errors import TraceError
from efftrace.analyzer.result import RunMetrics
from efftrace.recorder.format.columns import to_numpy
from efftrace.recorder.format.units import NS_PER_S

EVENT_FILE_SUFFIX = ".efftrace"


def trainer_log_dir(result: RunMetrics, meta: dict) -> Path | None:
    """The trainer's own TensorBoard run directory, from what rank 0 recorded in ``meta.json``.

    A trace copied to another machine keeps the recorded absolute path; then the directory of
    the same name is looked for near the run directory (e.g. a ``trainer/runs/<name>`` beside it).
    ``meta.json`` is data from whoever sent the trace, so its path is only taken to an existing
    directory that already holds TensorBoard event files: never created, never a plain folder.
    """
    ranks = sorted(meta.get("ranks") or [], key=lambda rank: rank.get("rank", 0))
    recorded = next((rank.get("tensorboard_dir") for rank in ranks if rank.get("tensorboard_dir")), None)
    if not recorded:
        return None
    path = Path(recorded)
    if not path.is_absolute() and meta.get("cwd"):
        path = Path(meta["cwd"]) / path
    if _is_tensorboard_run(path):
        return path
    if path.name in ("", ".", "..") or any(character in path.name for character in "*?[]"):
        return None
    for base in (result.run_dir, result.run_dir.parent):
        for candidate in sorted(base.glob(f"**/runs/{path.name}")):
            if _is_tensorboard_run(candidate):
                return candidate
    return None


def target_dir(result: RunMetrics, meta: dict, given: Path | None) -> Path:
    """Where ``--tensorboard`` writes: the directory given, else the trainer's own run, else
    ``RUN_DIR/tensorboard``."""
    return given or trainer_log_dir(result, meta) or result.run_dir / "tensorboard"


def _is_tensorboard_run(path: Path) -> bool:
    """A directory holding event files that are not ours: the trainer's own TensorBoard run."""
    return path.is_dir() and any(
        not event.name.endswith(EVENT_FILE_SUFFIX) for event in path.glob("events.out.tfevents.*")
    )


def _points(result: RunMetrics) -> list[tuple[str, int, float, float]]:
    """(tag, step, wall time, value) of every finite point, in step order per tag."""
    points: list[tuple[str, int, float, float]] = []
    windows = result.windows
    if windows.num_rows and "step" in windows.column_names:
        steps = to_numpy(windows.column("step"))
        walls = to_numpy(windows.column("wall_time"))
        columns = [(entry.tensorboard, entry.key) for entry in where("tensorboard") if entry.tensorboard]
        for tag, key in columns:
            values = to_numpy(windows.column(key))
            for step, wall, value in zip(steps, walls, values, strict=True):
                if value is not None and math.isfinite(value):
                    points.append((tag, int(step), float(wall), float(value)))
    points += _inference_points(result)
    return points


def _inference_points(result: RunMetrics) -> list[tuple[str, int, float, float]]:
    """IT per generate() call; in a training run, at the last step that ended before the call."""
    calls = result.generate_calls
    if not calls.num_rows:
        return []
    ends = to_numpy(calls.column("end_ns"))
    tokens = to_numpy(calls.column("generated_tokens"))
    seconds = to_numpy(calls.column("seconds"))
    if result.windows.num_rows and "step" in result.windows.column_names:
        step_ends = to_numpy(result.windows.column("end_ns"))
        step_numbers = to_numpy(result.windows.column("step"))
        before = np.searchsorted(step_ends, ends, side="right") - 1
        at_step = np.where(before >= 0, step_numbers[np.maximum(before, 0)], 0)
    else:
        at_step = to_numpy(calls.column("call"))
    points = []
    for step in np.unique(at_step):
        chosen = at_step == step
        total, busy = np.nansum(tokens[chosen]), seconds[chosen].sum()
        if busy > 0 and not np.isnan(tokens[chosen]).all():
            points.append((IT_TAG, int(step), float(ends[chosen].max() / 1e9), float(total / busy)))
    return points


def _event_file(result: RunMetrics, log_dir: Path) -> Path:
    """The run's one event file: named by the job's start, so every writer of this run finds it."""
    started = result.summaries["job"].start_ns // int(NS_PER_S)
    return log_dir / f"events.out.tfevents.{started}{EVENT_FILE_SUFFIX}"


def _write_events(handle: BinaryIO, result: RunMetrics, header: bool, log_dir: Path) -> None:
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError:
        raise TraceError(
            log_dir, "--tensorboard needs the tensorboard package: pip install 'efftrace[analyze]'"
        ) from None
    writer = RecordWriter(handle)
    if header:
        first_wall = result.summaries["job"].start_ns / 1e9
        writer.write(event_pb2.Event(wall_time=first_wall, file_version="brain.Event:2").SerializeToString())
    for tag, step, wall, value in _points(result):
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])
        writer.write(event_pb2.Event(wall_time=wall, step=step, summary=summary).SerializeToString())
    writer.flush()


def write_tensorboard(result: RunMetrics, log_dir: Path) -> Path:
    """Write (or replace) this run's event file in ``log_dir``; returns the file written."""
    target = _event_file(result, log_dir)
    temporary = log_dir / f".{target.name}.tmp"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            _write_events(handle, result, header=True, log_dir=log_dir)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise TraceError(log_dir, f"cannot write TensorBoard events ({error.strerror or error})") from None
    return target


def append_tensorboard(result: RunMetrics, log_dir: Path) -> Path:
    """Add one live window's points to the run's event file (made if it is not there yet): the file
    the analysis after the job replaces, so in the end each step has one point."""
    target = _event_file(result, log_dir)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise TraceError(target, "--tensorboard: not a regular file; it is left as it is")
        with open(target, "ab") as handle:
            _write_events(handle, result, header=handle.tell() == 0, log_dir=log_dir)
    except OSError as error:
        raise TraceError(log_dir, f"cannot write TensorBoard events ({error.strerror or error})") from None
    return target
