"""Runs with pieces missing: said first, each naming its file; a missing GPU shown as missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from helpers.runs import ROOT, SCRIPTS, only_run_dir, run_effrec

LORA = ROOT / "sample_traces" / "h100-lora-sft" / "trace"


def effanalyze(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result


def test_a_gpu_whose_samples_file_is_absent_is_named_and_shown_missing(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(LORA, run)
    (run / "gpu-vm.arrow").unlink()
    (run / "power-vm.arrow").unlink()
    lines = effanalyze(str(run)).stdout.splitlines()
    assert (
        lines[1]
        == "MISSING: GPU 0 of host vm (NVIDIA H100 80GB HBM3) is listed in meta.json but gpu-vm.arrow is missing"
    )
    row = next(line for line in lines if line.strip().startswith("vm:0"))
    assert "missing" in row and "n/a" not in row and row.rstrip().endswith("gpu-vm.arrow is missing")
    summary = json.loads(effanalyze(str(run), "--json", "-").stdout)
    assert summary["run"]["gpus_missing"] == [
        {"host": "vm", "gpu": 0, "name": "NVIDIA H100 80GB HBM3", "why": "gpu-vm.arrow is missing"}
    ]


def test_a_rank_without_its_events_file_is_named(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(LORA, run)
    meta = json.loads((run / "meta.json").read_text())
    meta["ranks"].append({**meta["ranks"][0], "rank": 1})
    (run / "meta.json").write_text(json.dumps(meta))
    lines = effanalyze(str(run)).stdout.splitlines()
    assert "MISSING: rank 1 of host vm reported itself but events-vm-r1.arrow is missing" in lines[:3]


@pytest.mark.e2e
def test_a_run_without_nvml_says_so_first_and_claims_no_gpu_timing(tmp_path):
    result = run_effrec(["--out", str(tmp_path), "--", sys.executable, str(SCRIPTS / "api_job.py"), "1", "0"], tmp_path)
    assert result.returncode == 0, result.stderr
    run = only_run_dir(tmp_path)
    meta = json.loads((run / "meta.json").read_text())
    if not meta["hosts"][0].get("nvml_error"):
        pytest.skip("this machine has NVML")
    lines = effanalyze(str(run)).stdout.splitlines()
    assert lines[1].startswith(
        f"MISSING: no GPU was sampled on host {meta['hosts'][0]['hostname']}: NVML was not available ("
    )
    latency = next(line for line in lines if line.strip().startswith("AL (Seconds):"))
    assert "times on the host's clock (no step was timed on a GPU)" in latency
    assert "as the GPU reached them" not in latency
