"""How fast effanalyze is on a day of 8 GPUs at 10 Hz, side by side with a plain pandas version.

    python bench/analyzer_speed.py [--hours 24] [--gpus 8] [--steps 100000] [--repeat 5] [--workdir DIR]
                                   [--baseline CHECKOUT] [--compression lz4|zstd]

Writes a synthetic trace as effrec writes it (Arrow streams in effrec's compression, LZ4; with
``--compression zstd``, as effrec wrote them before; 64k-row batches; GPU poll
at 10 Hz with effrec's rationed reads: the energy counter every 20th poll, GPM every 2nd,
temperature and the clock-event reasons every 5th; 100,000 train steps), then, each in a fresh process so peak memory is
its own: the full analysis (``efftrace.analyzer.compute.metrics.analyze`` with 10-step log windows, i.e. 10,000 windows;
``--repeat`` times, the median reported, as a shared 2-core machine varies by ±15 % from run to
run), interleaved with a polars implementation of the same figures (what a strong user would
write instead: a running trapezoid integral per GPU, the window edges placed by ``join_asof`` and
interpolated, so that it is exact and is checked against effanalyze's per-window AEC and AMU), then
a straightforward pandas implementation of the power and memory means per (GPU, log window) with
``groupby`` and ``np.trapezoid`` (samples inside each window only: close, not exact). Prints
every effanalyze run's rate, one Markdown table row per implementation and the ratios. With
``--baseline`` (another checkout of efftrace, e.g. a ``git worktree`` of an older commit), that
checkout's analyzer runs alternately with this one, each
in a fresh process, and the two medians and their ratio are printed too: the shared machine's
speed drifts over minutes, so only runs interleaved like this compare two versions fairly.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
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


def write_gpu_samples(
    path: Path, polls: int, gpus: int, rng: np.random.Generator, options: pa.ipc.IpcWriteOptions
) -> None:
    """One host's GPU-sample stream: ``polls`` polls of ``gpus`` GPUs at 10 Hz from T0_NS, in effrec's
    columns, rationed reads (nulls between), compression and compacted batch size."""
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
                # mostly no reason, some power cap (0x4) and idle (0x1), as the H200 traces hold; with the temperature
                "clock_event_reasons": every(
                    TEMPERATURE_POLLS, rng.choice(np.array([0, 0, 0, 4, 1], dtype=np.uint32), rows)
                ),
            }
            arrays = [pa.array(columns[field.name], type=field.type) for field in schema.GPU_SAMPLES_SCHEMA]
            out.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema.GPU_SAMPLES_SCHEMA))


def make_trace(run_dir: Path, hours: float, gpus: int, steps: int, compression: str | None = None) -> int:
    """Write the synthetic run (compressed as effrec does unless ``compression`` says otherwise);
    returns the number of GPU sample rows."""
    run_dir.mkdir(parents=True, exist_ok=True)
    seconds = hours * 3600
    polls = int(seconds * 10)
    rng = np.random.default_rng(0)
    options = IPC_OPTIONS if compression is None else pa.ipc.IpcWriteOptions(compression=compression)
    write_gpu_samples(run_dir / schema.gpu_samples_file("node"), polls, gpus, rng, options)
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

    began, began_cpu = time.perf_counter(), time.process_time()
    result = analyze(open_run(run_dir), AnalysisSettings(log_interval=10))
    elapsed, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    windows = result.windows
    aec, amu = windows.column("aec_watts").to_pylist(), windows.column("amu_gib").to_pylist()
    return {"seconds": elapsed, "cpu_seconds": cpu, "windows": windows.num_rows, "aec_first": aec[0], "aec": aec,
            "amu": amu}  # fmt: skip


def run_polars(run_dir: Path) -> dict:
    """What a strong polars user writes for the same figures, exactly: per GPU the running trapezoid
    integral at every sample, each window edge placed by ``join_asof`` and interpolated inside its
    segment, segments longer than the gap bound not bridged; AEC summed and AMU averaged over GPUs."""
    import polars as pl

    from efftrace.analyzer.compute.settings import AnalysisSettings

    began = time.perf_counter()
    meta = json.loads((run_dir / schema.META_FILE).read_text())
    max_gap, _ = AnalysisSettings(log_interval=10).gaps_s(meta["sampling"])
    columns = ["time_ns", "gpu", "power_instant_mw", "mem_used_bytes"]
    samples = pl.read_ipc_stream(run_dir / schema.gpu_samples_file("node"), columns=columns)
    events = pl.read_ipc_stream(run_dir / schema.events_file("node", 0), columns=["step", "start_ns", "end_ns"])
    seconds = (pl.col("time_ns") - T0_NS) / 1e9
    samples = samples.select(
        "gpu", t=seconds, p=pl.col("power_instant_mw").cast(pl.Float64), m=pl.col("mem_used_bytes").cast(pl.Float64)
    ).sort("gpu", "t")
    following = {name: pl.col(name).shift(-1).over("gpu") for name in ("t", "p", "m")}
    samples = samples.with_columns(
        dt=following["t"] - pl.col("t"), p_next=following["p"], m_next=following["m"]
    ).with_columns(bridged=(pl.col("dt") <= max_gap).fill_null(False))

    def area(value: str) -> pl.Expr:
        trapezoid = (pl.col(value) + pl.col(f"{value}_next")) * 0.5 * pl.col("dt")
        return pl.when(pl.col("bridged")).then(trapezoid).otherwise(0.0)

    covered = pl.when(pl.col("bridged")).then(pl.col("dt")).otherwise(0.0)
    samples = samples.with_columns(area_p=area("p"), area_m=area("m"), area_t=covered).with_columns(
        **{f"before_{name}": (pl.col(f"area_{name}").cum_sum() - pl.col(f"area_{name}")).over("gpu") for name in "pmt"}
    )
    windows = (
        events.group_by(window=(pl.col("step") - 1) // 10)
        .agg(start=pl.col("start_ns").min(), end=pl.col("end_ns").max())
        .sort("window")
    )
    edges = pl.concat(
        [windows.select("window", side=pl.lit(side), t=(pl.col(side) - T0_NS) / 1e9) for side in ("start", "end")]
    )
    edges = edges.join(samples.select(pl.col("gpu").unique()), how="cross").sort("t")
    placed = edges.join_asof(
        samples.rename({"t": "t_sample"}).sort("t_sample"), left_on="t", right_on="t_sample", by="gpu"
    )
    into = (pl.col("t") - pl.col("t_sample")).clip(lower_bound=0.0)
    fraction = into / pl.col("dt")

    def up_to_edge(value: str) -> pl.Expr:
        inside = into * (pl.col(value) + (pl.col(f"{value}_next") - pl.col(value)) * fraction * 0.5)
        return (pl.col(f"before_{value}") + pl.when(pl.col("bridged")).then(inside).otherwise(0.0)).fill_null(0.0)

    cumulative = placed.select(
        "window",
        "side",
        "gpu",
        p=up_to_edge("p"),
        m=up_to_edge("m"),
        t=(pl.col("before_t") + pl.when(pl.col("bridged")).then(into).otherwise(0.0)).fill_null(0.0),
    )
    per_gpu = cumulative.pivot(on="side", index=["window", "gpu"], values=["p", "m", "t"]).select(
        "window",
        watts=(pl.col("p_end") - pl.col("p_start")) / (pl.col("t_end") - pl.col("t_start")) / 1e3,
        gib=(pl.col("m_end") - pl.col("m_start")) / (pl.col("t_end") - pl.col("t_start")) / 2**30,
    )
    per_window = per_gpu.group_by("window").agg(aec=pl.col("watts").sum(), amu=pl.col("gib").mean()).sort("window")
    elapsed = time.perf_counter() - began
    aec, amu = per_window["aec"].to_list(), per_window["amu"].to_list()
    return {"seconds": elapsed, "windows": per_window.height, "aec_first": aec[0], "aec": aec, "amu": amu}


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


IMPLEMENTATIONS = {"ours": run_ours, "pandas": run_pandas, "polars": run_polars}


def _largest_difference(ours: dict, theirs: dict) -> float:
    """The largest relative difference of the per-window AEC and AMU of two implementations."""
    found = 0.0
    for key in ("aec", "amu"):
        mine, other = np.asarray(ours[key], dtype=float), np.asarray(theirs[key], dtype=float)
        found = max(found, float(np.max(np.abs(mine - other) / np.abs(mine))))
    return found


def _child(kind: str, run_dir: Path, checkout: Path = REPO) -> dict:
    """One measured run in a fresh process, importing the analyzer of ``checkout`` (timed by this script's
    own code, whatever the checkout's bench does)."""
    output = subprocess.run(
        [sys.executable, str(REPO / "bench" / "analyzer_speed.py"), "--child", kind, "--workdir", str(run_dir)],
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
    parser.add_argument(
        "--efftrace-only", action="store_true", help="skip polars and pandas (a machine without them, e.g. a GPU host)"
    )
    parser.add_argument("--child", choices=list(IMPLEMENTATIONS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measured = IMPLEMENTATIONS[args.child](args.workdir)
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
        runs, polars_runs, baseline_runs = [], [], []
        for _ in range(args.repeat):  # effanalyze and polars interleaved: the shared machine drifts
            runs.append(_child("ours", run_dir))
            if not args.efftrace_only:
                polars_runs.append(_child("polars", run_dir))
            if args.baseline:
                baseline_runs.append(_child("ours", run_dir, args.baseline.resolve()))
        ours = _median(runs)
        print("effanalyze runs (s): " + ", ".join(f"{measured['seconds']:.2f}" for measured in runs))
        print("effanalyze sample rows/s, each run: " + ", ".join(f"{rows / m['seconds'] / 1e6:.1f} M" for m in runs))
        if not args.efftrace_only:
            print("polars runs (s), interleaved: " + ", ".join(f"{m['seconds']:.2f}" for m in polars_runs))
        if args.baseline:
            baseline = _median(baseline_runs)
            print("baseline runs (s), interleaved: " + ", ".join(f"{m['seconds']:.2f}" for m in baseline_runs))
            print(
                f"median: this checkout {ours['seconds']:.2f} s, baseline {baseline['seconds']:.2f} s "
                f"(baseline / this: {baseline['seconds'] / ours['seconds']:.2f}x)"
            )
            # CPU time (all threads) is steadier than wall time on a shared VM, whose other tenants lengthen
            # only the latter
            ours_cpu = statistics.median(measured["cpu_seconds"] for measured in runs)
            baseline_cpu = statistics.median(measured["cpu_seconds"] for measured in baseline_runs)
            print(
                f"CPU, median: this checkout {ours_cpu:.2f} s, baseline {baseline_cpu:.2f} s "
                f"(this / baseline: {ours_cpu / baseline_cpu:.2f}x)"
            )
        if args.efftrace_only:
            print(f"effanalyze: median {ours['seconds']:.2f} s, {rows / ours['seconds'] / 1e6:.1f} M rows/s, "
                  f"{ours['peak_rss_mib']:.0f} MiB peak")  # fmt: skip
            return
        polars_way, pandas_way = _median(polars_runs), _child("pandas", run_dir)
        print("| implementation | seconds | sample rows/s | peak RSS MiB | log windows | AEC of window 1 (W) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, measured in (
            ("effanalyze (`efftrace.analyzer.compute.metrics.analyze`)", ours),
            ("polars: running integral + join_asof at the edges", polars_way),
            ("pandas groupby + np.trapezoid", pandas_way),
        ):
            print(
                f"| {name} | {measured['seconds']:.2f} | {rows / measured['seconds'] / 1e6:.1f} M | "
                f"{measured['peak_rss_mib']:.0f} | {measured['windows']:,} | {measured['aec_first']:.1f} |"
            )
        print(
            f"polars against effanalyze, per-window AEC and AMU: largest relative difference "
            f"{_largest_difference(ours, polars_way):.1e}"
        )
        print(f"speed ratio (polars time / effanalyze time): {polars_way['seconds'] / ours['seconds']:.1f}x")
        print(f"speed ratio (pandas time / effanalyze time): {pandas_way['seconds'] / ours['seconds']:.1f}x")


if __name__ == "__main__":
    main()
