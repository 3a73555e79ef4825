"""One run for a job on several hosts: two effrecs with their own host names (``unshare --uts``)
share one run directory, each writes only its own files, and the last to end finalises the run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from efftrace.recorder.run_dir import job_name
from helpers.runs import SCRIPTS

JOB = SCRIPTS / "api_job.py"
OTHER_HOST = "efftrace-second-host"


def _can_rename_host() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    probe = subprocess.run(["unshare", "--uts", "hostname", OTHER_HOST], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"unshare --uts was refused ({probe.stderr.strip() or 'not root'})"


def effrec_on(host: str | None, run_dir: Path, seconds: float, rank: int) -> subprocess.Popen:
    """effrec around a job of ``seconds`` that records as ``rank``, on this host or on ``host``."""
    command = [sys.executable, "-m", "efftrace.recorder", "--run-dir", str(run_dir), "--",
               sys.executable, str(JOB), str(seconds), "0"]  # fmt: skip
    if host is not None:
        command = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *command]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RANK": str(rank)},
        start_new_session=True,
    )


def effanalyze_json(run_dir: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", str(run_dir), "--json", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.e2e
def test_two_hosts_share_one_run_and_the_last_to_end_finalises_it(tmp_path):
    reason = _can_rename_host()
    if reason:
        pytest.skip(reason)
    run_dir = tmp_path / "job"
    here = socket.gethostname()
    first, second = effrec_on(None, run_dir, 2.0, 0), effrec_on(OTHER_HOST, run_dir, 4.0, 1)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "running", "the other host still records: the run is not finalised yet"
    assert second.wait(timeout=120) == 0, second.stderr.read()

    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["exit_code"] == 0
    assert sorted(host["hostname"] for host in meta["hosts"]) == sorted([here, OTHER_HOST])
    assert all(host["status"] == "complete" for host in meta["hosts"])
    files = {path.name for path in run_dir.iterdir()}
    assert {f"host-{OTHER_HOST}.json", f"events-{OTHER_HOST}-r1.arrow"} <= files
    assert any(name.startswith("events-") and name.endswith("-r0.arrow") and OTHER_HOST not in name for name in files)
    summary = effanalyze_json(run_dir)
    assert "train_step events of 2 ranks" in summary["windows"]["train"]["figures"]["al_seconds"]["source"]
    assert summary["run"]["unfinished"] is None


@pytest.mark.e2e
def test_a_host_that_dies_leaves_its_own_status_not_the_runs(tmp_path):
    reason = _can_rename_host()
    if reason:
        pytest.skip(reason)
    run_dir = tmp_path / "job"
    survivor, doomed = effrec_on(None, run_dir, 3.0, 0), effrec_on(OTHER_HOST, run_dir, 60.0, 1)
    deadline = time.monotonic() + 30
    while not (run_dir / f"host-{OTHER_HOST}.json").exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1.0)
    os.killpg(doomed.pid, signal.SIGKILL)  # the whole second host goes: effrec and its job
    doomed.wait(timeout=30)
    assert survivor.wait(timeout=120) == 0
    hosts = {host["hostname"]: host for host in (json.loads(p.read_text()) for p in run_dir.glob("host-*.json"))}
    assert hosts[OTHER_HOST]["status"] == "running" and hosts[socket.gethostname()]["status"] == "complete"
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "running"
    unfinished = effanalyze_json(run_dir)["run"]["unfinished"]
    assert unfinished is not None and f"host(s) not finished: {OTHER_HOST}" in unfinished["message"]


@pytest.mark.e2e
def test_every_node_of_a_slurm_job_lands_in_one_directory_and_a_host_never_records_twice(tmp_path):
    env = {**os.environ, "SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0"}
    job = [sys.executable, str(JOB), "0.5", "0"]
    command = [sys.executable, "-m", "efftrace.recorder", "--out", str(tmp_path), "--", *job]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 0, first.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["slurm-4242.0"]
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 2
    assert "already holds a recording of host" in again.stderr and "give another --run-dir" in again.stderr


@pytest.mark.parametrize(
    ("command", "env", "name"),
    [
        (["torchrun", "--nnodes", "2", "--rdzv-id", "abc", "train.py"], {}, "torchrun-abc"),
        (["torchrun", "--rdzv_id=7", "train.py"], {}, "torchrun-7"),
        (["torchrun", "--rdzv-id", "none", "train.py"], {}, None),
        (["python", "train.py"], {"SLURM_JOB_ID": "99"}, "slurm-99"),
        (["python", "train.py"], {"SLURM_JOB_ID": "99", "SLURM_STEP_ID": "3"}, "slurm-99.3"),
        (["python", "train.py"], {}, None),
    ],
)
def test_the_job_names_its_run(command, env, name):
    assert job_name(command, env) == name
