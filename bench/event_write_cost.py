"""What one event costs a training process, and what watching for a killed effrec adds to it.

    python bench/event_write_cost.py [--events 50000] [--repeat 5]

Appends ``--events`` train-step events through :class:`EventLog` (the writer every Trainer
callback and the ``Recorder`` API use) into a scratch run directory, best of ``--repeat``, once as
recorded and once with the watch for effrec's death switched off, side by side in one process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from efftrace.recorder.config import ENV_RECORDER_PID
from efftrace.recorder.in_training import events


def microseconds_per_event(count: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        log = events.EventLog(Path(scratch), 0, 1000)
        began = time.perf_counter()
        for step in range(count):
            log.write("train_step", step, step + 1, step=step)
        elapsed = time.perf_counter() - began
        log.close()
    return elapsed / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ[ENV_RECORDER_PID] = str(os.getpid())  # as under effrec: a live recorder to watch
    watched = min(microseconds_per_event(args.events) for _ in range(args.repeat))
    original = events._RecorderWatch.look
    events._RecorderWatch.look = lambda self: None
    try:
        unwatched = min(microseconds_per_event(args.events) for _ in range(args.repeat))
    finally:
        events._RecorderWatch.look = original
    print(f"EventLog.write: {watched:.2f} us an event as recorded, {unwatched:.2f} us without the effrec watch")
    print(f"the watch adds {watched - unwatched:.2f} us an event (one time check; an os.kill(pid, 0) every 2 s)")


if __name__ == "__main__":
    main()
