"""Which GPUs (or MIG instances of them) a command can see, and what NVML says about each of them.

``CUDA_VISIBLE_DEVICES`` may list indices or UUIDs (full or unique prefixes, as CUDA accepts), or
MIG instances by their ``MIG-…`` UUID, as schedulers hand out slices of a GPU;
NVML numbers GPUs in PCI bus order, which is the CUDA order when ``CUDA_DEVICE_ORDER=PCI_BUS_ID``
(the usual cluster setting). The seed's collector watched every GPU of the host; we watch only
the job's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MIG_NUMBER_BASE = 100
"""A MIG instance's number in the sample files: ``100 * (parent NVML index + 1) + its MIG slot``.

NVML gives MIG instances no index of their own; this keeps every sampled device's number unique on a
host, tells a reader which physical GPU an instance is part of, and leaves whole GPUs' numbers (their
NVML indices, below 100) as they were.
"""


@dataclass(frozen=True)
class Visible:
    """One device the command can see: a whole GPU (``slot`` None) or one MIG instance of it."""

    parent: int  # NVML index of the physical GPU
    slot: int | None = None  # the instance's MIG slot (nvmlDeviceGetMigDeviceHandleByIndex)

    @property
    def number(self) -> int:
        """The device's number in the sample files (see :data:`MIG_NUMBER_BASE`)."""
        return self.parent if self.slot is None else MIG_NUMBER_BASE * (self.parent + 1) + self.slot


@dataclass
class GpuInfo:
    index: int  # the number in the sample files: NVML index, or MIG_NUMBER_BASE's rule for an instance
    uuid: str
    name: str
    memory_total_bytes: int | None
    power_limit_mw: int | None
    pci_bus_id: str | None
    max_sm_clock_mhz: int | None = None  # nvmlDeviceGetMaxClockInfo(SM): what a clock below it is compared with
    gpm_supported: bool = False
    # NVML answered a module-scope power reading: a superchip module (GH200, GB200), whose energy
    # counter covers the whole module (CPU and memory included), not the GPU alone. None: not asked.
    module_power: bool | None = None
    energy_scope: str = "gpu"  # what the energy counter covers: "gpu" or "module"
    # a MIG instance: its parent GPU ({"parent_index", "parent_uuid", "slot", "gpu_instance_id"}); its
    # power and energy are the parent's, shared by every instance of that GPU
    mig: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def text(value: bytes | str) -> str:
    """NVML strings: bytes from older bindings, str from newer ones."""
    return value.decode() if isinstance(value, bytes) else value


def visible_devices(nvml: Any, cuda_visible_devices: str | None) -> list[Visible]:
    """The devices ``CUDA_VISIBLE_DEVICES`` exposes, in CUDA order: whole GPUs by index or UUID, and
    MIG instances by their ``MIG-…`` UUID.

    Entries CUDA would stop at (an unknown index or UUID) end the list there, as CUDA does.
    """
    count = nvml.nvmlDeviceGetCount()
    if cuda_visible_devices is None:
        return [Visible(index) for index in range(count)]
    uuids = [text(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)]
    chosen: list[Visible] = []
    for entry in (part.strip() for part in cuda_visible_devices.split(",")):
        if not entry:
            break
        if entry.startswith("MIG-"):
            device = _mig_instance(nvml, count, entry)
        elif entry.lstrip("-").isdigit():
            device = Visible(int(entry)) if 0 <= int(entry) < count else None
        else:
            matches = [i for i, uuid in enumerate(uuids) if uuid.startswith(entry) or uuid == f"GPU-{entry}"]
            device = Visible(matches[0]) if len(matches) == 1 else None
        if device is None or device in chosen:
            break
        chosen.append(device)
    return chosen


def _mig_instance(nvml: Any, count: int, uuid: str) -> Visible | None:
    """The MIG instance whose UUID is ``uuid``, looked for on every GPU that has MIG enabled."""
    for index in range(count):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        for slot, instance in _mig_slots(nvml, handle):
            if text(nvml.nvmlDeviceGetUUID(instance)) == uuid:
                return Visible(index, slot)
    return None


def _mig_slots(nvml: Any, handle: Any) -> list[tuple[int, Any]]:
    """(slot, handle) of each MIG instance of a GPU; none where MIG is off or unsupported."""
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
        if current != nvml.NVML_DEVICE_MIG_ENABLE:
            return []
        slots = nvml.nvmlDeviceGetMaxMigDeviceCount(handle)
    except nvml.NVMLError:
        return []
    found = []
    for slot in range(slots):
        try:
            found.append((slot, nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)))
        except nvml.NVMLError:  # NOT_FOUND: no instance in this slot
            continue
    return found


def handles(nvml: Any, device: Visible) -> tuple[Any, Any]:
    """(the device's own handle, its physical GPU's handle); the same handle twice for a whole GPU."""
    parent = nvml.nvmlDeviceGetHandleByIndex(device.parent)
    if device.slot is None:
        return parent, parent
    return nvml.nvmlDeviceGetMigDeviceHandleByIndex(parent, device.slot), parent


def describe(nvml: Any, device: Visible, handle: Any, parent: Any) -> GpuInfo:
    """Static facts about one device (``handle``, ``parent``: as :func:`handles` gives them); a field
    NVML cannot give is None."""

    def attempt(call: Any, of: Any, *args: Any) -> Any:
        try:
            return call(of, *args)
        except nvml.NVMLError:
            return None

    memory = attempt(nvml.nvmlDeviceGetMemoryInfo, handle)
    pci = attempt(nvml.nvmlDeviceGetPciInfo, parent)
    module_power = _answers_module_power(nvml, parent)
    mig = None
    if device.slot is not None:
        mig = {
            "parent_index": device.parent,
            "parent_uuid": text(nvml.nvmlDeviceGetUUID(parent)),
            "slot": device.slot,
            "gpu_instance_id": attempt(nvml.nvmlDeviceGetGpuInstanceId, handle),
        }
    return GpuInfo(
        index=device.number,
        uuid=text(nvml.nvmlDeviceGetUUID(handle)),
        name=text(attempt(nvml.nvmlDeviceGetName, handle) or "unknown"),
        memory_total_bytes=None if memory is None else int(memory.total),
        power_limit_mw=attempt(nvml.nvmlDeviceGetEnforcedPowerLimit, parent),
        pci_bus_id=None if pci is None else text(pci.busId),
        max_sm_clock_mhz=attempt(nvml.nvmlDeviceGetMaxClockInfo, parent, nvml.NVML_CLOCK_SM),
        module_power=module_power,
        energy_scope="module" if module_power else "gpu",
        mig=mig,
    )


def _answers_module_power(nvml: Any, handle: Any) -> bool | None:
    """Whether NVML gives this GPU's instant power at module scope (a Grace Hopper or Grace Blackwell
    module does; a discrete GPU answers NOT_SUPPORTED); None where the bindings cannot ask."""
    scope = getattr(nvml, "NVML_POWER_SCOPE_MODULE", None)
    if scope is None:
        return None
    try:
        (value,) = nvml.nvmlDeviceGetFieldValues(handle, [(nvml.NVML_FI_DEV_POWER_INSTANT, scope)])
    except (nvml.NVMLError, TypeError, AttributeError, OSError):
        return None
    return value.nvmlReturn == nvml.NVML_SUCCESS
