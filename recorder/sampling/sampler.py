"""The NVML sampler: a thread in the ``effrec`` process (never in a training process).

Each poll reads, for every GPU of the job, the fields of :data:`efftrace.recorder.format.schema.GPU_SAMPLES_SCHEMA`
and writes them raw. Some reads are rationed because of their cost or their nature: the energy
counter (4 to 8 ms a call on H100) at most every :data:`ENERGY_INTERVAL_S`; the driver's
power-sample buffer, harvested every :data:`POWER_BUFFER_INTERVAL_S` and deduplicated by its
timestamps, so that even a slow poll yields a ~20 ms power series; a GPM sample (~300 us) every
:data:`GPM_INTERVAL_S`, the clock-event reasons every :data:`CLOCK_REASONS_INTERVAL_S` and the
temperature every :data:`TEMPERATURE_INTERVAL_S`, counted in whole
polls so that the rows carrying them fall on one regular grid. A rationed field is null in the
rows between its reads.

Every NVML call goes through :class:`FieldGuard`: a field the GPU does not support becomes null
for that GPU (logged once), a lost GPU stops being polled (logged once), and a thread that
somehow fails altogether ends sampling with a warning — never the training it watches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from efftrace.recorder.config import (
    CLOCK_REASONS_INTERVAL_S,
    ENERGY_INTERVAL_S,
    GPM_INTERVAL_S,
    POWER_BUFFER_INTERVAL_S,
    TEMPERATURE_INTERVAL_S,
    polls_per,
)
from efftrace.recorder.log import Warn, warn
from efftrace.recorder.writer import StreamWriter

MAX_CONSECUTIVE_FAILURES = 50
"""A field that fails this many polls in a row (for a reason other than 'not supported') is dropped."""

REASON_BITS_KEPT = 0xFFFF_FFFF
"""The clock-event reasons' bits the sample files keep: NVML defines its reasons in 0x1-0x400."""

GPM_METRIC_NAMES = ("NVML_GPM_METRIC_SM_UTIL", "NVML_GPM_METRIC_ANY_TENSOR_UTIL", "NVML_GPM_METRIC_DRAM_BW_UTIL")


def nvml_value(nvml: Any, value: Any, value_type: int) -> int | float:
    """Read a ``c_nvmlValue_t`` union by the type NVML says it holds."""
    if value_type == nvml.NVML_VALUE_TYPE_DOUBLE:
        return value.dVal
    if value_type == nvml.NVML_VALUE_TYPE_UNSIGNED_LONG:
        return value.ulVal
    if value_type == nvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG:
        return value.ullVal
    if value_type == nvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG:
        return value.sllVal
    if value_type == getattr(nvml, "NVML_VALUE_TYPE_SIGNED_INT", -1):
        return value.siVal
    return value.uiVal


class FieldGuard:
    """Runs one GPU's NVML reads so that no failure escapes and each kind is reported once."""

    def __init__(self, nvml: Any, gpu_index: int, warn: Warn) -> None:
        self._nvml = nvml
        self._gpu = gpu_index
        self._warn = warn
        self._failures: dict[str, int] = {}
        self.unsupported: set[str] = set()
        self.lost = False

    def read(self, name: str, call: Callable[..., Any], *args: Any, empty_on: tuple[int, ...] = ()) -> Any:
        """``call(*args)``, or None when the field is unknown now or for good."""
        if self.lost or name in self.unsupported:
            return None
        nvml = self._nvml
        try:
            value = call(*args)
        except nvml.NVMLError as error:
            code = getattr(error, "value", None)
            if code in empty_on:
                return None
            if code == nvml.NVML_ERROR_GPU_IS_LOST:
                self.lost = True
                self._warn(f"GPU {self._gpu} was lost ({error}); no more samples from it")
            elif code in (nvml.NVML_ERROR_NOT_SUPPORTED, nvml.NVML_ERROR_FUNCTION_NOT_FOUND):
                self._drop(name, f"not supported ({error})")
            else:
                self._count_failure(name, str(error))
            return None
        except (AttributeError, TypeError, OSError) as error:  # bindings older than the driver, ctypes
            self._drop(name, f"unavailable ({error})")
            return None
        if self._failures.get(name):
            self._failures[name] = 0
        return value

    def _count_failure(self, name: str, reason: str) -> None:
        failures = self._failures.get(name, 0) + 1
        self._failures[name] = failures
        if failures == 1:
            self._warn(f"GPU {self._gpu}: reading {name} failed ({reason}); null until it recovers")
        if failures >= MAX_CONSECUTIVE_FAILURES:
            self._drop(name, f"failed {failures} polls in a row")

    def _drop(self, name: str, reason: str) -> None:
        self.unsupported.add(name)
        self._warn(f"GPU {self._gpu}: {name} {reason}; recorded as null")


