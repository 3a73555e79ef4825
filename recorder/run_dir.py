"""Where a run is recorded: a fresh ``<out>/<UTC time>-<name>``, or one directory a whole job shares.

Every node of a multi-node job runs its own effrec. They agree on one run directory without
talking: ``--run-dir DIR``, or a name the job itself gives every node (``SLURM_JOB_ID`` and its
step, or torchrun's ``--rdzv-id``). Each host then writes only its own files into it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str) -> str:
    return _NAME_UNSAFE.sub("_", name).strip("._") or "run"


def default_name(command: list[str]) -> str:
    """The config file's stem when the command names one (``llama3_lora_sft``), else the program."""
    for argument in command[1:]:
        path = Path(argument)
        if path.suffix.lower() in (".yaml", ".yml"):
            return safe_name(path.stem)
    return safe_name(Path(command[0]).name) if command else "run"


def job_name(command: Sequence[str], env: Mapping[str, str]) -> str | None:
    """The job's own name where the scheduler or the launcher gives every node the same one:
    ``slurm-<job>[.<step>]`` under SLURM, ``torchrun-<id>`` for ``torchrun --rdzv-id <id>``; else None."""
    job = env.get("SLURM_JOB_ID", "").strip()
    if job:
        step = env.get("SLURM_STEP_ID", "").strip()
        return safe_name(f"slurm-{job}.{step}" if step else f"slurm-{job}")
    for at, argument in enumerate(command):
        for option in ("--rdzv-id", "--rdzv_id"):
            value = None
            if argument == option and at + 1 < len(command):
                value = command[at + 1]
            elif argument.startswith(option + "="):
                value = argument.split("=", 1)[1]
            if value and value.lower() != "none":  # "none" is torchrun's default, shared by unrelated jobs
                return safe_name(f"torchrun-{value}")
    return None


def shared_run_dir(path: str | Path) -> Path:
    """The run directory a job's hosts share, made if it does not exist; raises OSError when it cannot be."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def create_run_dir(out: str | Path, name: str) -> Path:
    """Make a fresh run directory; raises OSError when ``out`` cannot hold one."""
    parent = Path(out)
    parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = f"{stamp}-{safe_name(name)}"
    for attempt in range(1000):
        candidate = parent / (base if attempt == 0 else f"{base}.{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{parent}: too many runs named {base}")
