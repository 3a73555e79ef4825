"""Which physical GPUs a command can see, and what NVML says about each of them.

``CUDA_VISIBLE_DEVICES`` may list indices or UUIDs (full or unique prefixes, as CUDA accepts);
NVML numbers GPUs in PCI bus order, which is the CUDA order when ``CUDA_DEVICE_ORDER=PCI_BUS_ID``
(the usual cluster setting). The seed's collector watched every GPU of the host; we watch only
the job's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class GpuInfo:
    index: int  # NVML index
    uuid: str
    name: str
    memory_total_bytes: int | None
    power_limit_mw: int | None
    pci_bus_id: str | None
    gpm_supported: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def text(value: bytes | str) -> str:
    """NVML strings: bytes from older bindings, str from newer ones."""
    return value.decode() if isinstance(value, bytes) else value


def visible_indices(nvml: Any, cuda_visible_devices: str | None) -> list[int]:
    """NVML indices of the GPUs that ``CUDA_VISIBLE_DEVICES`` exposes, in CUDA order.

    Entries CUDA would stop at (an unknown index or UUID) end the list there, as CUDA does.
    """
    count = nvml.nvmlDeviceGetCount()
    if cuda_visible_devices is None:
        return list(range(count))
    uuids = [text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)]
    chosen: list[int] = []
    for entry in (part.strip() for part in cuda_visible_devices.split(",")):
        if not entry:
            break
        if entry.lstrip("-").isdigit():
            index = int(entry)
            if not 0 <= index < count:
                break
        else:
            matches = [i for i, uuid in enumerate(uuids) if uuid.startswith(entry) or uuid == f"GPU-{entry}"]
            if len(matches) != 1:
                break
            index = matches[0]
        if index in chosen:
            break
        chosen.append(index)
    return chosen


def describe(nvml: Any, index: int) -> GpuInfo:
    """Static facts about one GPU; a field NVML cannot give is None."""
    handle = nvml.nvmlDeviceGetHandleByIndex(index)

    def attempt(call: Any, *args: Any) -> Any:
        try:
            return call(handle, *args)
        except nvml.NVMLError:
            return None

    memory = attempt(nvml.nvmlDeviceGetMemoryInfo)
    pci = attempt(nvml.nvmlDeviceGetPciInfo)
    return GpuInfo(
        index=index,
        uuid=text(nvml.nvmlDeviceGetUUID(handle)),
        name=text(attempt(nvml.nvmlDeviceGetName) or "unknown"),
        memory_total_bytes=None if memory is None else int(memory.total),
        power_limit_mw=attempt(nvml.nvmlDeviceGetEnforcedPowerLimit),
        pci_bus_id=None if pci is None else text(pci.busId),
    )
