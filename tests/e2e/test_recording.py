"""Real runs under effrec on CPU: LLaMA-Factory (LoRA and full), torchrun, generate(), the API.

Every count is checked against what the data really holds: LLaMA-Factory's own tokenized
dataset (saved through its ``tokenized_path`` option), or the script's own tokenizer output.
"""

from __future__ import annotations

import gzip
import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from efftrace.recorder.in_training.hf_instrument import count_new_tokens
from helpers.llamafactory import tiny_sft_config
from helpers.runs import SCRIPTS, load_meta, only_run_dir, read_stream, run_effrec

pytestmark = pytest.mark.e2e


def events(run_dir: Path) -> list[dict]:
    rows = []
    for path in sorted(run_dir.glob("events-*.arrow")):
        rows += read_stream(path).to_pylist()
    return rows


@pytest.mark.parametrize("finetuning", ["lora", "full"])
def test_llamafactory_sft_under_effrec(tmp_path, tiny_llama, finetuning):
    pytest.importorskip("llamafactory")
    datasets = pytest.importorskip("datasets")
    cli = shutil.which("llamafactory-cli", path=str(Path(sys.executable).parent))
    assert cli, "llamafactory-cli is installed beside this Python"
    config = tmp_path / f"tiny_{finetuning}_sft.yaml"
    config.write_text(
        tiny_sft_config(
            tiny_llama / "model",
            tiny_llama / "data",
            tmp_path / "out",
            finetuning,
            tokenized_path=tmp_path / "tokenized",
            gradient_accumulation_steps=3,
            learning_rate="1.0e-4",
            num_train_epochs=2.0,
        )
    )
    result = run_effrec(["--out", str(tmp_path / "runs"), "--", cli, "train", str(config)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "runs")
    assert run_dir.name.endswith(f"tiny_{finetuning}_sft")

    tokenized = datasets.load_from_disk(str(tmp_path / "tokenized"))["train"]
    expected_tokens = sum(sum(1 for m in mask if m) for mask in tokenized["attention_mask"])
    trainer_state = json.loads((tmp_path / "out" / "trainer_state.json").read_text())
    steps = [row for row in events(run_dir) if row["kind"] == "train_step"]

    # 40 examples, 4 x 3 per optimizer step: 4 steps an epoch (the last takes 4 examples), 2 epochs.
    assert [row["step"] for row in steps] == list(range(1, trainer_state["global_step"] + 1)) == list(range(1, 9))
    assert sum(row["samples"] for row in steps) == 2 * len(tokenized) == 80
    assert sum(row["tokens"] for row in steps) == 2 * expected_tokens
    assert [row["micro_batches"] for row in steps] == [3, 3, 3, 1] * 2
    assert all(row["start_ns"] < row["end_ns"] for row in steps)
    assert all(a["end_ns"] <= b["start_ns"] for a, b in itertools.pairwise(steps))
    logged = [row for row in steps if row["loss"] is not None]
    assert [row["step"] for row in logged] == [2, 4, 6, 8]
    assert all(row["learning_rate"] is not None and row["grad_norm"] is not None for row in logged)
    assert {row["rank"] for row in steps} == {0}

    meta = load_meta(run_dir)
    assert meta["status"] == "complete" and meta["world_size"] == 1
    model = meta["model"]
    assert model["total_params"] > 0 and 0 < model["trainable_params"] <= model["total_params"]
    if finetuning == "lora":
        assert model["trainable_params"] < model["total_params"] / 2
    else:
        assert model["trainable_params"] == model["total_params"]
    assert meta["versions"]["llamafactory"] == "0.9.5"
    assert meta["training_config"]["text"] == config.read_text()
    rank = meta["ranks"][0]
    assert rank["tensorboard_dir"].startswith(str(tmp_path / "out" / "runs"))
    assert Path(rank["tensorboard_dir"]).is_dir()
    _analyze_and_read_back(run_dir, Path(rank["tensorboard_dir"]), steps)


PREDICT_CONFIG = """\
model_name_or_path: {model}
stage: sft
do_predict: true
predict_with_generate: true
finetuning_type: full
eval_dataset: synthetic
dataset_dir: {data}
template: default
cutoff_len: 128
max_samples: 8
overwrite_cache: true
output_dir: {output}
report_to: none
per_device_eval_batch_size: 4
max_new_tokens: 4
do_sample: false
use_cpu: true
"""


def test_llamafactory_predict_under_effrec_describes_the_model(tmp_path, tiny_llama):
    """A predict-only run never calls on_train_begin; its model must still be described (IT per parameter)."""
    pytest.importorskip("llamafactory")
    cli = shutil.which("llamafactory-cli", path=str(Path(sys.executable).parent))
    config = tmp_path / "tiny_predict.yaml"
    settings = {"model": tiny_llama / "model", "data": tiny_llama / "data", "output": tmp_path / "out"}
    config.write_text(PREDICT_CONFIG.format(**settings))
    result = run_effrec(["--out", str(tmp_path / "runs"), "--", cli, "train", str(config)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "runs")
    generated = [row for row in events(run_dir) if row["kind"] == "generate"]
    assert sum(row["samples"] for row in generated) == 8
    assert all(0 < row["generated_tokens"] <= row["samples"] * 4 for row in generated)
    model = load_meta(run_dir)["model"]
    assert model["total_params"] > 0 and model["trainable_params"] >= 0
    analysed = subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", str(run_dir)], capture_output=True, text=True, timeout=120
    )
    assert analysed.returncode == 0, analysed.stderr
    assert "IT (Tokens/Sec): " in analysed.stdout
    per_param = next(line for line in analysed.stdout.splitlines() if "IT (Tokens/Param/Sec)" in line)
    assert "n/a" not in per_param.split("[")[0]  # the parameter count is known, so IT per parameter is a number


def _analyze_and_read_back(run_dir: Path, trainer_runs: Path, steps: list[dict]) -> None:
    """effanalyze on the real CPU run: the seed block, and TensorBoard points beside the trainer's loss."""
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    result = subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", str(run_dir), "--tensorboard", "--log-interval", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "[EfficientLLM Metrics] Step 8:" in result.stdout
    assert "AEC (Watts): n/a" in result.stdout  # no GPU here: said, not invented
    reader = accumulator.EventAccumulator(str(trainer_runs))
    reader.Reload()
    assert "train/loss" in reader.Tags()["scalars"]
    points = reader.Scalars("efficientllm/extra/tokens_per_sec")
    assert [point.step for point in points] == [2, 4, 6, 8]
    ends = {row["step"]: row["end_ns"] / 1e9 for row in steps}
    assert [point.wall_time for point in points] == pytest.approx([ends[step] for step in (2, 4, 6, 8)], abs=1e-3)
    for point, pair in zip(points, [steps[i : i + 2] for i in range(0, len(steps), 2)], strict=True):
        seconds = sum((row["end_ns"] - row["start_ns"]) / 1e9 for row in pair)
        assert point.value == pytest.approx(sum(row["tokens"] for row in pair) / seconds, rel=1e-5)


def test_torchrun_two_ranks_one_events_file_each(tmp_path, tiny_llama):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun
    expected_path = tmp_path / "expected.json"
    result = run_effrec(
        [
            "--out",
            str(tmp_path / "runs"),
            "--",
            torchrun,
            "--nproc_per_node",
            "2",
            "--master_port",
            "29517",
            str(SCRIPTS / "hf_trainer_train.py"),
            str(tiny_llama / "model"),
            str(tmp_path / "out"),
            str(expected_path),
        ],
        tmp_path,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "runs")
    expected = json.loads(expected_path.read_text())
    files = sorted(path.name for path in run_dir.glob("events-*.arrow"))
    assert len(files) == 2 and files[0].endswith("-r0.arrow") and files[1].endswith("-r1.arrow")
    steps = events(run_dir)
    for rank in (0, 1):
        rank_steps = [row for row in steps if row["rank"] == rank]
        assert [row["step"] for row in rank_steps] == list(range(1, expected["global_step"] + 1))
    assert sum(row["samples"] for row in steps) == expected["samples"]
    assert sum(row["tokens"] for row in steps) == expected["tokens"]
    meta = load_meta(run_dir)
    assert meta["world_size"] == 2 and [rank["rank"] for rank in meta["ranks"]] == [0, 1]


def test_forking_dataloader_does_not_duplicate_events(tmp_path, tiny_llama):
    expected_path = tmp_path / "expected.json"
    script = [str(SCRIPTS / "hf_trainer_train.py"), str(tiny_llama / "model"), str(tmp_path / "out")]
    result = run_effrec(
        ["--out", str(tmp_path / "runs"), "--", sys.executable, *script, str(expected_path), "2"], tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = json.loads(expected_path.read_text())
    steps = events(only_run_dir(tmp_path / "runs"))
    assert [row["step"] for row in steps] == list(range(1, expected["global_step"] + 1))
    assert sum(row["tokens"] for row in steps) == expected["tokens"]


def test_generate_calls_become_events(tmp_path, tiny_llama):
    result = run_effrec(
        ["--out", str(tmp_path), "--", sys.executable, str(SCRIPTS / "generate_run.py"), str(tiny_llama / "model")],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    prompt_tokens = int(result.stdout.strip().splitlines()[-1])
    generated = [row for row in events(only_run_dir(tmp_path)) if row["kind"] == "generate"]
    assert len(generated) == 2
    for row in generated:
        assert row["samples"] == 3
        assert row["tokens"] == prompt_tokens
        assert row["generated_tokens"] == 3 * 5
        assert row["end_ns"] > row["start_ns"]


def test_count_new_tokens_stops_at_the_first_eos():
    torch = pytest.importorskip("torch")
    from types import SimpleNamespace

    new = torch.tensor([[5, 6, 2, 2, 2], [5, 2, 9, 9, 9], [5, 6, 7, 8, 9]])
    assert count_new_tokens(new, SimpleNamespace(eos_token_id=2, pad_token_id=2)) == 3 + 2 + 5
    assert count_new_tokens(new, SimpleNamespace(eos_token_id=[2, 9], pad_token_id=0)) == 3 + 2 + 5
    assert count_new_tokens(new, SimpleNamespace(eos_token_id=None, pad_token_id=9)) == 15 - 4
    assert count_new_tokens(new[:, :0], SimpleNamespace(eos_token_id=2, pad_token_id=2)) == 0


@pytest.mark.parametrize("under_effrec", [False, True])
def test_custom_loop_through_the_api(tmp_path, under_effrec):
    script = [sys.executable, str(SCRIPTS / "custom_loop.py"), str(tmp_path / "api")]
    (tmp_path / "api").mkdir()
    if under_effrec:  # with two of its five steps profiled: the API honours effrec's --profile-steps
        result = run_effrec(["--out", str(tmp_path / "runs"), "--profile-steps", "2-3", "--", *script], tmp_path)
        run_dir = only_run_dir(tmp_path / "runs")
    else:
        result = subprocess.run(script, capture_output=True, text=True, cwd=tmp_path, timeout=300)
        run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0, result.stderr[-3000:]
    rows = events(run_dir)
    steps = [row for row in rows if row["kind"] == "train_step"]
    assert [row["step"] for row in steps] == [1, 2, 3, 4, 5]
    assert [row["tokens"] for row in steps] == [40, 44, 48, 52, 56]
    assert all(row["samples"] == 4 and row["loss"] is not None for row in steps)
    marks = [row for row in rows if row["kind"] == "mark"]
    assert [row["name"] for row in marks] == ["checkpoint"]
    meta = load_meta(run_dir)
    assert meta["status"] == "complete"
    assert meta["model"]["total_params"] == 8 * 8 + 8
    assert all(row["host_start_ns"] == row["start_ns"] and row["host_end_ns"] <= row["end_ns"] for row in steps)
    profiles = list(run_dir.glob("profile-*.pt.trace.json.gz"))
    if under_effrec:
        (profile,) = profiles
        trace = json.loads(gzip.decompress(profile.read_bytes()))
        marked = [event for event in trace["traceEvents"] if str(event.get("name", "")).startswith("ProfilerStep#")]
        assert len(marked) == 2 and trace["distributedInfo"] == {"rank": 0}
    else:
        assert profiles == []


def test_the_api_refuses_a_bad_profile_window():
    from efftrace.recorder import Recorder

    with pytest.raises(ValueError, match="profile_steps=3-2 is not accepted"):
        Recorder(profile_steps=(3, 2))


def test_fsdp2_sharded_model_is_described_whole(tmp_path, tiny_llama):
    """FSDP2 on two CPU ranks (FSDP1 and accelerate's FSDP plugin refuse to run without an accelerator):
    each rank describes the unsharded model, not its shard, and writes one event per step."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    expected_path = tmp_path / "expected.json"
    script = [str(SCRIPTS / "fsdp2_loop.py"), str(tiny_llama / "model"), str(expected_path)]
    result = run_effrec(
        ["--out", str(tmp_path / "runs"), "--", torchrun, "--nproc-per-node", "2", "--master-port", "29519", *script],
        tmp_path,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = json.loads(expected_path.read_text())
    assert expected["local_shard"] < expected["unsharded"]
    run_dir = only_run_dir(tmp_path / "runs")
    meta = load_meta(run_dir)
    assert meta["model"]["total_params"] == meta["model"]["trainable_params"] == expected["unsharded"]
    assert meta["world_size"] == 2 and [rank["rank"] for rank in meta["ranks"]] == [0, 1]
    assert all(rank["model"]["total_params"] == expected["unsharded"] for rank in meta["ranks"])
    steps = events(run_dir)
    assert sorted((row["rank"], row["step"]) for row in steps) == [(r, s) for r in (0, 1) for s in (1, 2, 3)]


def test_accelerate_launch_reaches_every_worker(tmp_path, tiny_llama):
    """``accelerate launch`` with two processes (its multi-process launcher, gloo on CPU): the
    auto-instrumentation reaches both workers, each writing its own events."""
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    assert accelerate
    expected_path = tmp_path / "expected.json"
    launch = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
    launch += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29533"]
    script = [
        str(SCRIPTS / "hf_trainer_train.py"),
        str(tiny_llama / "model"),
        str(tmp_path / "out"),
        str(expected_path),
    ]
    result = run_effrec(
        ["--out", str(tmp_path / "runs"), "--", *launch, *script], tmp_path, env={"OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = json.loads(expected_path.read_text())
    assert expected["world_size"] == 2
    run_dir = only_run_dir(tmp_path / "runs")
    steps = events(run_dir)
    for rank in (0, 1):
        assert [row["step"] for row in steps if row["rank"] == rank] == list(range(1, expected["global_step"] + 1))
    assert sum(row["samples"] for row in steps) == expected["samples"]
    assert sum(row["tokens"] for row in steps) == expected["tokens"]
    assert load_meta(run_dir)["world_size"] == 2


def test_checkpoint_saves_are_timed_and_bucketed(tmp_path, tiny_llama):
    """LLaMA-Factory saving every 3 steps: each save is a ``checkpoint`` span, and the analysis puts
    its seconds in the checkpoint bucket, not between steps."""
    pytest.importorskip("llamafactory")
    cli = shutil.which("llamafactory-cli", path=str(Path(sys.executable).parent))
    config = tmp_path / "saving.yaml"
    settings = {"max_steps": 6, "save_strategy": "steps", "save_steps": 3}
    config.write_text(tiny_sft_config(tiny_llama / "model", tiny_llama / "data", tmp_path / "out", **settings))
    result = run_effrec(["--out", str(tmp_path / "runs"), "--", cli, "train", str(config)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "runs")
    saves = [row for row in events(run_dir) if row["kind"] == "checkpoint"]
    assert len(saves) == len(list((tmp_path / "out").glob("checkpoint-*"))) == 2
    steps = {row["step"]: row for row in events(run_dir) if row["kind"] == "train_step"}
    assert steps[3]["end_ns"] <= saves[0]["start_ns"] < saves[0]["end_ns"] <= steps[4]["start_ns"]

    from efftrace.analyzer.compute.metrics import analyze
    from efftrace.analyzer.read.loader import open_run

    job = analyze(open_run(run_dir)).diagnosis["time_buckets"]["job"]["ranks"]["0"]
    assert job["checkpoint"] == pytest.approx(sum((row["end_ns"] - row["start_ns"]) / 1e9 for row in saves))


def test_profile_steps_keeps_one_trace_per_rank_of_just_those_steps(tmp_path, tiny_llama):
    """``effrec --profile-steps 2-3`` on a real LLaMA-Factory run: the rank's profiler trace is in the
    run directory, gzip'd Chrome JSON, says its rank, and covers steps 2 and 3 (two ProfilerStep
    ranges lying inside those steps' recorded span); the steps also carry the host's times."""
    pytest.importorskip("llamafactory")
    cli = shutil.which("llamafactory-cli", path=str(Path(sys.executable).parent))
    config = tmp_path / "profiled.yaml"
    config.write_text(tiny_sft_config(tiny_llama / "model", tiny_llama / "data", tmp_path / "out", max_steps=5))
    arguments = ["--out", str(tmp_path / "runs"), "--profile-steps", "2-3", "--", cli, "train", str(config)]
    result = run_effrec(arguments, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "runs")
    (profile,) = run_dir.glob("profile-*-r0.pt.trace.json.gz")
    trace = json.loads(gzip.decompress(profile.read_bytes()))
    assert trace["distributedInfo"] == {"rank": 0}
    steps = {row["step"]: row for row in events(run_dir) if row["kind"] == "train_step"}
    assert sorted(steps) == [1, 2, 3, 4, 5]
    for row in steps.values():  # on CPU the GPU's times are the host's
        assert row["host_start_ns"] == row["start_ns"] and row["host_end_ns"] == row["end_ns"]
    marked = [event for event in trace["traceEvents"] if str(event.get("name", "")).startswith("ProfilerStep#")]
    assert len(marked) == 2
    base_us = trace.get("baseTimeNanoseconds", 0) / 1e3
    first = min(event["ts"] for event in marked) + base_us
    last = max(event["ts"] + event["dur"] for event in marked) + base_us
    assert steps[2]["start_ns"] / 1e3 - 1e3 <= first and last <= steps[3]["end_ns"] / 1e3 + 1e3
    assert load_meta(run_dir)["sampling"]["profile_steps"] == [2, 3]
    pytest.importorskip("hta")
    analysis = subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer", str(run_dir)], capture_output=True, text=True, timeout=300
    )
    assert analysis.returncode == 0, analysis.stderr[-2000:]
    assert "Profiled steps 2-3" in analysis.stdout
    assert "rank 0: no GPU kernels ran in the profiled steps (a CPU run?)" in analysis.stdout


def test_profile_steps_refuses_a_bad_range(tmp_path):
    for given in ("3-2", "0-1", "a-b", "1-50"):
        result = run_effrec(["--out", str(tmp_path), "--profile-steps", given, "--", "true"], tmp_path)
        assert result.returncode == 2 and f"--profile-steps={given} is not accepted" in result.stderr
        assert "Traceback" not in result.stderr
