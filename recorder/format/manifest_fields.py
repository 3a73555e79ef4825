"""The JSON type of every ``meta.json`` field a reader relies on: part of the trace format.

``effrec`` writes these fields (:mod:`efftrace.recorder.meta`); the analyzer checks a manifest
against these tables before it reads anything (:mod:`efftrace.analyzer.read.manifest`), so a
hand-edited or cut ``meta.json`` fails with one line naming the field. A missing or null field is
allowed everywhere: the figures that need it say so.
"""

from __future__ import annotations

NUMBER = (int, float)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # every integer of a trace is stored as int64
TOP_LEVEL: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "status": str,
    "recorder_version": str,
    "recorder_pid": int,
    "recorder_environment": dict,
    "started_ns": int,
    "ended_ns": int,
    "exit_code": int,
    "world_size": int,
    "cwd": str,
    "command": list,
    "recorder_argv": list,
    "sampling": dict,
    "model": dict,
    "hosts": list,
    "ranks": list,
}
SAMPLING: dict[str, type | tuple[type, ...]] = {
    "interval_s": NUMBER,
    "energy_interval_s": NUMBER,
    "gpm_interval_s": NUMBER,
    "temperature_interval_s": NUMBER,
    "clock_reasons_interval_s": NUMBER,
    "profile_steps": list,
    "cuda_sync": bool,
}
MODEL: dict[str, type | tuple[type, ...]] = {
    "total_params": int,
    "trainable_params": int,
    "num_hidden_layers": int,
    "hidden_size": int,
}
HOST: dict[str, type | tuple[type, ...]] = {"hostname": str, "gpus": list}
GPU: dict[str, type | tuple[type, ...]] = {
    "index": int,
    "name": str,
    "uuid": str,
    "module_power": bool,
    "energy_scope": str,
    "mig": dict,
    "memory_total_bytes": int,
    "power_limit_mw": int,
    "max_sm_clock_mhz": int,
}
MIG: dict[str, type | tuple[type, ...]] = {"parent_index": int, "parent_uuid": str, "slot": int}
RANK: dict[str, type | tuple[type, ...]] = {
    "rank": int,
    "tensorboard_dir": str,
    "host": str,
    "local_rank": int,
    "device_index": int,
    "device_uuid": str,
    "cuda_visible_devices": str,
}
