"""What NVML answers on this machine about the scope of its power readings, and about MIG.

Run on a GPU machine; prints one JSON object per GPU. It tells effrec's power-scope and MIG
handling what real drivers return: the instant power field asked for at GPU, module and memory
scope (a Grace Hopper module answers the module scope; a discrete GPU refuses it), whether the
energy counter is supported, and the MIG mode with any MIG instances' UUIDs.

    python3 bench/gpu/nvml_power_scope.py
"""

from __future__ import annotations

import json

import pynvml as nvml


def _attempt(call, *args):
    try:
        return call(*args)
    except nvml.NVMLError as error:
        return f"error: {error}"


def _scoped_power(handle, scope: int):
    (value,) = nvml.nvmlDeviceGetFieldValues(handle, [(nvml.NVML_FI_DEV_POWER_INSTANT, scope)])
    if value.nvmlReturn != nvml.NVML_SUCCESS:
        return f"error: {nvml.nvmlErrorString(value.nvmlReturn)}"
    return value.value.uiVal


def main() -> None:
    nvml.nvmlInit()
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        mig_mode = _attempt(nvml.nvmlDeviceGetMigMode, handle)
        instances = []
        if isinstance(mig_mode, list) and mig_mode[0] == nvml.NVML_DEVICE_MIG_ENABLE:
            for slot in range(nvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
                mig = _attempt(nvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, slot)
                if not isinstance(mig, str):
                    instances.append(
                        {"slot": slot, "uuid": nvml.nvmlDeviceGetUUID(mig), "name": nvml.nvmlDeviceGetName(mig)}
                    )
        facts = {
            "index": index,
            "name": nvml.nvmlDeviceGetName(handle),
            "uuid": nvml.nvmlDeviceGetUUID(handle),
            "power_instant_gpu_scope_mw": _scoped_power(handle, nvml.NVML_POWER_SCOPE_GPU),
            "power_instant_module_scope_mw": _scoped_power(handle, nvml.NVML_POWER_SCOPE_MODULE),
            "power_instant_memory_scope_mw": _scoped_power(handle, nvml.NVML_POWER_SCOPE_MEMORY),
            "power_usage_mw": _attempt(nvml.nvmlDeviceGetPowerUsage, handle),
            "energy_counter_mj": _attempt(nvml.nvmlDeviceGetTotalEnergyConsumption, handle),
            "mig_mode": mig_mode,
            "mig_instances": instances,
        }
        print(json.dumps(facts, default=str))
    nvml.nvmlShutdown()


if __name__ == "__main__":
    main()
