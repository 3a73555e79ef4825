"""Faults while recording: the job always finishes with its own exit code, and what was written stays readable.

NVML faults are injected into ``effrec`` itself (run in-process, its NVML bindings replaced by the
fake); the job is a real child process recording steps through the API. A full disk is a real
tiny filesystem where this machine lets the test mount one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import efftrace.recorder.sampling.host
from efftrace.analyzer.cli import main as effanalyze
from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.read.loader import open_run
from efftrace.recorder.cli import effrec
from helpers.fake_nvml import NVML_ERROR_UNKNOWN, FakeGpu, FakeNvml
from helpers.runs import SCRIPTS, run_effrec

JOB = SCRIPTS / "api_job.py"


def _effrec_in_process(out: Path, seconds: float, code: int, caplog: pytest.LogCaptureFixture) -> tuple[int, str]:
    """effrec's exit code, and what it said: its own lines and its warnings (logged on ``efftrace``)."""
    result = CliRunner().invoke(
        effrec,
        ["--out", str(out), "--interval", "0.05", "--", sys.executable, str(JOB), str(seconds), str(code)],
        standalone_mode=False,
    )
    assert result.exception is None, result.exception
    return result.return_value, result.output + caplog.text


def test_nvml_faults_mid_run_degrade_the_trace_not_the_job(tmp_path, monkeypatch, caplog):
    gpus = [FakeGpu("GPU-a"), FakeGpu("GPU-b"), FakeGpu("GPU-c")]
    monkeypatch.setattr(efftrace.recorder.sampling.host, "load_nvml", lambda: FakeNvml(gpus))

    def faults() -> None:
        time.sleep(1.0)
        gpus[1].lost = True  # fell off the bus
        gpus[0].unsupported.add("nvmlDeviceGetClockInfo")  # NOT_SUPPORTED appearing mid-run
        gpus[0].slow["nvmlDeviceGetMemoryInfo"] = 0.2  # a driver call that hangs for a while
        gpus[2].failing["nvmlDeviceGetUtilizationRates"] = NVML_ERROR_UNKNOWN

    threading.Thread(target=faults, daemon=True).start()
    code, output = _effrec_in_process(tmp_path, seconds=3.0, code=7, caplog=caplog)
    assert code == 7
    for warning in ("GPU 1 was lost", "nvmlDeviceGetClockInfo", "sm_clock", "utilization"):
        assert sum(warning in line for line in output.splitlines()) <= 1
    assert "GPU 1 was lost" in output and "sm_clock not supported" in output
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "failed"
    result = analyze(open_run(run_dir))
    per_gpu = {row["gpu"]: row for row in result.per_gpu.to_pylist() if row["window"] == "train"}
    assert per_gpu[1]["coverage_power"] < 0.6 < per_gpu[0]["coverage_power"]  # GPU 1 stopped after ~1 s of 3


def test_a_sampler_that_raises_ends_sampling_not_the_job(tmp_path, monkeypatch, caplog):
    class Exploding(FakeNvml):
        def nvmlDeviceGetTemperature(self, handle, sensor):
            raise RuntimeError("boom")

    monkeypatch.setattr(efftrace.recorder.sampling.host, "load_nvml", lambda: Exploding([FakeGpu("GPU-a")]))
    code, output = _effrec_in_process(tmp_path, seconds=1.0, code=0, caplog=caplog)
    assert code == 0 and output.count("sampler stopped") == 1
    (run_dir,) = tmp_path.iterdir()
    assert CliRunner().invoke(effanalyze, [str(run_dir), "--quiet"]).exit_code == 0


@pytest.fixture
def tiny_filesystem(tmp_path):
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs here ({mounted.stderr.strip() or 'mount failed'})")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_ends_recording_with_a_warning_not_the_job(tiny_filesystem):
    filler = tiny_filesystem / "filler"
    filler.write_bytes(b"\0" * 36 * 1024)  # leave a few KB: room for meta.json, not for the whole run
    result = run_effrec(
        ["--out", str(tiny_filesystem / "runs"), "--interval", "0.05", "--", sys.executable, str(JOB), "4", "5"],
        tiny_filesystem.parent,
        env={"EFFICIENTLLM_HISTORY_SIZE": "5"},
        timeout=120,
    )
    assert result.returncode == 5, result.stderr
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr
    (run_dir,) = (tiny_filesystem / "runs").iterdir()
    analysed = CliRunner().invoke(effanalyze, [str(run_dir), "--quiet"])
    assert analysed.exit_code in (0, 2) and "Traceback" not in analysed.output
