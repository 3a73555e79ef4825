"""effrec as a user runs it: exit codes, one-line errors, signals, the untouched mode."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

from efftrace.recorder.format import schema
from helpers.runs import SCRIPTS, load_meta, only_run_dir, run_effrec


def test_exit_code_and_complete_meta(tmp_path):
    result = run_effrec(["--out", str(tmp_path), "--name", "ok", "--", sys.executable, "-c", "print('hi')"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hi" in result.stdout
    run_dir = only_run_dir(tmp_path)
    assert run_dir.name.endswith("-ok")
    meta = load_meta(run_dir)
    assert meta["status"] == "complete" and meta["exit_code"] == 0
    assert meta["format_version"] == schema.FORMAT_VERSION
    assert meta["command"] == [sys.executable, "-c", "print('hi')"]
    assert meta["ended_ns"] >= meta["started_ns"]
    assert "clock_start" in meta["hosts"][0] and "clock_end" in meta["hosts"][0]
    assert "nothing was recorded" in result.stderr and "next: effanalyze" not in result.stderr, (
        "no hint to analyse nothing"
    )


def test_failing_command_keeps_its_exit_code(tmp_path):
    result = run_effrec(["--out", str(tmp_path), "--", sys.executable, "-c", "raise SystemExit(3)"], tmp_path)
    assert result.returncode == 3
    assert load_meta(only_run_dir(tmp_path))["status"] == "failed"


def test_usage_errors_are_one_line_with_exit_2(tmp_path):
    cases = [
        ["--out", str(tmp_path), sys.executable, "-c", "1"],  # no --
        ["--out", str(tmp_path), "--", "no-such-program-xyz"],
        ["--out", "/proc/no/such/dir", "--", sys.executable, "-c", "1"],
        ["--interval", "zero", "--", sys.executable, "-c", "1"],
    ]
    for args in cases:
        result = run_effrec(args, tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("effrec: error:"), result.stderr
        assert "Traceback" not in result.stderr


def test_disabled_runs_the_command_untouched(tmp_path):
    probe = "import os; print(os.environ.get('EFFTRACE_RUN_DIR')); raise SystemExit(5)"
    result = run_effrec(
        ["--out", str(tmp_path / "runs"), "--", sys.executable, "-c", probe],
        tmp_path,
        env={"EFFICIENTLLM_METRICS_ENABLED": "false"},
    )
    assert result.returncode == 5
    assert result.stdout.strip() == "None"
    assert not (tmp_path / "runs").exists()


def test_sitecustomize_chains_to_the_existing_one(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "sitecustomize.py").write_text("import os\nos.environ['THEIRS_RAN'] = 'yes'\n")
    probe = "import os, sys; print(os.environ.get('THEIRS_RAN'), 'transformers' in sys.modules)"
    result = run_effrec(
        ["--out", str(tmp_path / "runs"), "--", sys.executable, "-c", probe], tmp_path, env={"PYTHONPATH": str(theirs)}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["yes", "False"], "theirs ran; nothing heavy imported at start-up"


def test_sigterm_is_forwarded_and_the_run_marked_killed(tmp_path):
    script = "import signal, sys, time\nprint('up', flush=True)\ntime.sleep(60)"
    process = subprocess.Popen(
        [sys.executable, "-m", "efftrace.recorder", "--out", str(tmp_path), "--", sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # no terminal: effrec must forward the signal itself
    )
    assert process.stdout.readline().strip() == "up"
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert time.monotonic() - started < 10
    assert process.returncode == 128 + signal.SIGTERM
    meta = load_meta(only_run_dir(tmp_path))
    assert meta["status"] == "killed" and meta["exit_code"] == -signal.SIGTERM


def test_sigint_from_a_script_reaches_the_command(tmp_path):
    # 'up' is printed inside the try: a SIGINT that lands between the print and the try would
    # otherwise end the script with a bare traceback, a race a loaded machine does lose.
    script = (
        "import time\n"
        "try:\n    print('up', flush=True)\n    time.sleep(60)\n"
        "except KeyboardInterrupt:\n    print('interrupted', flush=True)\n    raise SystemExit(130)"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "efftrace.recorder", "--out", str(tmp_path), "--", sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout.readline().strip() == "up"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert "interrupted" in out and process.returncode == 130, err
    assert load_meta(only_run_dir(tmp_path))["status"] == "killed"


def test_killed_recorder_leaves_a_running_meta(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "efftrace.recorder",
            "--out",
            str(tmp_path),
            "--",
            sys.executable,
            "-c",
            "import time; time.sleep(30)",
        ],
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    while not list(tmp_path.glob("*/meta.json")):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert load_meta(only_run_dir(tmp_path))["status"] == "running"


def test_interval_comes_from_the_seed_variable(tmp_path):
    result = run_effrec(
        ["--out", str(tmp_path), "--", sys.executable, "-c", "1"],
        tmp_path,
        env={"EFFICIENTLLM_COLLECTION_INTERVAL": "0.25", "EFFICIENTLLM_HISTORY_SIZE": "77"},
    )
    assert result.returncode == 0
    sampling = load_meta(only_run_dir(tmp_path))["sampling"]
    assert sampling["interval_s"] == 0.25 and sampling["history_size"] == 77


def test_status_prints_a_live_line_only_when_asked(tmp_path):
    job = [sys.executable, str(SCRIPTS / "api_job.py"), "5", "0"]
    quiet = run_effrec(["--out", str(tmp_path / "quiet"), "--", *job], tmp_path)
    assert quiet.returncode == 0 and "elapsed" not in quiet.stderr
    asked = run_effrec(["--out", str(tmp_path / "asked"), "--status", "--", *job], tmp_path)
    assert asked.returncode == 0, asked.stderr
    lines = [line for line in asked.stderr.splitlines() if line.startswith("effrec: 0:00:")]
    assert len(lines) >= 2, asked.stderr  # into a pipe: a full line every 2 s
    assert any(" · step " in line for line in lines), lines


def test_status_line_reads_flushed_steps_and_the_power_now(tmp_path):
    from efftrace.recorder.sampling.live_status import FlushedSteps, LiveStatus
    from helpers.trace_builder import TraceBuilder

    builder = TraceBuilder(tmp_path / "run")
    for step in range(1, 6):
        builder.step(0, step, float(step), step + 0.5)
        builder.step(1, step, float(step), step + 0.5)
    run_dir = builder.write(end_s=10)
    assert FlushedSteps(run_dir).highest() == 5
    screen = io.StringIO()
    live = LiveStatus(run_dir, lambda: 1234.4, 2, stream=screen, every_s=0.05)
    live.start()
    time.sleep(0.3)
    live.stop()
    assert "step 5 · 1,234 W now (2 GPUs)" in screen.getvalue().splitlines()[0]


def test_flushed_steps_reads_only_what_was_flushed_since_its_last_look(tmp_path):
    from efftrace.recorder.in_training.events import EventLog
    from efftrace.recorder.sampling.live_status import FlushedSteps

    log = EventLog(tmp_path, rank=0, history_size=1000)
    steps = FlushedSteps(tmp_path)
    assert steps.highest() is None
    for step in range(1, 4):
        log.write("train_step", step, step + 1, step=step)
    log.flush()
    assert steps.highest() == 3
    (path,) = steps._read
    first_offset = steps._read[path][0]
    for step in range(4, 9):
        log.write("train_step", step, step + 1, step=step)
    log.write("eval", 9, 10)
    log.flush()
    assert steps.highest() == 8 and steps._read[path][0] > first_offset
    with path.open("ab") as handle:  # a batch cut off mid-write: not counted, and not in the way
        handle.write(b"\xff\xff\xff\xff\x10\x00")
    assert steps.highest() == 8
    log.close()
