"""A job recording 20 steps a second through the API: ``api_job.py SECONDS EXIT_CODE [PROGRESS]``.

It prints ``up`` once recording has started, runs for SECONDS, and exits with EXIT_CODE. With
PROGRESS, each finished step is also appended there (a line ``step end_time_ns``, flushed at
once), so a test that kills the job knows what it did and can count what the trace lost.
"""

import sys
import time

from efftrace.recorder import Recorder

seconds, code = float(sys.argv[1]), int(sys.argv[2])
progress = open(sys.argv[3], "a", buffering=1) if len(sys.argv) > 3 else None  # noqa: SIM115 - kept open until killed
with Recorder(name="api-job") as rec:
    print("up", flush=True)
    began = time.monotonic()
    step = 0
    while time.monotonic() - began < seconds:
        step += 1
        with rec.step(samples=4, tokens=400):
            time.sleep(0.05)
        if progress:
            progress.write(f"{step} {time.time_ns()}\n")
sys.exit(code)
