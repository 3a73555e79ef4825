"""``meta.json``: the run manifest, written when recording starts and finalised when it ends.

It is always replaced whole (write to a temporary file, then rename), so a reader never sees
half of it. If the recorder itself dies, ``status`` stays ``running`` and readers know the run
is unfinished.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from efftrace.recorder import __version__
from efftrace.recorder.format import json_values, schema

MAX_CONFIG_BYTES = 1 << 20
_CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` whole with ``document`` as standard JSON (no ``NaN``, no ``Infinity``)."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json_values.dumps(document) + "\n")
    os.replace(temporary, path)


def training_config(command: list[str]) -> dict[str, str] | None:
    """The config file the command names (LLaMA-Factory's YAML), kept verbatim; never parsed here."""
    for argument in command[1:]:
        path = Path(argument)
        if path.suffix.lower() in _CONFIG_SUFFIXES and path.is_file() and path.stat().st_size <= MAX_CONFIG_BYTES:
            try:
                return {"path": str(path.resolve()), "text": path.read_text(errors="replace")}
            except OSError:
                return None
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def new_manifest(
    command: list[str], name: str, sampling: dict[str, Any], host: dict[str, Any], argv: list[str]
) -> dict[str, Any]:
    return {
        "format_version": schema.FORMAT_VERSION,
        "recorder_version": __version__,
        "recorder_pid": os.getpid(),  # with recorder_environment.hostname: whether a 'running' run still is
        "name": name,
        "status": "running",
        "exit_code": None,
        "started_ns": time.time_ns(),
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "ended_ns": None,
        "command": command,
        "recorder_argv": argv,
        "cwd": os.getcwd(),
        "hosts": [host],
        "sampling": sampling,
        "recorder_environment": {
            "hostname": socket.gethostname(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "pyarrow": _version("pyarrow"),
            "nvidia-ml-py": _version("nvidia-ml-py"),
        },
        "training_config": training_config(command),
        "ranks": [],
        "model": None,
        "world_size": None,
    }


def merge_rank_info(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Fold the training processes' ``rank-*.json`` files into the manifest."""
    ranks = []
    for path in sorted(run_dir.glob(f"{schema.RANK_INFO_PREFIX}*.json")):
        try:
            ranks.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    ranks.sort(key=lambda info: (info.get("rank", 0), info.get("host", "")))
    manifest["ranks"] = ranks
    with_model = [info for info in ranks if info.get("model")]
    if with_model:
        manifest["model"] = with_model[0]["model"]
        manifest["world_size"] = with_model[0].get("world_size")
        manifest["versions"] = with_model[0].get("versions")


def finalise(
    run_dir: Path, manifest: dict[str, Any], status: str, exit_code: int | None, sampler: dict[str, Any]
) -> None:
    manifest.update(status=status, exit_code=exit_code, ended_ns=time.time_ns(), sampler=sampler)
    merge_rank_info(run_dir, manifest)
    write_json_atomically(run_dir / schema.META_FILE, manifest)
