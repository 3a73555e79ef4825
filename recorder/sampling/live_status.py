"""``effrec --status``: one live line on stderr (elapsed, last finished step, power drawn now).

Only when asked: a training job's own output is what users watch by default. The line reads what
is already there (the sampler's latest power reading and the events the ranks have flushed, so
the step shown lags by up to one flush) and computes nothing that goes into the trace. On a
terminal the line is rewritten in place; into a pipe or file a full line is written each time.
Like everything in effrec, a failure here stops the line, never the job.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc

from efftrace.recorder.format import schema
from efftrace.recorder.log import warn

STATUS_INTERVAL_S = 2.0


class FlushedSteps:
    """The highest ``train_step`` any rank has flushed so far.

    Each look reads only the record batches flushed since the last one: it remembers, per events
    file, where its last whole batch ended, so a long run costs no more per look than a short one.
    A batch cut off mid-write is read again, whole, at the next look.
    """

    def __init__(self, run_dir: Path) -> None:
        self._run_dir = run_dir
        self._read: dict[Path, tuple[int, int | None]] = {}  # file -> (end of its last whole batch, highest step)

    def highest(self) -> int | None:
        for path in self._run_dir.glob(f"{schema.EVENTS_PREFIX}*{schema.ARROW_SUFFIX}"):
            self._read[path] = self._read_new(path, *self._read.get(path, (0, None)))
        found = [step for _, step in self._read.values() if step is not None]
        return max(found) if found else None

    @staticmethod
    def _read_new(path: Path, offset: int, highest: int | None) -> tuple[int, int | None]:
        try:
            with pa.OSFile(str(path)) as source:
                reader = pa.ipc.open_stream(source)
                if offset:
                    source.seek(offset)
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except (StopIteration, pa.ArrowInvalid, OSError):
                        break
                    offset = source.tell()
                    steps = batch.column("step").filter(pc.equal(batch.column("kind"), "train_step"))
                    found = pc.max(steps).as_py()
                    if found is not None and (highest is None or found > highest):
                        highest = found
        except (pa.ArrowInvalid, OSError):
            pass  # not flushed yet, or being written: next time
        return offset, highest


def status_line(elapsed_s: float, step: int | None, power_w: float | None, gpus: int) -> str:
    minutes, seconds = divmod(int(elapsed_s), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"effrec: {hours}:{minutes:02d}:{seconds:02d} elapsed"]
    parts.append("no step yet" if step is None else f"step {step:,}")
    if power_w is not None:
        parts.append(f"{power_w:,.0f} W now ({gpus} GPU{'s' if gpus != 1 else ''})")
    return " · ".join(parts)


class LiveStatus(threading.Thread):
    def __init__(
        self,
        run_dir: Path,
        power_w: Callable[[], float | None],
        gpus: int,
        stream: TextIO | None = None,
        every_s: float = STATUS_INTERVAL_S,
    ) -> None:
        super().__init__(name="efftrace-status", daemon=True)
        self._steps = FlushedSteps(run_dir)
        self._power_w = power_w
        self._gpus = gpus
        self._stream = stream or sys.stderr
        self._every_s = every_s
        self._in_place = hasattr(self._stream, "isatty") and self._stream.isatty()
        self._stop_requested = threading.Event()
        self._began = time.monotonic()
        self._width = 0

    def run(self) -> None:
        try:
            while not self._stop_requested.wait(self._every_s):
                self._show()
        except Exception as error:  # noqa: BLE001 - a status line must never end the recording
            warn(f"the live status stopped ({type(error).__name__}: {error}); recording continues")

    def stop(self) -> None:
        self._stop_requested.set()
        if self.is_alive():
            self.join(timeout=5.0)
        if self._in_place and self._width:
            self._stream.write("\n")
            self._stream.flush()

    def _show(self) -> None:
        line = status_line(time.monotonic() - self._began, self._steps.highest(), self._power_w(), self._gpus)
        if self._in_place:
            self._stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
