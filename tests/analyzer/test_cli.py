"""effanalyze as users run it: outputs, one-line errors with exit code 2, truncated and running traces."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from efftrace.recorder.format import schema
from helpers.runs import ROOT
from helpers.trace_builder import TraceBuilder

LORA = ROOT / "sample_traces" / "h100-lora-sft"


def effanalyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _small_run(run_dir: Path, steps: int = 6, batch_rows: int = 1000) -> Path:
    builder = TraceBuilder(run_dir, batch_rows=batch_rows)
    builder.gpu(0)
    seconds = np.arange(0, 30.001, 0.1)
    builder.gpu_samples(
        0,
        seconds,
        power_instant_mw=np.full(seconds.size, 2e5),
        mem_used_bytes=np.full(seconds.size, 2.0**33),
        util_gpu_pct=np.full(seconds.size, 50.0),
    )
    for step in range(1, steps + 1):
        builder.step(0, step, 2.0 * step, 2.0 * step + 1.5, samples=2, tokens=100, loss=1.0 / step)
    return builder.write(end_s=30)


def _assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("effanalyze: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_prints_the_seed_block_and_writes_every_output(tmp_path):
    run_dir = _small_run(tmp_path / "run")
    before = {path.name: path.read_bytes() for path in run_dir.iterdir()}
    result = effanalyze(
        str(run_dir),
        "--log-interval",
        "3",
        "--json",
        str(tmp_path / "s.json"),
        "--csv",
        str(tmp_path / "s.csv"),
        "--windows",
        str(tmp_path / "w.parquet"),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    block = lines.index("[EfficientLLM Metrics] Step 6:")
    labels = [line.split(":")[0].strip() for line in lines[block + 1 : block + 8]]
    assert labels == [
        "Loss",
        "AMU (GB)",
        "PCU (Ratio)",
        "AL (Seconds)",
        "TT (Tokens/Param/Sec)",
        "ST (Samples/Param/Sec)",
        "AEC (Watts)",
    ]
    assert lines[block + 2].startswith("  AMU (GB): 8.00    [GiB; NVML memory used")
    assert lines[block + 7].startswith("  AEC (Watts): 200.0    [W; NVML instant power")
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["windows"]["train"]["figures"]["al_seconds"]["value"] == pytest.approx(1.5)
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    aec = next(row for row in rows if row["window"] == "train" and row["key"] == "aec_watts")
    assert float(aec["value"]) == pytest.approx(200.0) and aec["unit"] == "W" and float(aec["coverage"]) == 1.0
    windows = pq.read_table(tmp_path / "w.parquet")
    assert windows.column("step").to_pylist() == [3, 6]
    assert {path.name: path.read_bytes() for path in run_dir.iterdir()} == before  # nothing recorded is touched


def test_log_interval_defaults_to_the_seed_variable(tmp_path):
    run_dir = _small_run(tmp_path / "run")
    env = {**__import__("os").environ, "EFFICIENTLLM_LOG_INTERVAL": "2"}
    result = effanalyze(str(run_dir), "--windows", str(tmp_path / "w.csv"), env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "w.csv").read_text().count("\n") == 4  # header + windows at steps 2, 4, 6


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda d: d / "nowhere", ["nowhere", "no such directory"]),
        (lambda d: (d / "empty").mkdir() or d / "empty", ["meta.json", "not an efftrace run directory"]),
        (lambda d: (d / "file.txt").write_text("x") and d / "file.txt", ["file.txt", "not a directory"]),
    ],
)
def test_foreign_input_is_one_line_and_exit_2(tmp_path, make, fragments):
    _assert_one_line_error(effanalyze(str(make(tmp_path))), *fragments)


def test_manifest_problems_are_named(tmp_path):
    run_dir = _small_run(tmp_path / "run")
    meta = json.loads((run_dir / "meta.json").read_text())
    (run_dir / "meta.json").write_text(json.dumps({**meta, "format_version": 99}))
    _assert_one_line_error(effanalyze(str(run_dir)), "meta.json", "trace format 99", "upgrade")
    (run_dir / "meta.json").write_text("{not json")
    _assert_one_line_error(effanalyze(str(run_dir)), "meta.json", "not valid JSON")
    (run_dir / "meta.json").unlink()
    _assert_one_line_error(effanalyze(str(run_dir)), "meta.json", "missing")


def test_a_run_without_steps_or_generations_is_refused(tmp_path):
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    builder.gpu_samples(0, np.arange(0, 5.0, 0.1), power_instant_mw=np.full(50, 1e5))
    _assert_one_line_error(effanalyze(str(builder.write(end_s=5))), "no train steps or generate calls")


def test_a_foreign_arrow_file_is_named(tmp_path):
    run_dir = _small_run(tmp_path / "run")
    (run_dir / "gpu-node.arrow").write_bytes(b"PAR1 this is not arrow")
    _assert_one_line_error(effanalyze(str(run_dir)), "gpu-node.arrow", "not an Arrow IPC stream")


def test_a_cut_off_last_batch_is_reported_and_the_rest_analysed(tmp_path):
    run_dir = _small_run(tmp_path / "run", batch_rows=2)  # as effrec leaves streams: many small batches
    events = run_dir / schema.events_file("node", 0)
    data = events.read_bytes()
    events.write_bytes(data[: len(data) - 40])
    gpu = run_dir / "gpu-node.arrow"
    table_bytes = gpu.read_bytes()
    gpu.write_bytes(table_bytes[: len(table_bytes) // 2])
    meta = json.loads((run_dir / "meta.json").read_text())
    (run_dir / "meta.json").write_text(json.dumps({**meta, "status": "running", "ended_ns": None}))
    result = effanalyze(str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "a record batch was cut off or damaged" in result.stdout
    assert "(running)" in result.stdout
    assert "[EfficientLLM Metrics] Step 4:" in result.stdout  # steps 5 and 6 were in the lost batch


def test_an_empty_stream_file_is_skipped_with_a_note(tmp_path):
    run_dir = _small_run(tmp_path / "run")
    (run_dir / "power-node.arrow").write_bytes(b"")
    result = effanalyze(str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "power-node.arrow: empty" in result.stdout


def test_sample_trace_energy_matches_its_counter_and_latency_matches_llamafactory(tmp_path):
    result = effanalyze(str(LORA / "trace"), "--json", str(tmp_path / "s.json"))
    assert result.returncode == 0, result.stderr
    train = json.loads((tmp_path / "s.json").read_text())["windows"]["train"]["figures"]
    assert abs(train["energy_counter_diff_pct"]["value"]) < 1.0
    runtime = json.loads((LORA / "trainer" / "train_results.json").read_text())["train_runtime"]
    steps = json.loads((LORA / "trainer" / "trainer_state.json").read_text())["global_step"]
    # AL x steps leaves out the time between steps that train_runtime includes: within 3 % here.
    assert train["al_seconds"]["value"] * steps == pytest.approx(runtime, rel=0.03)


def test_tensorboard_backfill_reads_back_beside_the_trainer_curves(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    copy = tmp_path / "lora"
    shutil.copytree(LORA, copy)
    trainer_runs = next((copy / "trainer" / "runs").iterdir())
    for _ in range(2):  # running twice must leave one point per step
        result = effanalyze(str(copy / "trace"), "--tensorboard")
        assert result.returncode == 0, result.stderr
        assert f"wrote {trainer_runs}" in result.stdout
    reader = accumulator.EventAccumulator(str(trainer_runs))
    reader.Reload()
    tags = reader.Tags()["scalars"]
    assert "train/loss" in tags
    for tag in (
        "efficientllm/amu_gb",
        "efficientllm/pcu_ratio",
        "efficientllm/al_seconds",
        "efficientllm/tt_tokens_per_param_per_sec",
        "efficientllm/st_samples_per_param_per_sec",
        "efficientllm/aec_watts",
        "efficientllm/extra/pcu_tensor_ratio",
        "efficientllm/extra/mfu",
    ):
        points = reader.Scalars(tag)
        assert [point.step for point in points] == list(range(10, 201, 10)), tag
    loss_steps = [point.step for point in reader.Scalars("train/loss")]
    assert set(range(10, 201, 10)) <= set(loss_steps)


def test_tensorboard_falls_back_to_the_run_directory(tmp_path):
    run_dir = _small_run(tmp_path / "run")
    result = effanalyze(str(run_dir), "--tensorboard", "--log-interval", "2")
    assert result.returncode == 0, result.stderr
    written = list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert len(written) == 1


def test_the_command_line_never_imports_pandas(tmp_path):
    """pyarrow imports pandas on the first pa.array or to_numpy when it is installed: 0.3 s per run.

    effanalyze builds and reads its arrays from numpy buffers instead; pandas is for the notebook API.
    """
    run = tmp_path / "lora"
    shutil.copytree(LORA, run)
    script = f"""
import sys
from efftrace.analyzer.cli import main
sys.argv = ["effanalyze", {str(run / "trace")!r}, "--tensorboard", "--json", {str(tmp_path / "s.json")!r},
            "--csv", {str(tmp_path / "s.csv")!r}, "--windows", {str(tmp_path / "w.parquet")!r}]
try:
    main()
except SystemExit as exit:
    assert exit.code in (0, None), exit.code
assert "pandas" not in sys.modules, "pandas was imported"
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().endswith("ok"), result.stderr
