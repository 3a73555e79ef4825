"""What each NVML read of the sampler costs on this machine: wall and CPU time per call.

    python bench/gpu/nvml_call_costs.py [REPEATS] [--spacing S]

Prints one JSON line per read (GPU 0) and one for a whole ``GpuSampler.poll_once``, so the
sampler's CPU budget (<= 1% of a core per GPU at 10 Hz, i.e. <= 1 ms per poll) can be
accounted for call by call. Back-to-back calls run warm; ``--spacing 0.1`` sleeps that long
before each call, as the sampler does, which is what a read really costs it (caches gone cold).
Several fields read in one ``nvmlDeviceGetFieldValues`` call are timed too, to see what batching saves.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pynvml

from efftrace.recorder.format import schema
from efftrace.recorder.sampling.sampler import GpuSampler, WatchedGpu
from efftrace.recorder.writer import StreamWriter


def cost(name: str, call, repeats: int, spacing_s: float) -> None:
    call()  # warm up
    wall = cpu = 0.0
    for _ in range(repeats):
        if spacing_s:
            time.sleep(spacing_s)
        began_wall, began_cpu = time.perf_counter(), time.thread_time()
        call()
        wall += time.perf_counter() - began_wall
        cpu += time.thread_time() - began_cpu
    print(
        json.dumps(
            {
                "read": name,
                "spacing_s": spacing_s,
                "calls": repeats,
                "wall_us": round(1e6 * wall / repeats, 1),
                "cpu_us": round(1e6 * cpu / repeats, 1),
            }
        )
    )


def fields(handle, *field_ids: int):
    """One nvmlDeviceGetFieldValues call for all of ``field_ids``."""
    return lambda: pynvml.nvmlDeviceGetFieldValues(handle, list(field_ids))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repeats", type=int, nargs="?", default=500)
    parser.add_argument("--spacing", type=float, default=0.0, help="seconds slept before each call")
    args = parser.parse_args()
    repeats, spacing = args.repeats, args.spacing
    rare = max(5, repeats // 25)  # the slow reads, called fewer times
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    instant, average = pynvml.NVML_FI_DEV_POWER_INSTANT, pynvml.NVML_FI_DEV_POWER_AVERAGE
    energy_field = pynvml.NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION
    cost("field POWER_INSTANT", fields(handle, instant), repeats, spacing)
    cost("fields POWER_INSTANT+POWER_AVERAGE", fields(handle, instant, average), repeats, spacing)
    cost("field TOTAL_ENERGY_CONSUMPTION", fields(handle, energy_field), rare, spacing)
    all_three = fields(handle, instant, average, energy_field)
    cost("fields POWER_INSTANT+POWER_AVERAGE+TOTAL_ENERGY", all_three, rare, spacing)
    cost("GetPowerUsage", lambda: pynvml.nvmlDeviceGetPowerUsage(handle), repeats, spacing)
    cost("GetMemoryInfo", lambda: pynvml.nvmlDeviceGetMemoryInfo(handle), repeats, spacing)
    cost("GetUtilizationRates", lambda: pynvml.nvmlDeviceGetUtilizationRates(handle), repeats, spacing)
    cost("GetClockInfo SM", lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM), repeats, spacing)
    cost(
        "GetCurrentClocksEventReasons",
        lambda: pynvml.nvmlDeviceGetCurrentClocksEventReasons(handle),
        repeats,
        spacing,
    )
    cost("GetMaxClockInfo SM", lambda: pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_SM), rare, spacing)
    cost(
        "GetTemperature",
        lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
        repeats,
        spacing,
    )
    cost("GetTotalEnergyConsumption", lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), rare, spacing)
    cost(
        "GetSamples TOTAL_POWER (whole buffer)",
        lambda: pynvml.nvmlDeviceGetSamples(handle, pynvml.NVML_TOTAL_POWER_SAMPLES, 0),
        rare,
        spacing,
    )
    sample = pynvml.nvmlGpmSampleAlloc()
    cost("GpmSampleGet", lambda: pynvml.nvmlGpmSampleGet(handle, sample), repeats, spacing)
    later = pynvml.nvmlGpmSampleAlloc()
    time.sleep(0.1)
    pynvml.nvmlGpmSampleGet(handle, later)
    request = pynvml.c_nvmlGpmMetricsGet_t()
    request.version = pynvml.NVML_GPM_METRICS_GET_VERSION
    request.numMetrics = 3
    request.sample1, request.sample2 = sample, later
    for slot, metric in enumerate(
        (pynvml.NVML_GPM_METRIC_SM_UTIL, pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL, pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL)
    ):
        request.metrics[slot].metricId = metric
    cost("GpmMetricsGet (3 metrics)", lambda: pynvml.nvmlGpmMetricsGet(request), repeats, spacing)
    with tempfile.TemporaryDirectory() as folder:
        samples = StreamWriter(Path(folder) / "g.arrow", schema.GPU_SAMPLES_SCHEMA, 2.0, 1000)
        power = StreamWriter(Path(folder) / "p.arrow", schema.POWER_SAMPLES_SCHEMA, 2.0, 10_000)
        supported = bool(pynvml.nvmlGpmQueryDeviceSupport(handle).isSupportedDevice)
        sampler = GpuSampler(pynvml, [WatchedGpu(0, handle, handle, supported)], samples, power, 0.1)
        sampler.poll_once()

        def steady_poll() -> None:
            time.sleep(0.1)  # a poll's real spacing, so the energy and buffer rations apply
            sampler.poll_once()

        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(100):
            steady_poll()
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        print(
            json.dumps(
                {
                    "read": "poll_once at 10 Hz incl. energy and buffer rations",
                    "polls": 100,
                    "cpu_us_per_poll": round(1e6 * cpu / 100, 1),
                    "cpu_pct_of_core": round(100 * cpu / wall, 3),
                }
            )
        )
        samples.close()
        power.close()
    pynvml.nvmlShutdown()


if __name__ == "__main__":
    main()
