"""The seed's configs and its wrapper script, for people coming from the EfficientLLM integration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.llamafactory import tiny_sft_config
from helpers.runs import ROOT

WRAPPER = ROOT / "examples" / "train_with_efficientllm.sh"
SEED_CONFIGS = {
    "full": ROOT / "examples" / "train_full" / "llama3_1_full_sft_efficientllm.yaml",
    "lora": ROOT / "examples" / "train_lora" / "llama3_1_lora_sft_efficientllm.yaml",
}


@pytest.mark.parametrize("finetuning", sorted(SEED_CONFIGS))
def test_seed_configs_are_valid_llamafactory_arguments(finetuning):
    pytest.importorskip("llamafactory")
    yaml = pytest.importorskip("yaml")
    from llamafactory.hparams import get_train_args

    config = yaml.safe_load(SEED_CONFIGS[finetuning].read_text())
    assert config["report_to"] == "tensorboard" and config["logging_steps"] == 10
    config["bf16"] = False  # LLaMA-Factory refuses bf16 without a GPU; everything else is checked as written
    model, _, training, method, _ = get_train_args(config)
    assert model.model_name_or_path == "meta-llama/Meta-Llama-3.1-8B-Instruct"
    assert method.finetuning_type == finetuning
    assert training.report_to == ["tensorboard"]
    assert training.gradient_accumulation_steps == (8 if finetuning == "lora" else 2)


def _run_wrapper(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    environment = {**os.environ, "PATH": path, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(["bash", str(WRAPPER), *args], cwd=cwd, env=environment, capture_output=True, text=True)


@pytest.mark.parametrize(
    ("args", "message"),
    [([], "usage:"), (["missing.yaml", "1"], "no such config file"), (["{config}", "two"], "positive integer")],
)
def test_wrapper_refuses_bad_arguments(tmp_path, args, message):
    config = tmp_path / "cfg.yaml"
    config.write_text("stage: sft\n")
    result = _run_wrapper([arg.format(config=config) for arg in args], tmp_path)
    assert result.returncode == 2 and message in result.stderr


def _tiny_config(tmp_path: Path, tiny_llama: Path, name: str, extra: str = "") -> Path:
    """A few CPU steps of LoRA on the tiny Llama, written to tmp_path/name; the trainer writes to tmp_path/out."""
    pytest.importorskip("llamafactory")
    config = tmp_path / name
    config.write_text(tiny_sft_config(tiny_llama / "model", tiny_llama / "data", tmp_path / "out", max_steps=6) + extra)
    return config


@pytest.mark.e2e
def test_wrapper_trains_records_and_backfills_tensorboard(tmp_path, tiny_llama):
    config = _tiny_config(tmp_path, tiny_llama, "tiny_lora_efficientllm.yaml")
    result = _run_wrapper([str(config), "1"], tmp_path, EFFICIENTLLM_LOG_INTERVAL="3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[EfficientLLM Metrics] Step 6:" in result.stdout
    for window, steps in ((1, "1-3"), (2, "4-6")):  # each window's block, as the seed printed it while training
        assert f"[live: log window {window}, steps {steps}]" in result.stdout
    runs = list((tmp_path / "effrec_runs").glob("*-tiny_lora_efficientllm"))
    assert len(runs) == 1
    written = list((tmp_path / "out" / "runs").rglob("*.efftrace"))
    assert len(written) == 1, "the metrics went beside the trainer's own TensorBoard run"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(written[0]))
    accumulator.Reload()
    for tag in accumulator.Tags()["scalars"]:
        assert [event.step for event in accumulator.Scalars(tag)] == [3, 6], "backfilled: one point per window"


@pytest.mark.e2e
def test_wrapper_without_metrics_only_trains(tmp_path, tiny_llama):
    config = _tiny_config(tmp_path, tiny_llama, "tiny.yaml")
    result = _run_wrapper([str(config), "1"], tmp_path, EFFICIENTLLM_METRICS_ENABLED="false")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "effrec_runs").exists()
    assert "[EfficientLLM Metrics]" not in result.stdout


@pytest.mark.e2e
def test_wrapper_with_two_gpus_uses_llamafactorys_torchrun_launch(tmp_path, tiny_llama):
    """NGPUS=2 on CPU: LLaMA-Factory's own torchrun launch (gloo), one events file per rank."""
    config = _tiny_config(tmp_path, tiny_llama, "tiny_ddp.yaml", extra="ddp_backend: gloo\n")
    result = _run_wrapper([str(config), "2"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "effrec_runs").glob("*-tiny_ddp")
    assert sorted(path.name.split("-")[-1] for path in run.glob("events-*.arrow")) == ["r0.arrow", "r1.arrow"]
    assert '"world_size": 2' in (run / "meta.json").read_text()
    assert "[EfficientLLM Metrics] Step 6:" in result.stdout
