"""A training job under effrec killed at random moments: the trace stays usable and loses at most a flush.

Signals: SIGKILL to the whole process group (effrec dies with the job: ``meta.json`` stays
``running``), SIGTERM and SIGINT to effrec (forwarded to the job: ``killed``). After each kill the
trace must load, ``effanalyze`` must report on the steps recorded, and every step the job finished
more than one flush interval (plus a margin for the kill itself) before it died must be there.
Three trials run by default; ``pytest -m slow tests/e2e/test_kill_trials.py`` runs 21.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from efftrace.analyzer.cli import main
from efftrace.analyzer.read.loader import open_run
from efftrace.recorder.config import FLUSH_INTERVAL_S
from helpers.runs import SCRIPTS

JOB = SCRIPTS / "api_job.py"
SIGNALS = {"SIGKILL to the group": signal.SIGKILL, "SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
MARGIN_S = 0.5  # the kill lands between a step's end and its progress line, and the flusher's own timing


def kill_trial(tmp_path: Path, how: str, after_s: float) -> dict:
    out, progress = tmp_path / "runs", tmp_path / "progress.txt"
    job = [sys.executable, str(JOB), "600", "0", str(progress)]  # runs until killed
    process = subprocess.Popen(
        [sys.executable, "-m", "efftrace.recorder", "--out", str(out), "--", *job],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env={**os.environ, "EFFICIENTLLM_COLLECTION_INTERVAL": "0.05"},
    )
    assert process.stdout.readline().strip() == "up"
    time.sleep(after_s)
    killed_ns = time.time_ns()
    if SIGNALS[how] == signal.SIGKILL:
        os.killpg(process.pid, signal.SIGKILL)
    else:
        process.send_signal(SIGNALS[how])
    process.wait(timeout=60)
    (run_dir,) = out.iterdir()
    meta = json.loads((run_dir / "meta.json").read_text())
    finished = [line.split() for line in progress.read_text().splitlines() if line.strip()]
    events = open_run(run_dir).events()
    recorded = set(events.column("step").to_pylist())
    cutoff_ns = killed_ns - (FLUSH_INTERVAL_S + MARGIN_S) * 1e9
    must_have = {int(step) for step, end_ns in finished if int(end_ns) < cutoff_ns}
    result = CliRunner().invoke(main, [str(run_dir), "--quiet", "--json", str(tmp_path / "summary.json")])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    summary = tmp_path / "summary.json"
    return {"meta": meta, "must_have": must_have, "recorded": recorded, "cli": result, "summary": summary}


def _check(trial: dict, how: str) -> None:
    assert trial["must_have"] <= trial["recorded"], sorted(trial["must_have"] - trial["recorded"])[:5]
    expected_status = "running" if SIGNALS[how] == signal.SIGKILL else "killed"
    assert trial["meta"]["status"] == expected_status
    cli = trial["cli"]
    assert cli.exit_code in (0, 2) and "Traceback" not in cli.output
    if trial["recorded"]:  # some steps reached the disk: effanalyze reports on them
        assert cli.exit_code == 0, cli.output
        assert json.loads(trial["summary"].read_text())["run"]["status"] == trial["meta"]["status"]
    else:  # killed before the first flush: one clear line, not a crash
        assert cli.exit_code == 2 and "no train steps" in cli.output


@pytest.mark.parametrize("how", list(SIGNALS))
def test_a_killed_job_leaves_a_usable_trace(tmp_path, how):
    _check(kill_trial(tmp_path, how, after_s=3.0), how)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(21))
def test_killed_at_random_moments(tmp_path, trial):
    rng = random.Random(trial)
    how = list(SIGNALS)[trial % 3]
    _check(kill_trial(tmp_path, how, after_s=rng.uniform(0.2, 6.0)), how)
