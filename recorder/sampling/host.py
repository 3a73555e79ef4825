"""One host's GPU sampling from start to finish: NVML, the two sample files and the sampler thread.

Used by ``effrec`` (in its own process) and by a standalone :class:`recorder.Recorder` (in a
helper process), so the training process never runs NVML polling itself. Without NVML (no
driver, no bindings, a container without the library) the run continues as an events-only
trace, with a warning.
"""

from __future__ import annotations

import os
import resource
import socket
import time
from pathlib import Path
from typing import Any

from efftrace.recorder.config import FLUSH_INTERVAL_S, POWER_FLUSH_INTERVAL_S
from efftrace.recorder.format import schema
from efftrace.recorder.log import Warn, warn
from efftrace.recorder.sampling.gpus import GpuInfo, describe, handles, text, visible_devices
from efftrace.recorder.sampling.sampler import GpuSampler, WatchedGpu
from efftrace.recorder.writer import StreamWriter


def load_nvml() -> Any:
    """The NVML bindings (the ``nvidia-ml-py`` distribution provides the ``pynvml`` module)."""
    import pynvml

    return pynvml


class HostSampling:
    """Samples this host's GPUs of the job into ``run_dir`` between :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        interval_s: float,
        history_size: int,
        cuda_visible_devices: str | None,
        nvml: Any = None,
        warn: Warn = warn,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.interval_s = interval_s
        self.history_size = history_size
        self.cuda_visible_devices = cuda_visible_devices
        self.hostname = socket.gethostname()
        self._nvml = nvml
        self._warn = warn
        self._nvml_ready = False
        self._sampler: GpuSampler | None = None
        self._writers: list[StreamWriter] = []
        self.gpus: list[GpuInfo] = []
        self.host_info: dict[str, Any] = {"hostname": self.hostname, "gpus": [], "nvml": None}

    def start(self) -> dict[str, Any]:
        """Start sampling; returns this host's entry for ``meta.json``."""
        self.host_info["clock_start"] = clock_pair()
        try:
            nvml = self._nvml if self._nvml is not None else load_nvml()
            nvml.nvmlInit()
        except Exception as error:  # noqa: BLE001 - ImportError, NVMLError, OSError alike
            self._warn(f"NVML is not available ({error}); recording training events only")
            self.host_info["nvml_error"] = str(error)
            return self.host_info
        self._nvml = nvml
        self._nvml_ready = True
        watched = []
        try:
            for device in visible_devices(nvml, self.cuda_visible_devices):
                handle, parent = handles(nvml, device)
                gpu = describe(nvml, device, handle, parent)
                gpu.gpm_supported = _gpm_supported(nvml, parent)  # a MIG instance is sampled through its GPU
                instance = None if gpu.mig is None else gpu.mig["gpu_instance_id"]
                self.gpus.append(gpu)
                watched.append(WatchedGpu(gpu.index, handle, parent, gpu.gpm_supported, instance))
        except nvml.NVMLError as error:
            self._warn(f"NVML could not list the GPUs ({error}); recording training events only")
            self.host_info["nvml_error"] = str(error)
            self.gpus = []
            return self.host_info
        self.host_info.update(
            gpus=[gpu.as_dict() for gpu in self.gpus],
            nvml=_versions(nvml),
        )
        if not self.gpus:
            self._warn("no GPU is visible to the command; recording training events only")
            return self.host_info
        samples = StreamWriter(
            self.run_dir / schema.gpu_samples_file(self.hostname),
            schema.GPU_SAMPLES_SCHEMA,
            FLUSH_INTERVAL_S,
            self.history_size,
        )
        power = StreamWriter(
            self.run_dir / schema.power_samples_file(self.hostname),
            schema.POWER_SAMPLES_SCHEMA,
            POWER_FLUSH_INTERVAL_S,
            # The driver buffer arrives ~25 rows per GPU per harvest: size batches by time, not rows.
            max(self.history_size, 10_000),
        )
        self._writers = [samples, power]
        self._sampler = GpuSampler(nvml, watched, samples, power, self.interval_s, self._warn)
        self._sampler.start()
        return self.host_info

    def power_now_w(self) -> float | None:
        """The job's GPUs' summed latest power reading (W), or None before the first one."""
        latest = dict(self._sampler.latest_power_mw) if self._sampler is not None else {}
        return sum(latest.values()) / 1e3 if latest else None

    def stop(self) -> dict[str, Any]:
        """Stop sampling, close the files; returns the sampler's own cost and health for ``meta.json``."""
        stats: dict[str, Any] = {"interval_s": self.interval_s, "gpus": len(self.gpus)}
        if self._sampler is not None:
            self._sampler.stop(timeout=10.0)
            stats.update(
                polls=self._sampler.polls,
                cpu_seconds=round(self._sampler.cpu_seconds, 6),
                error=self._sampler.error,
            )
        for writer in self._writers:
            writer.close()
            stats[f"{writer.path.name}_rows"] = writer.rows_written
            if writer.failed:
                stats.setdefault("write_failures", []).append(writer.path.name)
        if self._nvml_ready:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutting down; nothing left to protect
                pass
        self.host_info["clock_end"] = clock_pair()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        stats["process_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 6)  # this whole process
        return stats


def clock_pair() -> dict[str, int]:
    """(realtime, monotonic) read together, so a reader can detect a wall-clock step."""
    return {"realtime_ns": time.time_ns(), "monotonic_ns": time.monotonic_ns()}


def _gpm_supported(nvml: Any, handle: Any) -> bool:
    try:
        return bool(nvml.nvmlGpmQueryDeviceSupport(handle).isSupportedDevice)
    except Exception:  # noqa: BLE001 - old driver, old bindings, or not a Hopper+ GPU
        return False


def _versions(nvml: Any) -> dict[str, Any]:
    versions: dict[str, Any] = {}
    for key, call in (
        ("driver_version", "nvmlSystemGetDriverVersion"),
        ("nvml_version", "nvmlSystemGetNVMLVersion"),
        ("cuda_driver_version", "nvmlSystemGetCudaDriverVersion"),
    ):
        try:
            versions[key] = str(text(getattr(nvml, call)()))
        except Exception:  # noqa: BLE001 - informative only
            versions[key] = None
    return versions
