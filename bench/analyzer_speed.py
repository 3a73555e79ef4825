"""How fast effanalyze is on a day of 8 GPUs at 10 Hz, side by side with a plain pandas version.

    python bench/analyzer_speed.py [--hours 24] [--gpus 8] [--steps 100000] [--repeat 5] [--workdir DIR]
                                   [--baseline CHECKOUT] [--compression lz4|zstd]

Writes a synthetic trace as effrec writes it (Arrow streams in effrec's compression, LZ4; with
``--compression zstd``, as effrec wrote them before; 64k-row batches; GPU poll
at 10 Hz with effrec's rationed reads: the energy counter every 20th poll, GPM every 2nd,
temperature every 5th; 100,000 train steps), then, each in a fresh process so peak memory is
its own: the full analysis (``efftrace.analyzer.compute.metrics.analyze`` with 10-step log windows, i.e. 10,000 windows;
``--repeat`` times, the median reported, as a shared 2-core machine varies by ±15 % from run to
run), and a straightforward pandas implementation of the same power and memory means per
(GPU, log window) with ``groupby`` and ``np.trapezoid``. Prints one Markdown table row per
implementation and the ratio. With ``--baseline`` (another checkout of efftrace, e.g. a ``git
worktree`` of an older commit), that checkout's analyzer runs alternately with this one, each
in a fresh process, and the two medians and their ratio are printed too: the shared machine's
speed drifts over minutes, so only runs interleaved like this compare two versions fairly.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from checkouts import python_path

from efftrace.recorder.format import schema
from efftrace.recorder.writer import IPC_OPTIONS

REPO = Path(__file__).resolve().parent.parent
T0_NS = 1_800_000_000 * 1_000_000_000
BATCH_ROWS = 65_536
# effrec's rationed reads at its default 0.1-s poll (recorder/config.py): energy counter, GPM, temperature
ENERGY_POLLS, GPM_POLLS, TEMPERATURE_POLLS = 20, 2, 5


def make_trace(run_dir: Path, hours: float, gpus: int, steps: int, compression: str | None = None) -> int:
    """Write the synthetic run (compressed as effrec does unless ``compression`` says otherwise);
    returns the number of GPU sample rows."""
    run_dir.mkdir(parents=True, exist_ok=True)
    seconds = hours * 3600
    polls = int(seconds * 10)
    rng = np.random.default_rng(0)
    options = IPC_OPTIONS if compression is None else pa.ipc.IpcWriteOptions(compression=compression)
    path = run_dir / schema.gpu_samples_file("node")
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema.GPU_SAMPLES_SCHEMA, options=options) as out:
        polls_per_batch = BATCH_ROWS // gpus
        for first in range(0, polls, polls_per_batch):
            poll = np.arange(first, min(first + polls_per_batch, polls))
            time_ns = T0_NS + poll * 100_000_000 + rng.integers(0, 2_000_000, poll.size)  # 0-2 ms poll jitter
            time_ns = np.repeat(time_ns, gpus)
            gpu = np.tile(np.arange(gpus, dtype=np.int16), poll.size)
            rows = time_ns.size
            power = (300_000 + 200_000 * np.sin(time_ns / 7e9) + rng.normal(0, 20_000, rows)).astype(np.uint32)

            def every(polls: int, values: np.ndarray, poll: np.ndarray = poll) -> pa.Array:
                """A field the sampler reads every ``polls`` polls: null in the rows between."""
                return pa.array(values, mask=np.repeat(poll % polls != 0, gpus))

            columns = {
                "time_ns": time_ns,
                "gpu": gpu,
                "power_instant_mw": power,
                "power_avg_mw": power,
                "energy_mj": every(ENERGY_POLLS, np.repeat(poll, gpus).astype(np.uint64) * 30_000),
                "mem_used_bytes": (40 << 30) + rng.integers(0, 1 << 30, rows).astype(np.uint64),
                "mem_total_bytes": np.full(rows, 80 << 30, dtype=np.uint64),
                "util_gpu_pct": rng.integers(0, 101, rows).astype(np.uint8),
                "util_mem_pct": rng.integers(0, 101, rows).astype(np.uint8),
                "sm_clock_mhz": np.full(rows, 1980, dtype=np.uint32),
                "temperature_c": every(TEMPERATURE_POLLS, np.full(rows, 60, dtype=np.int16)),
                "gpm_sm_activity_pct": every(GPM_POLLS, rng.uniform(0, 100, rows).astype(np.float32)),
                "gpm_tensor_activity_pct": every(GPM_POLLS, rng.uniform(0, 100, rows).astype(np.float32)),
                "gpm_dram_bw_pct": every(GPM_POLLS, rng.uniform(0, 100, rows).astype(np.float32)),
            }
            arrays = [pa.array(columns[field.name], type=field.type) for field in schema.GPU_SAMPLES_SCHEMA]
            out.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema.GPU_SAMPLES_SCHEMA))
    step_seconds = seconds / steps
    start = T0_NS + (np.arange(steps) * step_seconds * 1e9).astype(np.int64)
    end = start + int(step_seconds * 0.95e9)
    events = {
        "kind": pa.array(["train_step"] * steps),
        "rank": pa.array(np.zeros(steps, np.int32)),
        "pid": pa.array(np.ones(steps, np.int32)),
        "step": pa.array(np.arange(1, steps + 1)),
        "start_ns": pa.array(start),
        "end_ns": pa.array(end),
        "samples": pa.array(np.full(steps, 8)),
        "tokens": pa.array(rng.integers(1000, 4096, steps)),
    }
    arrays = [events.get(field.name, pa.nulls(steps, field.type)).cast(field.type) for field in schema.EVENTS_SCHEMA]
    table = pa.Table.from_arrays(arrays, schema=schema.EVENTS_SCHEMA)
    events_path = run_dir / schema.events_file("node", 0)
    with pa.OSFile(str(events_path), "wb") as sink, pa.ipc.new_stream(sink, table.schema, options=options) as out:
        out.write_table(table, max_chunksize=BATCH_ROWS)
    meta = {
        "format_version": schema.FORMAT_VERSION,
        "name": "synthetic-day",
        "status": "complete",
        "started_ns": T0_NS,
        "ended_ns": int(T0_NS + seconds * 1e9),
        "hosts": [{"hostname": "node", "gpus": [{"index": g, "name": "NVIDIA H100 80GB HBM3"} for g in range(gpus)]}],
        "sampling": {"interval_s": 0.1, "energy_interval_s": 2.0},
        "model": {"total_params": 8_000_000_000, "trainable_params": 8_000_000_000},
        "world_size": gpus,
    }
    (run_dir / schema.META_FILE).write_text(json.dumps(meta))
    return polls * gpus


def run_ours(run_dir: Path) -> dict:
    from efftrace.analyzer.compute.metrics import analyze
    from efftrace.analyzer.compute.settings import AnalysisSettings
    from efftrace.analyzer.read.loader import open_run

    began = time.perf_counter()
    result = analyze(open_run(run_dir), AnalysisSettings(log_interval=10))
    elapsed = time.perf_counter() - began
    windows = result.windows
    return {"seconds": elapsed, "windows": windows.num_rows, "aec_first": windows.column("aec_watts")[0].as_py()}


def run_pandas(run_dir: Path) -> dict:
    """The obvious way: load everything into pandas, tag each sample with its window, trapezoid per group."""
    import pandas as pd

    began = time.perf_counter()
    with pa.OSFile(str(run_dir / schema.gpu_samples_file("node"))) as source:
        samples = pa.ipc.open_stream(source).read_all().to_pandas()
    with pa.OSFile(str(run_dir / schema.events_file("node", 0))) as source:
        events = pa.ipc.open_stream(source).read_all().to_pandas()
    events["window"] = (events["step"] - 1) // 10
    windows = events.groupby("window").agg(start=("start_ns", "min"), end=("end_ns", "max"))
    edges = windows["start"].to_numpy()
    samples["window"] = np.searchsorted(edges, samples["time_ns"].to_numpy(), side="right") - 1
    inside = samples["time_ns"].to_numpy() <= windows["end"].to_numpy()[samples["window"].clip(lower=0)]
    samples = samples[(samples["window"] >= 0) & inside]

    def means(group: pd.DataFrame) -> pd.Series:
        seconds = group["time_ns"].to_numpy() / 1e9
        span = seconds[-1] - seconds[0]
        return pd.Series(
            {
                "aec_watts": np.trapezoid(group["power_instant_mw"].to_numpy() / 1e3, seconds) / span,
                "amu_gib": np.trapezoid(group["mem_used_bytes"].to_numpy() / 2**30, seconds) / span,
            }
        )

    per_gpu = samples.groupby(["window", "gpu"]).apply(means, include_groups=False)
    per_window = per_gpu.groupby("window").agg(aec_watts=("aec_watts", "sum"), amu_gib=("amu_gib", "mean"))
    elapsed = time.perf_counter() - began
    return {"seconds": elapsed, "windows": len(per_window), "aec_first": float(per_window["aec_watts"].iloc[0])}


def _child(kind: str, run_dir: Path, checkout: Path = REPO) -> dict:
    """One measured run in a fresh process, importing the analyzer of ``checkout``."""
    output = subprocess.run(
        [sys.executable, str(checkout / "bench" / "analyzer_speed.py"), "--child", kind, "--workdir", str(run_dir)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": python_path(checkout)},
        cwd=checkout,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def _median(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda measured: measured["seconds"])[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--repeat", type=int, default=5, help="runs of effanalyze (median reported)")
    parser.add_argument("--baseline", type=Path, help="another efftrace checkout, run alternately with this one")
    parser.add_argument("--compression", choices=["lz4", "zstd"], help="of the trace (default: as effrec writes)")
    parser.add_argument("--child", choices=["ours", "pandas"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measured = (run_ours if args.child == "ours" else run_pandas)(args.workdir)
        measured["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(measured))
        return
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = args.workdir or Path(scratch) / "run"
        began = time.perf_counter()
        rows = make_trace(run_dir, args.hours, args.gpus, args.steps, args.compression)
        size = sum(path.stat().st_size for path in run_dir.iterdir()) / 2**20
        print(
            f"trace: {rows:,} GPU sample rows, {args.steps:,} steps, {size:.0f} MiB "
            f"({args.compression or IPC_OPTIONS.compression}), made in "
            f"{time.perf_counter() - began:.1f} s"
        )
        runs, baseline_runs = [], []
        for _ in range(args.repeat):
            runs.append(_child("ours", run_dir))
            if args.baseline:
                baseline_runs.append(_child("ours", run_dir, args.baseline.resolve()))
        ours, pandas_way = _median(runs), _child("pandas", run_dir)
        print("effanalyze runs (s): " + ", ".join(f"{measured['seconds']:.2f}" for measured in runs))
        if args.baseline:
            baseline = _median(baseline_runs)
            print("baseline runs (s), interleaved: " + ", ".join(f"{m['seconds']:.2f}" for m in baseline_runs))
            print(
                f"median: this checkout {ours['seconds']:.2f} s, baseline {baseline['seconds']:.2f} s "
                f"(baseline / this: {baseline['seconds'] / ours['seconds']:.2f}x)"
            )
        print("| implementation | seconds | sample rows/s | peak RSS MiB | log windows | AEC of window 1 (W) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, measured in (
            ("effanalyze (`efftrace.analyzer.compute.metrics.analyze`)", ours),
            ("pandas groupby + np.trapezoid", pandas_way),
        ):
            print(
                f"| {name} | {measured['seconds']:.2f} | {rows / measured['seconds'] / 1e6:.1f} M | "
                f"{measured['peak_rss_mib']:.0f} | {measured['windows']:,} | {measured['aec_first']:.1f} |"
            )
        print(f"speed ratio (pandas time / effanalyze time): {pandas_way['seconds'] / ours['seconds']:.1f}x")


if __name__ == "__main__":
    main()
