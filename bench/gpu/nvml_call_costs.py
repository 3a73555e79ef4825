"""What each NVML read of the sampler costs on this machine: wall and CPU time per call.

    python bench/gpu/nvml_call_costs.py [REPEATS]

Prints one JSON line per read (GPU 0) and one for a whole ``GpuSampler.poll_once``, so the
sampler's CPU budget (<= 1% of a core per GPU at 10 Hz, i.e. <= 1 ms per poll) can be
accounted for call by call.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import pynvml

from recorder import schema
from recorder.sampler import GpuSampler
from recorder.writer import StreamWriter


def cost(name: str, call, repeats: int) -> None:
    call()  # warm up
    wall, cpu = time.perf_counter(), time.thread_time()
    for _ in range(repeats):
        call()
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    print(
        json.dumps(
            {
                "read": name,
                "calls": repeats,
                "wall_us": round(1e6 * wall / repeats, 1),
                "cpu_us": round(1e6 * cpu / repeats, 1),
            }
        )
    )


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    cost(
        "field POWER_INSTANT",
        lambda: pynvml.nvmlDeviceGetFieldValues(handle, [pynvml.NVML_FI_DEV_POWER_INSTANT]),
        repeats,
    )
    cost("GetPowerUsage", lambda: pynvml.nvmlDeviceGetPowerUsage(handle), repeats)
    cost("GetMemoryInfo", lambda: pynvml.nvmlDeviceGetMemoryInfo(handle), repeats)
    cost("GetUtilizationRates", lambda: pynvml.nvmlDeviceGetUtilizationRates(handle), repeats)
    cost("GetClockInfo SM", lambda: pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM), repeats)
    cost("GetTemperature", lambda: pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU), repeats)
    cost("GetTotalEnergyConsumption", lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), 20)
    cost(
        "GetSamples TOTAL_POWER (whole buffer)",
        lambda: pynvml.nvmlDeviceGetSamples(handle, pynvml.NVML_TOTAL_POWER_SAMPLES, 0),
        50,
    )
    sample = pynvml.nvmlGpmSampleAlloc()
    cost("GpmSampleGet", lambda: pynvml.nvmlGpmSampleGet(handle, sample), repeats)
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
    cost("GpmMetricsGet (3 metrics)", lambda: pynvml.nvmlGpmMetricsGet(request), repeats)
    with tempfile.TemporaryDirectory() as folder:
        samples = StreamWriter(Path(folder) / "g.arrow", schema.GPU_SAMPLES_SCHEMA, 2.0, 1000)
        power = StreamWriter(Path(folder) / "p.arrow", schema.POWER_SAMPLES_SCHEMA, 2.0, 10_000)
        supported = bool(pynvml.nvmlGpmQueryDeviceSupport(handle).isSupportedDevice)
        sampler = GpuSampler(pynvml, [(0, handle, supported)], samples, power, 0.1)
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
