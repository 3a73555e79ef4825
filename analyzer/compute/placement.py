"""Which GPU each rank trained on, and which of the sampled GPUs are the job's.

effrec samples every GPU its host can see; another job may be using some of them. Each rank
records the UUID of the device it trains on, so its figures join exactly to that GPU's samples,
and a GPU no rank used is reported apart and left out of the job's figures (its power is not the
job's). Where no rank recorded a device (a CPU job, an older trace), every sampled GPU counts,
as before.
"""

from __future__ import annotations

from typing import Any

from efftrace.analyzer.read.loader import Trace
from efftrace.recorder.format import schema

GpuKey = tuple[str, int]


def _normalised(uuid: str) -> str:
    """A UUID without its kind: torch prints a MIG instance's bare, and effrec writes a bare UUID as
    ``GPU-…`` while NVML names that instance ``MIG-…``."""
    bare = uuid.strip().lower()
    return bare[4:] if bare.startswith(("gpu-", "mig-")) else bare


def rank_gpus(trace: Trace) -> dict[int, GpuKey]:
    """Each rank whose recorded device UUID is one of the run's GPUs, with that GPU (host, index)."""
    by_uuid = {_normalised(gpu.uuid): (gpu.host, gpu.index) for gpu in trace.gpus if gpu.uuid}
    found = {}
    for rank in trace.meta.get("ranks") or []:
        uuid, number = rank.get("device_uuid"), rank.get("rank")
        if isinstance(uuid, str) and isinstance(number, int) and _normalised(uuid) in by_uuid:
            found[number] = by_uuid[_normalised(uuid)]
    return found


def job_gpus(placed: dict[int, GpuKey], sampled: list[GpuKey]) -> tuple[list[GpuKey], list[GpuKey]]:
    """The sampled GPUs that are the job's, and those no rank used; all are the job's when no rank
    said which device it used."""
    if not placed:
        return list(sampled), []
    used = set(placed.values())
    return [gpu for gpu in sampled if gpu in used], [gpu for gpu in sampled if gpu not in used]


def unused_note(unused: list[GpuKey], names: dict[GpuKey, str]) -> list[str]:
    if not unused:
        return []
    listed = ", ".join(f"{host}:{index} ({names.get((host, index), 'unknown GPU')})" for host, index in unused)
    return [f"GPUs sampled but used by no rank of the job (another job's?): {listed}; left out of the job's figures"]


def rank_rows(trace: Trace, placed: dict[int, GpuKey], ranks: list[int]) -> list[dict[str, Any]]:
    """Per rank (of ``ranks``): its host, its GPU where known, and what it said of its device."""
    info = {rank.get("rank"): rank for rank in trace.meta.get("ranks") or [] if isinstance(rank, dict)}
    rows = []
    for number in ranks:
        said = info.get(number, {})
        host, index = placed.get(number, (schema.host_tag(str(said["host"])) if said.get("host") else None, None))
        rows.append(
            {
                "rank": number,
                "host": host,
                "gpu": index,
                "device_uuid": said.get("device_uuid"),
                "cuda_visible_devices": said.get("cuda_visible_devices"),
            }
        )
    return rows
