"""What one event costs a training process, and what watching for a killed effrec adds to it.

    python bench/event_write_cost.py [--events 50000] [--repeat 5] [--ranks 2]

Appends ``--events`` train-step events through :class:`EventLog` (the writer every Trainer
callback and the ``Recorder`` API use) into a scratch run directory, best of ``--repeat``, once as
recorded and once with the watch for effrec's death switched off, side by side in one process.
With ``--ranks N`` it then runs N processes at once, each writing its own rank's file into one
shared run directory as the ranks of one host do, and prints each rank's cost beside the lone
rank's: ranks share no lock and no collective, so the cost per rank should not grow with N
(while N stays within the cores).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

from efftrace.recorder.config import ENV_RECORDER_PID
from efftrace.recorder.in_training import events


def microseconds_per_event(count: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        return _write_events(Path(scratch), 0, count)


def _write_events(run_dir: Path, rank: int, count: int) -> float:
    log = events.EventLog(run_dir, rank, 1000)
    began = time.perf_counter()
    for step in range(count):
        log.write("train_step", step, step + 1, step=step)
    elapsed = time.perf_counter() - began
    log.close()
    return elapsed / count * 1e6


def _rank_cost(arguments: tuple[str, int, int, int]) -> float:
    run_dir, rank, count, repeat = arguments
    os.environ[ENV_RECORDER_PID] = str(os.getppid())
    return min(_write_events(Path(run_dir), rank, count) for _ in range(repeat))


def costs_with_ranks(ranks: int, count: int, repeat: int) -> list[float]:
    """Each of ``ranks`` concurrent processes' best cost per event, all writing into one run directory."""
    with tempfile.TemporaryDirectory() as scratch, multiprocessing.get_context("spawn").Pool(ranks) as pool:
        return pool.map(_rank_cost, [(scratch, rank, count, repeat) for rank in range(ranks)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ranks", type=int, default=0, help="also run this many ranks at once (0: skip)")
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
    if args.ranks:
        alone = costs_with_ranks(1, args.events, args.repeat)[0]
        together = costs_with_ranks(args.ranks, args.events, args.repeat)
        listed = ", ".join(f"{cost:.2f}" for cost in together)
        print(f"one rank alone: {alone:.2f} us an event; {args.ranks} ranks at once: {listed} us an event each")


if __name__ == "__main__":
    main()
