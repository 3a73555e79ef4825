"""The analyzer benchmark runs end to end on a small trace, its baseline mode included."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from helpers.runs import ROOT


def test_benchmark_prints_both_implementations_and_the_interleaved_baseline(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "analyzer_speed.py"),
            *("--hours", "0.05", "--gpus", "2", "--steps", "200", "--repeat", "2"),
            *("--workdir", str(tmp_path / "run"), "--baseline", str(ROOT)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "trace: 3,600 GPU sample rows, 200 steps" in out
    assert re.search(r"baseline runs \(s\), interleaved: \d+\.\d+, \d+\.\d+", out)
    assert re.search(r"median: this checkout \d+\.\d+ s, baseline \d+\.\d+ s", out)
    rows = [line for line in out.splitlines() if line.startswith("| effanalyze") or line.startswith("| pandas")]
    assert len(rows) == 2 and all("| 20 |" in row for row in rows)  # 200 steps in 10-step log windows
    ours, theirs = (float(row.split("|")[-2]) for row in rows)  # AEC of window 1, W
    assert abs(ours - theirs) / ours < 0.05  # the same power, integrated two ways
    polars_row = next(line for line in out.splitlines() if line.startswith("| polars"))
    assert float(polars_row.split("|")[-2]) == pytest.approx(ours, rel=1e-9)
    exact = re.search(r"polars against effanalyze, per-window AEC and AMU: largest relative difference (\S+)", out)
    assert exact and float(exact.group(1)) <= 1e-9  # the polars version computes the same figures


def test_fleet_benchmark_compares_the_single_process_with_dask_side_by_side(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "fleet.py"),
            *("--hosts", "3", "--gpus", "2", "--hours", "0.05", "--step-s", "1", "--repeat", "1"),
            *("--workdir", str(tmp_path / "fleet")),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "fleet: 3 hosts x 2 GPUs x 0.05 h at 10 Hz: 10,800 GPU sample rows, 1,080 step events of 6 ranks" in out
    rows = {
        line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("| ") and "---" not in line
    }
    assert {"single", "dask-1", "dask-2"} <= set(rows)
    assert all(float(rows[way].split("|")[-2]) <= 1e-12 for way in ("dask-1", "dask-2"))  # the same figures
    assert re.search(r"CPU time, Dask 1 worker / single process: \d+\.\d+x", out)
    assert re.search(r"throughput, Dask 2 workers / Dask 1 worker: \d+\.\d+x", out)


def test_core_scaling_benchmark_times_copies_alone_and_together():
    trace = ROOT / "sample_traces" / "h100-lora-sft" / "trace"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "core_scaling.py"), str(trace), "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^alone: \d+\.\d+ s \(median", result.stdout, re.M)
    assert re.search(r"^2 at once: \d+\.\d+, \d+\.\d+ s \(median \d+\.\d+ each\)", result.stdout, re.M)
    assert re.search(r"throughput of 2 at once / 1 alone: \d+\.\d+x", result.stdout)
