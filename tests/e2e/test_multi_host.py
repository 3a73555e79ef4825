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
from helpers.llamafactory import tiny_sft_config
from helpers.runs import SCRIPTS

JOB = SCRIPTS / "api_job.py"
OTHER_HOST = "efftrace-second-host"


def _can_rename_host() -> str | None:
    if shutil.which("unshare") is None:
        return "unshare is not installed"
    probe = subprocess.run(["unshare", "--uts", "hostname", OTHER_HOST], capture_output=True, text=True)
    return None if probe.returncode == 0 else f"unshare --uts was refused ({probe.stderr.strip() or 'not root'})"


@pytest.fixture
def second_host() -> str:
    """The second host's name, where this machine lets a process tree take one of its own."""
    reason = _can_rename_host()
    if reason:
        pytest.skip(reason)
    return OTHER_HOST


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
def test_two_hosts_share_one_run_and_the_last_to_end_finalises_it(tmp_path, second_host):
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
def test_a_host_that_dies_leaves_its_own_status_not_the_runs(tmp_path, second_host):
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


@pytest.mark.e2e
def test_llamafactory_lora_on_two_hosts_of_two_ranks_is_one_run(tmp_path, tiny_llama, second_host):
    """``torchrun --nnodes 2 --nproc-per-node 2`` as LLaMA-Factory launches it (gloo, CPU), one effrec per
    host, the second host in its own UTS namespace; rendezvous on 127.0.0.1."""
    pytest.importorskip("llamafactory")
    datasets = pytest.importorskip("datasets")
    bin_dir = Path(sys.executable).parent
    run_dir, port = tmp_path / "runs" / "lora-job", "29613"
    launched = []
    for node, host in ((0, None), (1, OTHER_HOST)):
        config = tmp_path / f"node{node}.yaml"
        config.write_text(
            tiny_sft_config(
                tiny_llama / "model",
                tiny_llama / "data",
                tmp_path / "out",
                tokenized_path=tmp_path / f"tokenized-{node}",  # each node tokenizes for itself
                logging_steps=5,
                report_to="none",
                per_device_train_batch_size=1,
                learning_rate="1.0e-4",
                num_train_epochs=2.0,
            )
        )
        command = [sys.executable, "-m", "efftrace.recorder", "--run-dir", str(run_dir), "--",
                   str(bin_dir / "llamafactory-cli"), "train", str(config)]  # fmt: skip
        if host is not None:
            command = ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *command]
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1",
               "FORCE_TORCHRUN": "1", "NNODES": "2", "NODE_RANK": str(node), "NPROC_PER_NODE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}  # fmt: skip
        log = tmp_path / f"node{node}.log"  # a file, not a pipe: a full pipe would stall its node and both with it
        with log.open("w") as output:
            launched.append((subprocess.Popen(command, env=env, stdout=output, stderr=output, cwd=tmp_path), log))
    for process, log in launched:
        assert process.wait(timeout=600) == 0, log.read_text()[-3000:]

    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["world_size"] == 4
    assert sorted(host["hostname"] for host in meta["hosts"]) == sorted([socket.gethostname(), OTHER_HOST])
    assert [rank["rank"] for rank in meta["ranks"]] == [0, 1, 2, 3]
    events_files = sorted(path.name for path in run_dir.glob("events-*.arrow"))
    assert len(events_files) == 4 and {name for name in events_files if OTHER_HOST in name} == {
        f"events-{OTHER_HOST}-r2.arrow",
        f"events-{OTHER_HOST}-r3.arrow",
    }
    rows = [row for path in sorted(run_dir.glob("events-*.arrow")) for row in _read(path)]
    steps = [row for row in rows if row["kind"] == "train_step"]
    # 40 examples over 4 ranks, one per micro-batch and step: 10 steps an epoch, 2 epochs, on every rank
    for rank in range(4):
        assert [row["step"] for row in steps if row["rank"] == rank] == list(range(1, 21))
    tokenized = datasets.load_from_disk(str(tmp_path / "tokenized-0"))["train"]
    expected_tokens = sum(sum(1 for m in mask if m) for mask in tokenized["attention_mask"])
    assert sum(row["samples"] for row in steps) == 2 * len(tokenized) == 80
    assert sum(row["tokens"] for row in steps) == 2 * expected_tokens

    summary = effanalyze_json(run_dir)
    assert "train_step events of 4 ranks, 20 steps" in summary["windows"]["train"]["figures"]["al_seconds"]["source"]
    assert summary["windows"]["train"]["figures"]["tt_tokens_per_param_per_sec"]["value"] > 0
    (clock,) = summary["run"]["clocks"]
    print(f"clock offset of {OTHER_HOST}: {clock}")
    assert clock["host"] == OTHER_HOST and abs(clock["offset_ms"]) < 5.0, "one machine: the same clock"
    assert not clock["corrected"] or abs(clock["offset_ms"]) > 1.0
    per_host = {row["host"]: row for row in summary["run"]["per_host"]}
    assert {row["ranks"] for row in per_host.values()} == {2} and len(per_host) == 2
    console = subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", str(run_dir)], capture_output=True, text=True, timeout=120
    ).stdout
    assert "Per host, train window" in console and OTHER_HOST in console.split("Per host", 1)[1]


def _read(path: Path) -> list[dict]:
    import pyarrow as pa

    with pa.OSFile(str(path)) as source:
        return pa.ipc.open_stream(source).read_all().to_pylist()
