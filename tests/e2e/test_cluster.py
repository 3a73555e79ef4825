"""The analysis on real Dask clusters gives the single process's figures.

Through a ``LocalCluster`` of two worker processes (every sample trace, cut into small partitions
so that each spreads over both), through a scheduler and two workers started as processes on
127.0.0.1 (``effanalyze --scheduler``, ``compare --workers``), with a worker killed in the
middle of an analysis, and the command line's refusals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from efftrace.analyzer.cluster import DaskEngine
from helpers.figures import assert_same, document
from helpers.ports import free_port

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_TRACES = sorted(ROOT.glob("sample_traces/*/trace"))
SMALL_PARTITIONS = 8_000  # bytes: every sample trace in several partitions
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def local_client() -> Iterator[distributed.Client]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory) -> Iterator[str]:
    """A scheduler and two workers, each its own process, as a cluster's admin starts them."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("cluster-logs")
    quiet = {"stdout": subprocess.DEVNULL}
    processes = [
        subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stderr=(logs / "scheduler.log").open("w"),
            **quiet,
        )
    ]
    for number in range(2):
        processes.append(
            subprocess.Popen(
                [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard"],
                stderr=(logs / f"worker-{number}.log").open("w"),
                **quiet,
            )
        )
    try:
        with distributed.Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.parametrize("trace", SAMPLE_TRACES, ids=lambda path: path.parent.name)
def test_every_sample_trace_on_a_local_cluster(local_client, trace):
    engine = DaskEngine(local_client)
    engine.partition_bytes = SMALL_PARTITIONS
    expected, notes = document(trace)
    got, cluster_notes = document(trace, engine)
    assert_same(expected, got)
    assert cluster_notes == notes


def test_a_run_at_a_url_on_a_local_cluster(local_client):
    """A ``file://`` URL: every worker process opens the files through fsspec, one task per file."""
    trace = ROOT / "sample_traces" / "h200-zero2-full-sft" / "trace"
    url = f"file://{trace.resolve()}"
    expected, notes = document(trace)
    got, cluster_notes = document(url, DaskEngine(local_client))
    assert got.pop("run_dir") == url
    expected.pop("run_dir")
    assert_same(expected, got)
    assert cluster_notes == notes


def _effanalyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "effanalyze"), *args], capture_output=True, text=True, timeout=180, env={**os.environ, "CI": "1"}
    )


def test_effanalyze_on_a_scheduler_and_two_worker_processes(scheduler_address, tmp_path):
    trace = ROOT / "sample_traces" / "h200-zero3-lora-sft" / "trace"
    local, remote = tmp_path / "local.json", tmp_path / "remote.json"
    alone = _effanalyze(str(trace), "--json", str(local))
    spread = _effanalyze(str(trace), "--scheduler", scheduler_address, "--json", str(remote))
    assert alone.returncode == 0 and spread.returncode == 0, spread.stderr
    assert_same(json.loads(local.read_text()), json.loads(remote.read_text()))
    console = [line for line in spread.stdout.splitlines() if not line.startswith("wrote ")]
    assert console == [line for line in alone.stdout.splitlines() if not line.startswith("wrote ")]


def test_a_worker_killed_mid_analysis_costs_a_retry_not_a_figure(scheduler_address):
    trace = ROOT / "sample_traces" / "h200-diagnosis-compute" / "trace"
    expected, notes = document(trace)
    with distributed.Client(scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        workers = client.run(os.getpid)
        victim = sorted(workers.values())[0]
        engine = DaskEngine(client)
        engine.partition_bytes = 2_000  # many tasks: most are still to run when the first one ends
        killed: list[int] = []

        def kill_once(name: str, done: int, total: int) -> None:
            if not killed and done < total:
                os.kill(victim, signal.SIGKILL)
                killed.append(done)

        engine.progress = kill_once
        got, cluster_notes = document(trace, engine)
        assert killed, "the analysis ended before a worker could be killed"
        assert_same(expected, got)
        assert cluster_notes == notes
        client.wait_for_workers(2, timeout=60)  # its nanny started it again, for the tests after this one
        assert victim not in client.run(os.getpid).values()


def test_compare_spreads_its_runs_over_a_local_cluster(tmp_path):
    runs = [str(ROOT / "sample_traces" / name / "trace") for name in ("h100-lora-sft", "h100-predict")]
    alone = _effanalyze("compare", *runs, "--markdown", "-")
    spread = _effanalyze("compare", *runs, "--workers", "2", "--markdown", "-")
    assert alone.returncode == 0 and spread.returncode == 0, spread.stderr
    assert spread.stdout == alone.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers=0 is not accepted: give an integer from 1"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "give --workers (a local cluster) or --scheduler"),
        (["--scheduler", "tcp://127.0.0.1:{port}"], "--scheduler tcp://127.0.0.1:{port}: cannot reach the scheduler"),
    ],
)
def test_the_command_line_refuses_a_cluster_it_cannot_use_in_one_line(args, message):
    port = str(free_port())
    args = [arg.replace("{port}", port) for arg in args]
    began = time.monotonic()
    result = _effanalyze(str(SAMPLE_TRACES[0]), *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message.replace("{port}", port) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and time.monotonic() - began < 30
