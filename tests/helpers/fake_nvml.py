"""An in-process stand-in for the ``pynvml`` module, for the sampler's logic only.

It answers the calls the sampler makes with scripted values, raises the errors real NVML raises
(NOT_SUPPORTED, GPU_IS_LOST, NOT_FOUND for an empty sample buffer), and counts calls, so tests can
check rationing and fault handling. Real GPU behaviour is proven by the traces in sample_traces/.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import pynvml

NVML_SUCCESS = pynvml.NVML_SUCCESS
NVML_ERROR_NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
NVML_ERROR_GPU_IS_LOST = pynvml.NVML_ERROR_GPU_IS_LOST
NVML_ERROR_NOT_FOUND = pynvml.NVML_ERROR_NOT_FOUND
NVML_ERROR_UNKNOWN = pynvml.NVML_ERROR_UNKNOWN
NVML_ERROR_FUNCTION_NOT_FOUND = pynvml.NVML_ERROR_FUNCTION_NOT_FOUND
NVML_ERROR_LIBRARY_NOT_FOUND = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
NVMLError = pynvml.NVMLError
NVML_VALUE_TYPE_UNSIGNED_INT = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
NVML_VALUE_TYPE_DOUBLE = pynvml.NVML_VALUE_TYPE_DOUBLE
NVML_VALUE_TYPE_UNSIGNED_LONG = pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG
NVML_VALUE_TYPE_UNSIGNED_LONG_LONG = pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
NVML_VALUE_TYPE_SIGNED_LONG_LONG = pynvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG
NVML_FI_DEV_POWER_INSTANT = pynvml.NVML_FI_DEV_POWER_INSTANT
NVML_POWER_SCOPE_GPU = pynvml.NVML_POWER_SCOPE_GPU
NVML_POWER_SCOPE_MODULE = pynvml.NVML_POWER_SCOPE_MODULE
NVML_DEVICE_MIG_ENABLE = pynvml.NVML_DEVICE_MIG_ENABLE
NVML_DEVICE_MIG_DISABLE = pynvml.NVML_DEVICE_MIG_DISABLE
NVML_TOTAL_POWER_SAMPLES = pynvml.NVML_TOTAL_POWER_SAMPLES
NVML_CLOCK_SM = pynvml.NVML_CLOCK_SM
NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
NVML_GPM_METRICS_GET_VERSION = pynvml.NVML_GPM_METRICS_GET_VERSION
NVML_GPM_METRIC_SM_UTIL = pynvml.NVML_GPM_METRIC_SM_UTIL
NVML_GPM_METRIC_ANY_TENSOR_UTIL = pynvml.NVML_GPM_METRIC_ANY_TENSOR_UTIL
NVML_GPM_METRIC_DRAM_BW_UTIL = pynvml.NVML_GPM_METRIC_DRAM_BW_UTIL


@dataclass
class FakeGpu:
    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    power_mw: int = 300_000
    energy_mj: int = 1_000_000
    memory_used: int = 10 << 30
    memory_total: int = 80 << 30
    util_gpu: int = 90
    util_mem: int = 40
    gpm: bool = True
    unsupported: set[str] = field(default_factory=set)  # call names that raise NOT_SUPPORTED
    failing: dict[str, int] = field(default_factory=dict)  # call name -> NVML error code
    slow: dict[str, float] = field(default_factory=dict)  # call name -> seconds each call takes
    lost: bool = False
    buffer: list[tuple[int, int]] = field(default_factory=list)  # (timestamp us, mW)
    module_power_mw: int | None = None  # a superchip module's power (GH200); None: a discrete GPU
    mig: list[FakeMig | None] = field(default_factory=list)  # MIG slots (None: an empty slot); [] = MIG off
    clock_event_reasons: int = 0  # NVML's bit mask: 0 is none (clocks at their maximum)


@dataclass
class FakeMig:
    """One MIG instance: its own memory and GPM activity; NVML refuses it power, energy and utilisation."""

    uuid: str
    gpu_instance_id: int
    name: str = "NVIDIA H100 80GB HBM3 MIG 3g.40gb"
    memory_used: int = 4 << 30
    memory_total: int = 40 << 30
    sm_activity: float = 55.0


@dataclass(frozen=True)
class MigHandle:
    parent: int
    slot: int


class _Value:
    def __init__(self, ui: int = 0, d: float = 0.0) -> None:
        self.uiVal = ui
        self.dVal = d
        self.ulVal = self.ullVal = self.sllVal = self.siVal = ui


class FakeNvml:
    """Module-like object: pass it wherever the sampler takes ``nvml``."""

    def __init__(self, gpus: list[FakeGpu], init_error: int | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.calls: dict[str, int] = {}
        for name, value in globals().items():
            if name.startswith("NVML"):
                setattr(self, name, value)

    def _call(self, name: str, handle: int | MigHandle) -> FakeGpu:
        self.calls[name] = self.calls.get(name, 0) + 1
        if isinstance(handle, MigHandle):  # what real NVML answers for a MIG instance
            if name not in ("nvmlDeviceGetMemoryInfo", "nvmlDeviceGetName", "nvmlDeviceGetUUID"):
                raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
            return self._mig(handle)  # type: ignore[return-value]
        gpu = self.gpus[handle]
        if name in gpu.slow:
            time.sleep(gpu.slow[name])
        if gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        if name in gpu.unsupported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        if name in gpu.failing:
            raise NVMLError(gpu.failing[name])
        return gpu

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def _mig(self, handle: MigHandle) -> FakeMig:
        instance = self.gpus[handle.parent].mig[handle.slot]
        assert instance is not None
        return instance

    def nvmlDeviceGetUUID(self, handle: int | MigHandle) -> str:
        return self._mig(handle).uuid if isinstance(handle, MigHandle) else self.gpus[handle].uuid

    def nvmlDeviceGetName(self, handle: int | MigHandle) -> str:
        return self._mig(handle).name if isinstance(handle, MigHandle) else self.gpus[handle].name

    def nvmlDeviceGetMigMode(self, handle: int) -> list[int]:
        mode = NVML_DEVICE_MIG_ENABLE if self.gpus[handle].mig else NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: int) -> int:
        return 7 if self.gpus[handle].mig else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: int, slot: int) -> MigHandle:
        slots = self.gpus[handle].mig
        if slot >= len(slots) or slots[slot] is None:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return MigHandle(handle, slot)

    def nvmlDeviceGetGpuInstanceId(self, handle: MigHandle) -> int:
        return self._mig(handle).gpu_instance_id

    def nvmlDeviceGetPciInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(busId=f"00000000:{handle + 1:02X}:00.0".encode())

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return 700_000

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.00.00"

    def nvmlSystemGetNVMLVersion(self) -> str:
        return "13.580.00"

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return 13000

    def nvmlDeviceGetFieldValues(self, handle: int, field_ids: list[int]) -> list[SimpleNamespace]:
        gpu = self._call("nvmlDeviceGetFieldValues", handle)
        values = []
        for entry in field_ids:
            field_id, scope = entry if isinstance(entry, tuple) else (entry, NVML_POWER_SCOPE_GPU)
            power = gpu.power_mw + 7 if scope == NVML_POWER_SCOPE_GPU else gpu.module_power_mw
            values.append(
                SimpleNamespace(
                    fieldId=field_id,
                    scopeId=scope,
                    nvmlReturn=NVML_SUCCESS if power is not None else NVML_ERROR_NOT_SUPPORTED,
                    valueType=NVML_VALUE_TYPE_UNSIGNED_INT,
                    value=_Value(power or 0),
                )
            )
        return values

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return self._call("nvmlDeviceGetPowerUsage", handle).power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        return self._call("nvmlDeviceGetTotalEnergyConsumption", handle).energy_mj

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        gpu = self._call("nvmlDeviceGetMemoryInfo", handle)
        return SimpleNamespace(used=gpu.memory_used, total=gpu.memory_total, free=gpu.memory_total - gpu.memory_used)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        gpu = self._call("nvmlDeviceGetUtilizationRates", handle)
        return SimpleNamespace(gpu=gpu.util_gpu, memory=gpu.util_mem)

    def nvmlDeviceGetClockInfo(self, handle: int, clock: int) -> int:
        self._call("nvmlDeviceGetClockInfo", handle)
        return 1980

    def nvmlDeviceGetMaxClockInfo(self, handle: int, clock: int) -> int:
        self._call("nvmlDeviceGetMaxClockInfo", handle)
        return 1980

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        return self._call("nvmlDeviceGetCurrentClocksEventReasons", handle).clock_event_reasons

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        self._call("nvmlDeviceGetTemperature", handle)
        return 45

    def nvmlDeviceGetSamples(self, handle: int, sample_type: int, last_seen_us: int) -> tuple[int, list]:
        gpu = self._call("nvmlDeviceGetSamples", handle)
        # Like the driver: everything newer than last_seen, or NOT_FOUND when there is nothing.
        fresh = [(ts, mw) for ts, mw in gpu.buffer if ts > last_seen_us]
        if not fresh:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return NVML_VALUE_TYPE_UNSIGNED_INT, [SimpleNamespace(timeStamp=ts, sampleValue=_Value(mw)) for ts, mw in fresh]

    def nvmlGpmQueryDeviceSupport(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(isSupportedDevice=int(self.gpus[handle].gpm))

    def nvmlGpmSampleAlloc(self) -> SimpleNamespace:
        return SimpleNamespace(taken_at=None)

    def nvmlGpmSampleFree(self, sample: SimpleNamespace) -> None:
        pass

    def nvmlGpmSampleGet(self, handle: int, sample: SimpleNamespace) -> SimpleNamespace:
        self._call("nvmlGpmSampleGet", handle)
        sample.taken_at = time.monotonic()
        sample.sm_activity = 80.0
        return sample

    def nvmlGpmMigSampleGet(self, handle: int, gpu_instance_id: int, sample: SimpleNamespace) -> SimpleNamespace:
        gpu = self._call("nvmlGpmMigSampleGet", handle)
        (instance,) = [mig for mig in gpu.mig if mig is not None and mig.gpu_instance_id == gpu_instance_id]
        sample.taken_at = time.monotonic()
        sample.sm_activity = instance.sm_activity
        return sample

    class c_nvmlGpmMetricsGet_t:
        def __init__(self) -> None:
            self.version = 0
            self.numMetrics = 0
            self.sample1 = self.sample2 = None
            self.metrics = [SimpleNamespace(metricId=0, nvmlReturn=NVML_SUCCESS, value=0.0) for _ in range(8)]

    def nvmlGpmMetricsGet(self, request: c_nvmlGpmMetricsGet_t) -> c_nvmlGpmMetricsGet_t:
        assert request.sample1.taken_at < request.sample2.taken_at, "samples must be in time order"
        values = {
            NVML_GPM_METRIC_SM_UTIL: request.sample2.sm_activity,
            NVML_GPM_METRIC_ANY_TENSOR_UTIL: 60.0,
            NVML_GPM_METRIC_DRAM_BW_UTIL: 30.0,
        }
        for metric in request.metrics[: request.numMetrics]:
            metric.value = values[metric.metricId]
        return request
