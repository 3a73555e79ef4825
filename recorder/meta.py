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
from efftrace.recorder.format.manifest_files import fold_ranks, json_objects

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
    fold_ranks(manifest, [info for _, info in json_objects(run_dir, schema.RANK_INFO_PREFIX)])


def start(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Write this host's manifest, and ``meta.json`` unless another host of the job wrote it first.

    ``manifest["hosts"]`` holds this host alone. In a directory several hosts share, the first
    effrec to start writes what is common; no host ever replaces another host's file.
    """
    host = manifest["hosts"][0]
    host.update(status="running", started_ns=manifest["started_ns"], recorder_pid=os.getpid())
    _create_once(run_dir / schema.META_FILE, manifest)
    write_json_atomically(run_dir / schema.host_manifest_file(str(host["hostname"])), host)


def _create_once(path: Path, document: dict[str, Any]) -> None:
    """Write ``path`` whole unless it exists (another host wrote it first). A hard link of a finished
    temporary file creates it atomically, also on shared filesystems; where links are not supported,
    an exclusive create does."""
    text = json_values.dumps(document) + "\n"
    temporary = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    temporary.write_text(text)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    except OSError:
        try:
            with open(path, "x", encoding="utf-8") as handle:
                handle.write(text)
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)


def host_manifests(run_dir: Path) -> list[dict[str, Any]]:
    """Every host's own manifest in the run, by host name (a damaged one is left out)."""
    hosts = json_objects(run_dir, schema.HOST_MANIFEST_PREFIX)
    return [host for _, host in hosts if isinstance(host.get("hostname"), str)]


def _run_status(hosts: list[dict[str, Any]]) -> tuple[str, int | None]:
    """The job's status and exit code from its hosts': complete only if every host completed."""
    if len(hosts) == 1:
        return str(hosts[0].get("status")), hosts[0].get("exit_code")
    statuses = [host.get("status") for host in hosts]
    codes = [host.get("exit_code") for host in hosts if isinstance(host.get("exit_code"), int)]
    failing = next((code for code in codes if code != 0), None)
    if all(status == "complete" for status in statuses):
        return "complete", 0 if codes else None
    return ("killed" if "killed" in statuses else "failed"), failing


def finalise(
    run_dir: Path, manifest: dict[str, Any], status: str, exit_code: int | None, sampler: dict[str, Any]
) -> None:
    """End this host's recording in its own manifest; the last host of the job to end finalises
    ``meta.json`` (whichever it is: each one, ending, looks whether any other still records)."""
    host = manifest["hosts"][0]
    host.update(status=status, exit_code=exit_code, ended_ns=time.time_ns(), sampler=sampler)
    write_json_atomically(run_dir / schema.host_manifest_file(str(host["hostname"])), host)
    hosts = host_manifests(run_dir) or [host]
    if any(other.get("status") == "running" for other in hosts):
        return  # another host still records: it finalises the run when it ends
    try:
        common = json.loads((run_dir / schema.META_FILE).read_text())
    except (OSError, ValueError):
        common = dict(manifest)  # meta.json lost or damaged: this host's view of what is common
    run_status, run_code = _run_status(hosts)
    common.update(
        hosts=hosts,
        status=run_status,
        exit_code=run_code,
        ended_ns=max(int(other.get("ended_ns") or 0) for other in hosts),
        sampler=hosts[0].get("sampler") if len(hosts) == 1 else None,
    )
    merge_rank_info(run_dir, common)
    write_json_atomically(run_dir / schema.META_FILE, common)
