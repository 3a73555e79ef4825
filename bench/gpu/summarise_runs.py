"""Print what each recorded run holds, straight from its files (no analysis).

    python bench/gpu/summarise_runs.py RUNS_DIR

Per run: status, duration, rows per file, the poll and power-buffer spacing (median), how full
the GPM and energy columns are, the sampler's CPU use, and trace bytes per GPU-hour.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa


def read_stream(path: Path) -> pa.Table:
    with pa.OSFile(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


def summarise(run: Path) -> dict:
    meta = json.loads((run / "meta.json").read_text())
    seconds = (meta["ended_ns"] - meta["started_ns"]) / 1e9
    gpus = max(1, len(meta["hosts"][0].get("gpus", [])))
    summary: dict = {"run": run.name, "status": meta["status"], "seconds": round(seconds, 1)}
    sampler = meta.get("sampler", {})
    if sampler.get("cpu_seconds") is not None and seconds > 0:
        summary["sampler_cpu_pct_of_core_per_gpu"] = round(100 * sampler["cpu_seconds"] / seconds / gpus, 3)
    if sampler.get("process_cpu_seconds") is not None and seconds > 0:
        summary["effrec_cpu_pct_of_core"] = round(100 * sampler["process_cpu_seconds"] / seconds, 3)
    total_bytes = sum(path.stat().st_size for path in run.glob("*.arrow"))
    summary["trace_bytes"] = total_bytes
    summary["mb_per_gpu_hour"] = round(total_bytes / 1e6 / (seconds / 3600) / gpus, 2)
    for path in sorted(run.glob("gpu-*.arrow")):
        table = read_stream(path)
        times = np.sort(table["time_ns"].to_numpy())
        summary["gpu_rows"] = table.num_rows
        summary["poll_spacing_ms_median"] = round(float(np.median(np.diff(times))) / 1e6, 2)
        for column in ("power_instant_mw", "energy_mj", "gpm_sm_activity_pct", "gpm_tensor_activity_pct"):
            summary[f"{column}_filled_pct"] = round(100 * (1 - table[column].null_count / table.num_rows), 1)
        energy = table.filter(pa.compute.is_valid(table["energy_mj"]))["time_ns"].to_numpy()
        if len(energy) > 1:
            summary["energy_spacing_s_median"] = round(float(np.median(np.diff(energy))) / 1e9, 3)
    for path in sorted(run.glob("power-*.arrow")):
        table = read_stream(path)
        times = np.sort(table["time_ns"].to_numpy())
        summary["power_buffer_rows"] = table.num_rows
        if len(times) > 1:
            summary["power_buffer_spacing_ms_median"] = round(float(np.median(np.diff(times))) / 1e6, 2)
    for path in sorted(run.glob("events-*.arrow")):
        table = read_stream(path)
        kinds = table["kind"].value_counts().to_pylist()
        summary[f"events_{path.stem}"] = {item["values"]: item["counts"] for item in kinds}
    return summary


def main() -> None:
    for run in sorted(Path(sys.argv[1]).iterdir()):
        if (run / "meta.json").is_file():
            print(json.dumps(summarise(run)))


if __name__ == "__main__":
    main()
