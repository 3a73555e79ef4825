"""The shape ``meta.json`` must have before anything reads it: one check, one clear error.

``meta.json`` is the one hand-editable file of a trace, and colleagues do edit or cut it. Every
field the analyzer reads is checked here for its JSON type (a missing or null field is allowed:
the figures that need it say so), so a wrong one is a one-line error naming the field, not a
failure deep inside the analysis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from efftrace.analyzer.errors import TraceError

_NUMBER = (int, float)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1  # every integer of a trace is stored as int64
TOP_LEVEL: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "status": str,
    "recorder_version": str,
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
    "interval_s": _NUMBER,
    "energy_interval_s": _NUMBER,
    "gpm_interval_s": _NUMBER,
    "temperature_interval_s": _NUMBER,
    "cuda_sync": bool,
}
MODEL: dict[str, type | tuple[type, ...]] = {
    "total_params": int,
    "trainable_params": int,
    "num_hidden_layers": int,
    "hidden_size": int,
}
HOST: dict[str, type | tuple[type, ...]] = {"hostname": str, "gpus": list}
GPU: dict[str, type | tuple[type, ...]] = {"index": int, "name": str, "uuid": str}
RANK: dict[str, type | tuple[type, ...]] = {"rank": int, "tensorboard_dir": str}


_TYPE_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object", bool: "true or false"}


def _type_name(expected: type | tuple[type, ...]) -> str:
    return "a number" if expected == _NUMBER else _TYPE_NAMES[expected]


def _check_fields(
    path: Path, where: str, value: Any, fields: dict[str, type | tuple[type, ...]], required: tuple[str, ...] = ()
) -> None:
    if not isinstance(value, dict):
        raise TraceError(path, f"{where} is {type(value).__name__}, not an object")
    for key, expected in fields.items():
        found = value.get(key)
        if found is None:
            if key in required:
                raise TraceError(path, f"field {where}.{key} is missing")
            continue
        label = f"{where}.{key}" if where else key
        wrong_bool = isinstance(found, bool) and expected is not bool
        if wrong_bool or not isinstance(found, expected):
            raise TraceError(path, f"field {label} is {found!r:.40}, not {_type_name(expected)}")
        if isinstance(found, int) and not _INT64_MIN <= found <= _INT64_MAX:
            raise TraceError(path, f"field {label} is {found}, beyond a 64-bit integer")


def check_manifest(path: Path, meta: dict[str, Any]) -> None:
    """Raise :class:`TraceError` naming the first field of the wrong type."""
    _check_fields(path, "", meta, TOP_LEVEL)
    if meta.get("sampling") is not None:
        _check_fields(path, "sampling", meta["sampling"], SAMPLING)
    if meta.get("model") is not None:
        _check_fields(path, "model", meta["model"], MODEL)
    for number, host in enumerate(meta.get("hosts") or []):
        _check_fields(path, f"hosts[{number}]", host, HOST)
        for slot, gpu in enumerate(host.get("gpus") or []):
            _check_fields(path, f"hosts[{number}].gpus[{slot}]", gpu, GPU, required=("index",))
    for number, rank in enumerate(meta.get("ranks") or []):
        _check_fields(path, f"ranks[{number}]", rank, RANK)
