"""Where the sampler thread's CPU goes, NVML call by NVML call, at a real poll spacing.

    python bench/gpu/poll_profile.py [--seconds 30] [--interval 0.1] [--energy-interval S] [--buffer-interval S]
        [--cprofile]

Runs ``GpuSampler.poll_once`` on every visible GPU at ``--interval`` for ``--seconds`` (sleeping
between polls, as the sampler thread does), with each pynvml function it calls wrapped to add up
its own thread CPU time. Prints one JSON line: CPU per second of recording for the whole poll,
for each NVML function, and for the rest (our Python, the row append). Writers go to a
temporary directory and their flusher threads are not counted, as in ``effrec``'s own figure.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import pstats
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pynvml

import efftrace.recorder.sampling.sampler
from efftrace.recorder.format import schema
from efftrace.recorder.sampling.sampler import GpuSampler, WatchedGpu
from efftrace.recorder.writer import StreamWriter

WRAPPED = (
    "nvmlDeviceGetFieldValues",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetTotalEnergyConsumption",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetClockInfo",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetSamples",
    "nvmlGpmSampleGet",
    "nvmlGpmMetricsGet",
)


class TimedNvml:
    """pynvml with the sampler's calls timed in thread CPU seconds; everything else passed through."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def __getattr__(self, name: str):
        target = getattr(pynvml, name)
        if name not in WRAPPED:
            return target

        @functools.wraps(target)
        def timed(*args, **kwargs):
            began = time.thread_time()
            try:
                return target(*args, **kwargs)
            finally:
                self.cpu[name] += time.thread_time() - began
                self.calls[name] += 1

        setattr(self, name, timed)  # later lookups skip __getattr__, so the wrapper costs little
        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--energy-interval", type=float, default=efftrace.recorder.sampling.sampler.ENERGY_INTERVAL_S)
    parser.add_argument(
        "--buffer-interval", type=float, default=efftrace.recorder.sampling.sampler.POWER_BUFFER_INTERVAL_S
    )
    parser.add_argument("--cprofile", action="store_true", help="also print the polls' top functions by own time")
    args = parser.parse_args()
    efftrace.recorder.sampling.sampler.ENERGY_INTERVAL_S = args.energy_interval
    efftrace.recorder.sampling.sampler.POWER_BUFFER_INTERVAL_S = args.buffer_interval
    pynvml.nvmlInit()
    nvml = TimedNvml()
    gpus = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        gpus.append(WatchedGpu(index, handle, handle, bool(pynvml.nvmlGpmQueryDeviceSupport(handle).isSupportedDevice)))
    with tempfile.TemporaryDirectory() as folder:
        samples = StreamWriter(Path(folder) / "g.arrow", schema.GPU_SAMPLES_SCHEMA, 2.0, 1000)
        power = StreamWriter(Path(folder) / "p.arrow", schema.POWER_SAMPLES_SCHEMA, 2.0, 10_000)
        sampler = GpuSampler(nvml, gpus, samples, power, args.interval)
        sampler.poll_once()
        nvml.cpu.clear()
        nvml.calls.clear()
        polls = int(args.seconds / args.interval)
        profile = cProfile.Profile() if args.cprofile else None
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(polls):
            time.sleep(args.interval)
            if profile:
                profile.runcall(sampler.poll_once)
            else:
                sampler.poll_once()
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        if profile:
            pstats.Stats(profile).sort_stats("tottime").print_stats(15)
        samples.close()
        power.close()
    pynvml.nvmlShutdown()
    per_second = {name: round(1e3 * spent / wall, 3) for name, spent in sorted(nvml.cpu.items())}
    print(
        json.dumps(
            {
                "gpus": len(gpus),
                "interval_s": args.interval,
                "energy_interval_s": args.energy_interval,
                "buffer_interval_s": args.buffer_interval,
                "polls": polls,
                "poll_cpu_ms_per_s": round(1e3 * cpu / wall, 3),
                "pct_of_core_per_gpu": round(100 * cpu / wall / len(gpus), 3),
                "nvml_cpu_ms_per_s": per_second,
                "nvml_calls": dict(sorted(nvml.calls.items())),
                "rest_cpu_ms_per_s": round(1e3 * (cpu - sum(nvml.cpu.values())) / wall, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
