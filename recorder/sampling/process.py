"""``python -m efftrace.recorder.sampling.process RUN_DIR INTERVAL HISTORY_SIZE``: GPU sampling for the API.

A :class:`recorder.Recorder` used without ``effrec`` starts this helper so that NVML polling
stays out of the training process, as it does under ``effrec``. The helper prints its host
entry as one JSON line when sampling has started, samples until its stdin closes (the
recorder exits, or dies: either way the pipe closes), then prints its statistics and exits.
"""

from __future__ import annotations

import json
import os
import sys

from efftrace.recorder.sampling.host import HostSampling


def main(argv: list[str]) -> int:
    run_dir, interval, history_size = argv[0], float(argv[1]), int(argv[2])
    sampling = HostSampling(run_dir, interval, history_size, os.environ.get("CUDA_VISIBLE_DEVICES"))
    print(json.dumps(sampling.start()), flush=True)
    sys.stdin.read()  # returns at EOF
    print(json.dumps(sampling.stop()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
