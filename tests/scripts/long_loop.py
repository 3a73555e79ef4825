"""A training loop that runs until it is killed: 20 steps a second through the API.

Each finished step is also appended to PROGRESS (a line ``step end_time_ns``, flushed at once),
so a test that kills the job knows what it did and can count what the trace lost.
"""

import sys
import time

from recorder import Recorder

progress = open(sys.argv[1], "a", buffering=1)  # noqa: SIM115 - open for the whole (killed) run
with Recorder(name="long") as rec:
    print("up", flush=True)
    for step in range(1, 100_000):
        with rec.step(samples=4, tokens=400):
            time.sleep(0.05)
        progress.write(f"{step} {time.time_ns()}\n")
