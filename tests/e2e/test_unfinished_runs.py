"""Unfinished runs, for real: a job analysed while effrec records it, then effrec killed alone
(``kill -9``): the training goes on, says once that effrec has gone, and leaves a marker; every
output says the run is unfinished and what its figures cover."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from efftrace.recorder.config import FLUSH_INTERVAL_S
from helpers.runs import SCRIPTS

pytestmark = pytest.mark.e2e
JOB = SCRIPTS / "api_job.py"


def effanalyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", *args], capture_output=True, text=True, timeout=120
    )


def child_of(pid: int) -> int:
    """The one child process of ``pid`` (Linux ``/proc``)."""
    (children,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return int(children)


def is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def wait_for(condition, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_run_analysed_while_recording_then_with_effrec_killed(tmp_path):
    out = tmp_path / "runs"
    progress = tmp_path / "progress.txt"
    effrec = subprocess.Popen(
        [sys.executable, "-m", "efftrace.recorder", "--out", str(out), "--", sys.executable, str(JOB), "12", "0",
         str(progress)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert effrec.stdout.readline().strip() == "up"
        (run_dir,) = out.iterdir()
        wait_for(lambda: any(run_dir.glob("events-*.arrow")) and len(progress.read_text().splitlines()) > 40)
        time.sleep(FLUSH_INTERVAL_S + 0.5)  # a flush with steps in it

        live = effanalyze(str(run_dir), "--json", str(tmp_path / "live.json"), "--report", str(tmp_path / "live.html"))
        assert live.returncode == 0, live.stderr
        lines = live.stdout.splitlines()
        assert lines[1].startswith("UNFINISHED: ") and "is still recording it" in lines[1], lines[:3]
        summary = json.loads((tmp_path / "live.json").read_text())
        assert summary["run"]["unfinished"]["state"] == "recording"
        assert summary["run"]["unfinished"]["partial_windows"][:2] == ["job", "train"]
        assert summary["windows"]["train"]["figures"]["al_seconds"]["value"] > 0.04
        assert "unfinished run" in (tmp_path / "live.html").read_text()

        # find the job (effrec's child) before effrec goes, then kill effrec alone
        job_pid = int(
            subprocess.run(["pgrep", "-P", str(effrec.pid)], capture_output=True, text=True).stdout.split()[0]
        )
        os.kill(effrec.pid, signal.SIGKILL)
        effrec.wait(timeout=30)
        wait_for(lambda: any(run_dir.glob("recorder-gone-*.json")), seconds=FLUSH_INTERVAL_S * 4)
        os.kill(job_pid, 0)  # the training goes on
    finally:
        if effrec.poll() is None:
            os.killpg(effrec.pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{job_pid}").exists() or is_zombie(job_pid), seconds=60)

    assert json.loads((run_dir / "meta.json").read_text())["status"] == "running"
    after = effanalyze(str(run_dir), "--json", "-")
    assert after.returncode == 0, after.stderr
    unfinished = json.loads(after.stdout)["run"]["unfinished"]
    assert unfinished["state"] == "stopped"
    assert "saw effrec stop by" in unfinished["message"], "the marker the training left is reported"
    steps = json.loads(after.stdout)["run"]["train_steps"]
    assert steps >= len(progress.read_text().splitlines()) - 5, "the job's steps after effrec died were still written"
