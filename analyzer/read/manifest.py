"""The shape ``meta.json`` must have before anything reads it: one check, one clear error.

``meta.json`` is the one hand-editable file of a trace, and colleagues do edit or cut it. Every
field the analyzer reads is checked here for its JSON type (the tables are part of the trace
format, :mod:`efftrace.recorder.format.manifest_fields`) (a missing or null field is allowed:
the figures that need it say so), so a wrong one is a one-line error naming the field, not a
failure deep inside the analysis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from efftrace.analyzer.errors import TraceError
from efftrace.recorder.format.manifest_fields import (
    GPU,
    HOST,
    INT64_MAX,
    INT64_MIN,
    MIG,
    MODEL,
    NUMBER,
    RANK,
    SAMPLING,
    TOP_LEVEL,
)

_TYPE_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object", bool: "true or false"}


def _type_name(expected: type | tuple[type, ...]) -> str:
    return "a number" if expected == NUMBER else _TYPE_NAMES[expected]


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
        if isinstance(found, int) and not INT64_MIN <= found <= INT64_MAX:
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
            where = f"hosts[{number}].gpus[{slot}]"
            _check_fields(path, where, gpu, GPU, required=("index",))
            if gpu.get("mig") is not None:
                _check_fields(path, f"{where}.mig", gpu["mig"], MIG, required=("parent_uuid",))
    for number, rank in enumerate(meta.get("ranks") or []):
        _check_fields(path, f"ranks[{number}]", rank, RANK)
