"""A short job through the API that ends with the exit code it is given: ``short_job.py SECONDS CODE``."""

import sys
import time

from recorder import Recorder

seconds, code = float(sys.argv[1]), int(sys.argv[2])
with Recorder(name="short") as rec:
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        with rec.step(samples=4, tokens=400):
            time.sleep(0.05)
sys.exit(code)
