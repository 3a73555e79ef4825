"""Creating a run directory: ``<out>/<UTC time>-<name>``, never reusing one that exists."""

from __future__ import annotations

import re
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
