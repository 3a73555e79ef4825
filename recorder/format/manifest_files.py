"""The small JSON files beside ``meta.json``: how they are read, and how ranks fold into the manifest.

Each training process writes ``rank-<host>-r<rank>.json``, each host's effrec ``host-<host>.json``,
and a process that saw effrec die ``recorder-gone-<host>-r<rank>.json``. effrec folds the ranks'
files into ``meta.json`` when the run ends; the analyzer folds them itself into a manifest that was
never finalised. Both do it here, so both read them the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def json_objects(run_dir: Path, prefix: str) -> list[tuple[Path, dict[str, Any]]]:
    """Every ``<prefix>*.json`` of the run that holds a JSON object, by name; a file cut by a kill,
    unreadable or edited into something else is left out."""
    found = []
    for path in sorted(run_dir.glob(f"{prefix}*.json")):
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            continue
        if isinstance(value, dict):
            found.append((path, value))
    return found


def fold_ranks(manifest: dict[str, Any], ranks: list[dict[str, Any]]) -> None:
    """Put ``ranks`` into the manifest in rank order, and, where it has none yet, the model, world
    size and library versions that the first rank describing its model gave."""
    manifest["ranks"] = sorted(ranks, key=lambda info: (info.get("rank", 0), str(info.get("host", ""))))
    with_model = [info for info in manifest["ranks"] if isinstance(info.get("model"), dict)]
    if with_model and not manifest.get("model"):
        manifest["model"] = with_model[0]["model"]
        manifest["world_size"] = manifest.get("world_size") or with_model[0].get("world_size")
        manifest["versions"] = manifest.get("versions") or with_model[0].get("versions")
