"""The committed H100 fidelity recordings, re-analysed: the claims in docs/benchmarks.md hold."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from helpers.runs import ROOT

RESULTS = ROOT / "bench" / "fidelity" / "results" / "2026-11-23"


def reanalyse(script: str, committed: Path, tmp_path: Path, tables: tuple[str, ...]) -> Path:
    """Run ``bench/fidelity/SCRIPT`` on a copy of the committed recordings (their CSVs left out);
    every table must come out byte for byte as committed. Returns the copy."""
    results = tmp_path / "results"
    shutil.copytree(committed, results, ignore=shutil.ignore_patterns("*.csv"))
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fidelity" / script), str(results)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    for name in tables:
        assert (results / f"{name}.csv").read_text() == (committed / f"{name}.csv").read_text(), name
    return results


def test_fidelity_tables_reproduce_from_the_recordings(tmp_path):
    tables = ("energy", "step_energy", "latency", "overhead", "pcu", "recorder_cost")
    results = reanalyse("analyse.py", RESULTS, tmp_path, tables)

    def rows(name: str) -> list[dict]:
        with (results / f"{name}.csv").open() as handle:
            return list(csv.DictReader(handle))

    buffer = [row for row in rows("energy") if "driver buffer" in row["method"]]
    assert buffer and all(abs(float(row["error_pct"])) <= 0.5 for row in buffer)
    assert all(abs(float(row["al_error_pct"])) <= 1.0 for row in rows("latency"))
    matmul, copy = rows("pcu")
    assert float(matmul["pcu_tensor_gpm"]) > 0.5 > float(copy["pcu_tensor_gpm"])
    assert float(copy["pcu_nvml_util"]) > 0.9, "NVML utilisation cannot tell the two apart"


def test_overhead_tables_reproduce_and_the_recorder_cost_targets_hold(tmp_path):
    results = reanalyse("overhead.py", RESULTS.parent / "2026-11-23-overhead", tmp_path, ("overhead", "recorder_cost"))
    with (results / "recorder_cost.csv").open() as handle:
        costs = list(csv.DictReader(handle))
    at_default = [row for row in costs if float(row["poll_s"]) == 0.1]
    assert len(at_default) == 7
    assert all(float(row["sampler_cpu_pct_of_core_per_gpu"]) <= 1.0 for row in at_default)
    assert all(float(row["mb_per_gpu_hour"]) <= 5.0 for row in costs)
    with (results / "overhead.csv").open() as handle:
        pairs = [row for row in csv.DictReader(handle) if row["pair"][0].isdigit()]
    assert len(pairs) == 6


def test_event_timed_steps_reproduce_and_agree_with_the_trainers_own_cuda_events(tmp_path):
    committed = RESULTS.parent / "2026-11-23-events"
    results = reanalyse("overhead.py", committed, tmp_path, ("overhead", "recorder_cost", "latency"))
    with (results / "latency.csv").open() as handle:
        latency = {row["run"]: row for row in csv.DictReader(handle)}
    assert latency["trainer-effrec-events"]["cuda_sync"] == "True"
    assert all(abs(float(row["al_error_pct"])) <= 1.0 for row in latency.values())
    with (results / "overhead.csv").open() as handle:
        overhead = list(csv.DictReader(handle))
    assert len([row for row in overhead if row["pair"][0].isdigit()]) == 6
    assert any(row["pair"].startswith("control") for row in overhead)
    for events in (committed / "runs").glob("*/events-*.arrow"):
        with pa.ipc.open_stream(events) as reader:
            steps = reader.read_all()
        assert steps.num_rows >= 150 and all(steps["synced"].to_pylist()), "every step timed by the GPU's events"
