"""``effanalyze --follow`` beside a real Trainer under effrec: live blocks, TensorBoard, Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.compute.settings import AnalysisSettings
from efftrace.analyzer.present.console import format_value
from efftrace.analyzer.present.tensorboard_events import EVENT_FILE_SUFFIX
from efftrace.analyzer.read.loader import open_run
from efftrace.analyzer.result import Figure
from helpers.runs import SCRIPTS

pytestmark = pytest.mark.e2e


class Watched:
    """A process whose output lines are kept with the time each arrived."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.time(), line.rstrip("\n")))

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    def live_blocks(self) -> list[tuple[float, str]]:
        return [(at, line) for at, line in self.lines if line.startswith("[EfficientLLM Metrics]") and "[live:" in line]


def _record(tmp_path: Path, tiny_llama: Path, steps: int) -> tuple[subprocess.Popen, Path]:
    run_dir = tmp_path / "run"
    job = [sys.executable, str(SCRIPTS / "slow_trainer.py"), str(tiny_llama / "model"), str(tmp_path / "out")]
    recorder = subprocess.Popen(
        [sys.executable, str(SCRIPTS / "effrec_fake_gpu.py"), "--run-dir", str(run_dir), "--interval", "0.05", "--",
         *job, str(steps), "0.3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (run_dir / "meta.json").is_file():
        assert time.monotonic() < deadline and recorder.poll() is None, "effrec did not start the run"
        time.sleep(0.1)
    return recorder, run_dir


def _follow(run_dir: Path, *options: str) -> Watched:
    return Watched(
        [sys.executable, "-m", "efftrace.analyzer", str(run_dir), "--follow", "--log-interval", "5", *options]
    )


def test_follow_prints_each_window_during_the_run_then_the_full_analysis(tmp_path, tiny_llama):
    recorder, run_dir = _record(tmp_path, tiny_llama, steps=20)
    alerts = tmp_path / "alerts.jsonl"
    watched = _follow(run_dir, "--tensorboard", "--alerts", str(alerts))
    assert recorder.wait(180) == 0
    assert watched.wait(60) == 0, "\n".join(line for _, line in watched.lines)[-3000:]
    blocks = watched.live_blocks()
    assert [line.split(":")[0] for _, line in blocks] == [f"[EfficientLLM Metrics] Step {n}" for n in (5, 10, 15, 20)]
    meta = json.loads((run_dir / "meta.json").read_text())
    assert blocks[0][0] < meta["ended_ns"] / 1e9, "the first window was shown while the job ran"
    text = [line for _, line in watched.lines]
    assert any(line.startswith("efftrace: run run (complete)") for line in text), "then the full analysis"

    final = analyze(open_run(run_dir), AnalysisSettings(log_interval=5)).windows.to_pylist()
    shown_al = [line.split(": ")[1].split()[0] for line in text if line.startswith("  AL (Seconds):")]
    expected = [format_value(Figure("al_seconds", "", row["al_seconds"], "s", "")) for row in final]
    assert shown_al[:4] == expected, "each live AL is what the final analysis gives its window"

    (event_file,) = (tmp_path / "out" / "runs").glob(f"*/events.out.tfevents.*{EVENT_FILE_SUFFIX}")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(event_file))
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    assert "efficientllm/al_seconds" in tags
    for tag in tags:
        assert [event.step for event in accumulator.Scalars(tag)] == [5, 10, 15, 20], tag
    assert alerts.exists() and alerts.read_text() == "", "a healthy run: the alerts file is made, and empty"


def test_ctrl_c_stops_watching_with_exit_0(tmp_path, tiny_llama):
    recorder, run_dir = _record(tmp_path, tiny_llama, steps=40)
    watched = _follow(run_dir)
    deadline = time.monotonic() + 120
    while not watched.live_blocks():
        assert time.monotonic() < deadline, "no live block"
        time.sleep(0.2)
    watched.process.send_signal(signal.SIGINT)
    assert watched.wait(30) == 0
    assert recorder.wait(180) == 0, "the job goes on and ends as it would have"
    assert not any("efftrace: run" in line for _, line in watched.lines), "no analysis after Ctrl-C"


def test_follow_on_a_finished_run_prints_the_analysis_and_exits(tmp_path):
    run_dir = Path(__file__).resolve().parents[2] / "sample_traces" / "h100-lora-sft" / "trace"
    watched = _follow(run_dir)
    assert watched.wait(60) == 0
    assert not watched.live_blocks()
    assert any(line.startswith("[EfficientLLM Metrics] Step 200:") for _, line in watched.lines)
