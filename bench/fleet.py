"""How the analysis scales out: a simulated fleet trace, analysed in one process and on Dask, side by side.

    python bench/fleet.py [--hosts 32] [--gpus 8] [--hours 3] [--step-s 2] [--repeat 3] [--workdir DIR]

Writes a run directory as a multi-host job leaves it: per host, a GPU-sample stream of ``--gpus``
GPUs at 10 Hz with effrec's rationed reads, in effrec's columns, LZ4 compression and compacted
64k-row batches (``analyzer_speed.write_gpu_samples``); per rank (one per GPU), its events written
by effrec's own :class:`~efftrace.recorder.writer.StreamWriter` (a train step every ``--step-s``
seconds with a little jitter per rank). Then, interleaved ``--repeat`` times, each in a fresh
process: the single-process analysis, and the same analysis on a local Dask cluster of one and of
two worker processes (one thread each), as ``effanalyze --workers`` starts it. Each process
analyses the run twice and times the second: the steady state, without the cluster's start-up,
first imports and first-touch allocations, which a one-off command pays once. Reported per way:
wall seconds, CPU seconds (the driver with the scheduler, plus every worker), sample rows per
second, the workers' peak RSS, and the largest relative difference of any number of the JSON
summary from the single process's (``figure_compare``).
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
from analyzer_speed import T0_NS, write_gpu_samples
from checkouts import python_path
from figure_compare import largest_difference

from efftrace.recorder.format import schema
from efftrace.recorder.writer import IPC_OPTIONS, StreamWriter

REPO = Path(__file__).resolve().parent.parent
WAYS = {"single": 0, "dask-1": 1, "dask-2": 2}  # way: worker processes (0: no cluster)


def make_fleet(run_dir: Path, hosts: int, gpus: int, hours: float, step_s: float) -> tuple[int, int]:
    """Write the fleet's run directory; returns (GPU sample rows, event rows)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    polls = int(hours * 3600 * 10)
    steps = int(hours * 3600 / step_s)
    rng = np.random.default_rng(0)
    host_names = [f"node-{number:02d}" for number in range(hosts)]
    for host in host_names:
        write_gpu_samples(run_dir / schema.gpu_samples_file(host), polls, gpus, rng, IPC_OPTIONS)
    step_start = T0_NS + (np.arange(steps) * step_s * 1e9).astype(np.int64)
    for rank in range(hosts * gpus):
        host = host_names[rank // gpus]
        start = step_start + rng.integers(0, 5_000_000, steps)  # ranks start each step within 5 ms
        end = step_start + int(step_s * 0.95e9) + rng.integers(0, 5_000_000, steps)
        values = {
            "kind": ["train_step"] * steps,
            "rank": [rank] * steps,
            "pid": [1000 + rank] * steps,
            "step": list(range(1, steps + 1)),
            "start_ns": start.tolist(),
            "end_ns": end.tolist(),
            "synced": [True] * steps,
            "samples": [8] * steps,
            "tokens": rng.integers(1000, 4096, steps).tolist(),
        }
        writer = StreamWriter(run_dir / schema.events_file(host, rank), schema.EVENTS_SCHEMA, 3600.0, steps + 1)
        writer.extend([values.get(field.name, [None] * steps) for field in schema.EVENTS_SCHEMA])
        writer.close()
    meta = {
        "format_version": schema.FORMAT_VERSION,
        "name": "synthetic-fleet",
        "status": "complete",
        "started_ns": T0_NS,
        "ended_ns": int(T0_NS + hours * 3600e9),
        "hosts": [
            {
                "hostname": host,
                "gpus": [{"index": g, "uuid": f"GPU-{host}-{g}", "name": "NVIDIA H100 80GB HBM3"} for g in range(gpus)],
            }
            for host in host_names
        ],
        "sampling": {"interval_s": 0.1, "energy_interval_s": 2.0},
        "model": {"total_params": 70_000_000_000, "trainable_params": 70_000_000_000},
        "world_size": hosts * gpus,
    }
    (run_dir / schema.META_FILE).write_text(json.dumps(meta))
    return polls * gpus * hosts, steps * hosts * gpus


def measure(way: str, run_dir: Path, document_path: Path) -> dict:
    """One analysis of the fleet, the way named; its summary document is written to ``document_path``."""
    from efftrace.analyzer.compute.metrics import analyze
    from efftrace.analyzer.present.files import summary_document
    from efftrace.analyzer.read.loader import open_run

    workers = WAYS[way]
    if not workers:
        analyze(open_run(run_dir))  # the first analysis pays first imports and first-touch allocations: untimed
        cpu, began = time.process_time(), time.perf_counter()
        result = analyze(open_run(run_dir))
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    else:
        from efftrace.analyzer.cluster import cluster_engine

        with cluster_engine(workers) as engine:  # as effanalyze --workers starts it
            client = engine.client
            analyze(open_run(run_dir), engine=engine)  # as in one process: the first analysis untimed
            worker_cpu = client.run(time.process_time)
            cpu, began = time.process_time(), time.perf_counter()
            result = analyze(open_run(run_dir), engine=engine)
            wall, cpu = time.perf_counter() - began, time.process_time() - cpu
            cpu += sum(now - worker_cpu[worker] for worker, now in client.run(time.process_time).items())
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            peak = max(peaks.values())
    document_path.write_text(json.dumps(summary_document(result)))
    return {"way": way, "wall_s": wall, "cpu_s": cpu, "peak_rss_mib": peak}


def _child(way: str, run_dir: Path, document_path: Path) -> dict:
    output = subprocess.run(
        [sys.executable, str(REPO / "bench" / "fleet.py"), "--child", way, "--workdir", str(run_dir)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": python_path(REPO), "EFFTRACE_FLEET_DOCUMENT": str(document_path)},
        cwd=REPO,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=32)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--step-s", type=float, default=2.0, help="seconds per train step")
    parser.add_argument("--repeat", type=int, default=3, help="analyses of each way, interleaved (median reported)")
    parser.add_argument("--workdir", type=Path, help="where the trace is made (default: a temporary directory)")
    parser.add_argument("--child", choices=list(WAYS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.workdir, Path(os.environ["EFFTRACE_FLEET_DOCUMENT"]))))
        return
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = args.workdir or Path(scratch) / "fleet"
        began = time.perf_counter()
        rows, events = make_fleet(run_dir, args.hosts, args.gpus, args.hours, args.step_s)
        size = sum(path.stat().st_size for path in run_dir.iterdir())
        print(
            f"fleet: {args.hosts} hosts x {args.gpus} GPUs x {args.hours:g} h at 10 Hz: {rows:,} GPU sample rows, "
            f"{events:,} step events of {args.hosts * args.gpus} ranks, {size / 2**20:.0f} MiB, made in "
            f"{time.perf_counter() - began:.0f} s"
        )
        for path in run_dir.iterdir():  # read once, so that no way pays for a cold page cache
            path.read_bytes()
        runs: dict[str, list[dict]] = {way: [] for way in WAYS}
        documents = {way: Path(scratch) / f"{way}.json" for way in WAYS}
        for _ in range(args.repeat):
            for way in WAYS:
                runs[way].append(_child(way, run_dir, documents[way]))
        reference = json.loads(documents["single"].read_text())
        print("| way | wall s (runs) | median wall s | median CPU s | sample rows/s | peak RSS MiB | max rel. diff |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        medians = {}
        for way, measured in runs.items():
            wall, cpu = _median([m["wall_s"] for m in measured]), _median([m["cpu_s"] for m in measured])
            difference, where = largest_difference(reference, json.loads(documents[way].read_text()))
            medians[way] = (wall, cpu, difference, where)
            walls = ", ".join(f"{m['wall_s']:.2f}" for m in measured)
            print(
                f"| {way} | {walls} | {wall:.2f} | {cpu:.2f} | "
                f"{rows / wall / 1e6:.1f} M | {max(m['peak_rss_mib'] for m in measured):.0f} | {difference:.1e} |"
            )
        single, one, two = medians["single"], medians["dask-1"], medians["dask-2"]
        print(f"CPU time, Dask 1 worker / single process: {one[1] / single[1]:.3f}x (target <= 1.15)")
        print(f"throughput, Dask 2 workers / Dask 1 worker: {one[0] / two[0]:.2f}x (target >= 1.7)")
        print(f"largest figure difference from the single process: {max(one[2], two[2]):.1e} at {two[3]}")


if __name__ == "__main__":
    main()
