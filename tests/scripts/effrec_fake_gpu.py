"""``effrec`` with an in-process fake NVML (one H100 that answers every call): for tests that need
GPU samples written while a real job runs on a machine without a GPU.

    python effrec_fake_gpu.py EFFREC_ARGS...
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import efftrace.recorder.sampling.host as host
from efftrace.recorder.cli import main
from helpers.fake_nvml import FakeGpu, FakeNvml

host.load_nvml = lambda: FakeNvml([FakeGpu("GPU-aaaa")])
sys.argv[0] = "effrec"
main()
