"""What a folder that is not a run directory is, and where the run the user meant probably is.

Users point ``effanalyze`` at the folder around a run as often as at the run: the ``effrec_runs``
folder holding many runs, a sample's folder whose trace is in ``trace/``, or LLaMA-Factory's
``output_dir``. Each gets a message that names the run to give instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from efftrace.recorder.format import schema

MAX_LISTED = 5
MAX_MANIFESTS_READ = 200  # a search near a training output reads at most this many meta.json files
_TRAINING_OUTPUT_FILES = ("trainer_state.json", "training_args.bin", "adapter_config.json", "all_results.json")


def _runs_inside(folder: Path) -> list[Path]:
    try:
        return sorted(child for child in folder.iterdir() if (child / schema.META_FILE).is_file())
    except OSError:
        return []


def not_a_run(folder: Path) -> str:
    """The problem, said as help: which runs are inside, or which run recorded this folder."""
    runs = _runs_inside(folder)
    if len(runs) == 1:
        return f"not a run directory; the run inside it is {runs[0]}"
    if runs:
        listed = ", ".join(run.name for run in runs[-MAX_LISTED:])
        more = f" (the latest {MAX_LISTED} of {len(runs)})" if len(runs) > MAX_LISTED else ""
        return f"a folder of {len(runs)} runs: {listed}{more}; analyse one, e.g. effanalyze {runs[-1]}"
    if any((folder / name).exists() for name in _TRAINING_OUTPUT_FILES):
        recorded = _run_that_recorded(folder)
        if recorded is not None:
            return f"a training output directory, not a trace; the trace that recorded it is {recorded}"
        return "a training output directory, not a trace (no run nearby names it); give the run directory effrec wrote"
    return f"{schema.META_FILE} missing: this is not an efftrace run directory"


def _run_that_recorded(output_dir: Path) -> Path | None:
    """The newest run near ``output_dir`` whose ranks wrote into it (their recorded ``output_dir``)."""
    target = output_dir.resolve()
    found: list[tuple[int, Path]] = []
    for manifest in _manifests_near(output_dir):
        try:
            meta = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(meta, dict):
            continue
        base = Path(str(meta.get("cwd") or manifest.parent))
        ranks = meta.get("ranks") if isinstance(meta.get("ranks"), list) else []
        named = [rank.get("output_dir") for rank in ranks if isinstance(rank, dict) and rank.get("output_dir")]
        if any(_same(base / str(path), target) for path in named):
            started = meta.get("started_ns") if isinstance(meta.get("started_ns"), int) else 0
            found.append((started, manifest.parent))
    return max(found)[1] if found else None


def _same(path: Path, target: Path) -> bool:
    try:
        return path.resolve() == target
    except OSError:
        return False


def _manifests_near(output_dir: Path) -> list[Path]:
    """``meta.json`` files in run folders beside the output directory, up to its grandparent, and in
    ``effrec_runs`` of the current directory: where effrec puts runs by default."""
    places = [Path.cwd() / "effrec_runs", *list(output_dir.resolve().parents)[:3]]
    seen: list[Path] = []
    for place in places:
        for depth in ("*", "*/*"):
            for manifest in sorted(place.glob(f"{depth}/{schema.META_FILE}")):
                if manifest not in seen and os.access(manifest, os.R_OK):
                    seen.append(manifest)
                if len(seen) >= MAX_MANIFESTS_READ:
                    return seen
    return seen