@dataclass(frozen=True)
class WatchedGpu:
    """One device to poll, and where each of its fields is read.

    For a whole GPU both handles are its own. For a MIG instance, memory and utilisation come from
    the instance's handle; power, energy, the power buffer, clocks and temperature exist only for the
    physical GPU (``power_handle``), and GPM activity is asked of that GPU for the instance
    (``gpm_instance``, its GPU-instance id).
    """

    number: int  # the device's number in the sample files
    handle: Any
    power_handle: Any
    gpm_supported: bool = False
    gpm_instance: int | None = None


@dataclass
class _Gpu:
    index: int
    handle: Any
    power_handle: Any
    gpm_instance: int | None
    guard: FieldGuard
    gpm_samples: list[Any] = field(default_factory=list)  # two NVML GPM samples, used in turn
    gpm_have_previous: bool = False
    gpm_request: Any = None  # one nvmlGpmMetricsGet request per GPU, reused every poll
    next_energy_s: float = 0.0
    next_buffer_s: float = 0.0
    last_buffer_us: int = 0


class GpuSampler(threading.Thread):
    """Polls every GPU of the job every ``interval_s`` seconds until :meth:`stop`."""

    def __init__(
        self,
        nvml: Any,
        gpus: list[WatchedGpu],
        samples: StreamWriter,
        power: StreamWriter,
        interval_s: float,
        warn: Warn = warn,
    ) -> None:
        super().__init__(name="efftrace-sampler", daemon=True)
        self._nvml = nvml
        self._samples = samples
        self._power = power
        self.interval_s = interval_s
        self._warn = warn
        self._stop_requested = threading.Event()
        self._gpus = [
            _Gpu(gpu.number, gpu.handle, gpu.power_handle, gpu.gpm_instance, FieldGuard(nvml, gpu.number, warn))
            for gpu in gpus
        ]
        for gpu, watched in zip(self._gpus, gpus, strict=True):
            if watched.gpm_supported:
                gpu.gpm_samples = self._allocate_gpm_samples(gpu)
        self._gpm_metric_ids = [getattr(nvml, name, None) for name in GPM_METRIC_NAMES]
        self.gpm_every = polls_per(GPM_INTERVAL_S, interval_s)
        self.temperature_every = polls_per(TEMPERATURE_INTERVAL_S, interval_s)
        self.clock_reasons_every = polls_per(CLOCK_REASONS_INTERVAL_S, interval_s)
        self.polls = 0
        self.latest_power_mw: dict[int, float] = {}  # each GPU's last power reading, for effrec --status
        self.cpu_seconds = 0.0
        self.error: str | None = None

    def stop(self, timeout: float | None = None) -> None:
        self._stop_requested.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        try:
            due = time.monotonic()
            while not self._stop_requested.is_set():
                self.poll_once()
                due += self.interval_s
                delay = due - time.monotonic()
                if delay < 0:  # fell behind (a slow NVML call): skip the missed polls
                    due = time.monotonic()
                    delay = 0.0
                self._stop_requested.wait(delay)
            self.poll_once()  # the state at the very end of the command
        except Exception as error:  # noqa: BLE001 - the training must never see this
            self.error = f"{type(error).__name__}: {error}"
            self._warn(f"the GPU sampler stopped ({self.error}); what was sampled before is kept")
        finally:
            self.cpu_seconds = time.thread_time()
            self._free_gpm_samples()

    def poll_once(self) -> None:
        nvml = self._nvml
        now_s = time.monotonic()
        read_gpm = self.polls % self.gpm_every == 0
        read_temperature = self.polls % self.temperature_every == 0
        read_reasons = self.polls % self.clock_reasons_every == 0
        for gpu in self._gpus:
            guard = gpu.guard
            if guard.lost:
                continue
            handle, physical = gpu.handle, gpu.power_handle
            time_ns = time.time_ns()
            instant = guard.read("power_instant", self._instant_power, physical)
            average = guard.read("power_avg", nvml.nvmlDeviceGetPowerUsage, physical)
            energy = None
            if now_s >= gpu.next_energy_s:
                gpu.next_energy_s = now_s + ENERGY_INTERVAL_S
                energy = guard.read("energy", nvml.nvmlDeviceGetTotalEnergyConsumption, physical)
            memory = guard.read("memory", nvml.nvmlDeviceGetMemoryInfo, handle)
            utilization = guard.read("utilization", nvml.nvmlDeviceGetUtilizationRates, handle)
            clock = guard.read("sm_clock", nvml.nvmlDeviceGetClockInfo, physical, nvml.NVML_CLOCK_SM)
            reasons = None
            if read_reasons:
                reasons = guard.read("clock_event_reasons", self._clock_event_reasons, physical)
            temperature = None
            if read_temperature:
                temperature = guard.read(
                    "temperature", nvml.nvmlDeviceGetTemperature, physical, nvml.NVML_TEMPERATURE_GPU
                )
            sm_activity = tensor_activity = dram_bw = None
            if read_gpm:
                sm_activity, tensor_activity, dram_bw = self._gpm_metrics(gpu)
            if guard.lost:
                continue
            power = instant if instant is not None else average
            if power is not None:
                self.latest_power_mw[gpu.index] = power
            self._samples.append(
                (
                    time_ns,
                    gpu.index,
                    instant,
                    average,
                    energy,
                    None if memory is None else memory.used,
                    None if memory is None else memory.total,
                    None if utilization is None else utilization.gpu,
                    None if utilization is None else utilization.memory,
                    clock,
                    temperature,
                    sm_activity,
                    tensor_activity,
                    dram_bw,
                    reasons,
                )
            )
            if now_s >= gpu.next_buffer_s:
                gpu.next_buffer_s = now_s + POWER_BUFFER_INTERVAL_S
                self._harvest_power_buffer(gpu)
        self.polls += 1

    def _instant_power(self, handle: Any) -> int | float:
        nvml = self._nvml
        (value,) = nvml.nvmlDeviceGetFieldValues(handle, [nvml.NVML_FI_DEV_POWER_INSTANT])
        if value.nvmlReturn != nvml.NVML_SUCCESS:
            raise nvml.NVMLError(value.nvmlReturn)
        return nvml_value(nvml, value.value, value.valueType)

    def _clock_event_reasons(self, handle: Any) -> int:
        """Why the clocks are below their maximum now (NVML's bit mask). Bindings before NVML 12.4
        know the call only by its old name, "throttle reasons"; the mask is the same."""
        nvml = self._nvml
        call = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        if call is None:
            call = nvml.nvmlDeviceGetCurrentClocksThrottleReasons
        return int(call(handle)) & REASON_BITS_KEPT

    def _harvest_power_buffer(self, gpu: _Gpu) -> None:
        nvml = self._nvml
        result = gpu.guard.read(
            "power_buffer",
            nvml.nvmlDeviceGetSamples,
            gpu.power_handle,
            nvml.NVML_TOTAL_POWER_SAMPLES,
            gpu.last_buffer_us,
            empty_on=(nvml.NVML_ERROR_NOT_FOUND,),  # nothing newer than last time
        )
        if not result:
            return
        value_type, samples = result
        last = gpu.last_buffer_us
        fresh = [sample for sample in samples if sample.timeStamp > last]
        if not fresh:
            return
        fresh.sort(key=lambda sample: sample.timeStamp)
        gpu.last_buffer_us = fresh[-1].timeStamp
        self._power.extend(
            (
                [sample.timeStamp * 1000 for sample in fresh],
                [gpu.index] * len(fresh),
                [nvml_value(nvml, sample.sampleValue, value_type) for sample in fresh],
            )
        )

    def _gpm_metrics(self, gpu: _Gpu) -> tuple[float | None, float | None, float | None]:
        """GPM activity over the interval since the previous GPM sample (None for the first one)."""
        nothing = (None, None, None)
        if not gpu.gpm_samples:
            return nothing
        nvml = self._nvml
        previous, current = gpu.gpm_samples
        if gpu.gpm_instance is None:
            taken = gpu.guard.read("gpm", nvml.nvmlGpmSampleGet, gpu.handle, current)
        else:
            taken = gpu.guard.read("gpm", nvml.nvmlGpmMigSampleGet, gpu.power_handle, gpu.gpm_instance, current)
        if taken is None:
            gpu.gpm_have_previous = False
            return nothing
        gpu.gpm_samples.reverse()  # this sample is the next poll's previous one
        if not gpu.gpm_have_previous:
            gpu.gpm_have_previous = True
            return nothing
        request = gpu.gpm_request
        if request is None:
            request = gpu.gpm_request = nvml.c_nvmlGpmMetricsGet_t()
            request.version = nvml.NVML_GPM_METRICS_GET_VERSION
            request.numMetrics = len(self._gpm_metric_ids)
            for slot, metric_id in enumerate(self._gpm_metric_ids):
                request.metrics[slot].metricId = metric_id or 0
        request.sample1 = previous
        request.sample2 = current
        if gpu.guard.read("gpm", nvml.nvmlGpmMetricsGet, request) is None:
            return nothing
        values = []
        for slot in range(len(self._gpm_metric_ids)):
            metric = request.metrics[slot]
            values.append(float(metric.value) if metric.nvmlReturn == nvml.NVML_SUCCESS else None)
        return values[0], values[1], values[2]

    def _allocate_gpm_samples(self, gpu: _Gpu) -> list[Any]:
        first = gpu.guard.read("gpm", self._nvml.nvmlGpmSampleAlloc)
        second = gpu.guard.read("gpm", self._nvml.nvmlGpmSampleAlloc)
        if first is None or second is None:
            return []
        return [first, second]

    def _free_gpm_samples(self) -> None:
        for gpu in self._gpus:
            for sample in gpu.gpm_samples:
                gpu.guard.read("gpm", self._nvml.nvmlGpmSampleFree, sample)
            gpu.gpm_samples = []
