"""What each sampled device's power readings cover: MIG instances and Grace Hopper modules.

A MIG instance has no power sensor of its own: NVML gives power and energy only for the physical
GPU, so effrec records the parent's readings beside the instance's own memory and GPM activity.
Those readings are shared by every instance of that GPU (other tenants' work included), so the
job's power and energy count each physical GPU once, and the figures say the power is shared. What
a user can conclude from a MIG instance: its memory and activity are its own; its power and energy
are an upper bound on its share, exact only when it is the GPU's one busy instance.

On a Grace Hopper (or Grace Blackwell) module NVML answers module-scope power, and the energy
counter covers the whole module: the Grace CPU and its memory as well as the GPU. The GPU-scope
power fields stay the GPU's, so the counter cross-check then compares different things.
"""

from __future__ import annotations

from efftrace.analyzer.compute.signals import GpuKey
from efftrace.analyzer.read.loader import RecordedGpu


def power_owners(recorded: dict[GpuKey, RecordedGpu], gpus: list[GpuKey]) -> dict[GpuKey, str]:
    """Each GPU's power owner: the physical GPU whose readings it carries (itself, or a MIG parent)."""
    return {gpu: recorded[gpu].power_owner if gpu in recorded else f"{gpu[0]}:{gpu[1]}" for gpu in gpus}


def one_per_owner(gpus: list[GpuKey], owners: dict[GpuKey, str]) -> list[GpuKey]:
    """The first GPU of each power owner: what power and energy sums run over, so that MIG
    instances of one physical GPU add its power once, not once per instance."""
    seen: set[str] = set()
    kept = []
    for gpu in gpus:
        owner = owners.get(gpu, f"{gpu[0]}:{gpu[1]}")
        if owner not in seen:
            seen.add(owner)
            kept.append(gpu)
    return kept


def device_notes(recorded: dict[GpuKey, RecordedGpu], gpus: list[GpuKey], without_counter: list[GpuKey]) -> list[str]:
    """What to keep in mind when reading the job's power figures, said once per kind of device."""
    notes = []
    instances = [gpu for gpu in gpus if gpu in recorded and recorded[gpu].parent_uuid]
    if instances:
        listed = ", ".join(f"{host}:{index} (of {recorded[(host, index)].parent_uuid})" for host, index in instances)
        notes.append(
            f"MIG instances {listed}: power and energy are their whole GPU's, shared with any other instance "
            "on it (counted once per GPU in the job's sums: an upper bound on the job's share); memory and "
            "GPM activity are the instance's own; NVML gives no utilization.gpu for an instance, so PCU is "
            "not measured there (PCU-SM is)"
        )
    modules = [gpu for gpu in gpus if gpu in recorded and recorded[gpu].energy_scope == "module"]
    if modules:
        listed = ", ".join(f"{host}:{index}" for host, index in modules)
        notes.append(
            f"GPUs {listed} are on a module (NVML answers module-scope power, as on Grace Hopper): their energy "
            "counter covers the whole module, CPU and memory included, while the power fields are the GPU's; "
            "the energy-counter figures are the module's, and their cross-check differs by the CPU and memory"
        )
    if without_counter:
        listed = ", ".join(f"{host}:{index}" for host, index in without_counter)
        notes.append(
            f"no energy-counter reading from GPUs {listed} (NVML does not support it on that GPU or vGPU): their "
            "energy is the integral of power alone, with no counter to check it against"
        )
    return notes
