"""The DeepSpeed traces recorded on the lent H200: LLaMA-Factory under ZeRO-3 (LoRA) and ZeRO-2 (full).

Under ZeRO-3 every parameter is a partition of the full tensor from the moment the model loads, so a
count of ``numel()`` would be near zero: the recorded counts must be the unsharded model's. Both runs
used the same data, seed and per-device batch of 8, so the ZeRO-3 run's optimizer step k (two
micro-batches) saw exactly the samples of the ZeRO-2 run's steps 2k-1 and 2k: their token counts must
agree pairwise, which checks the counting across accumulated micro-batches with no model of the data.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.read.loader import open_run
from efftrace.recorder.format import schema
from helpers.runs import ROOT, read_stream

TRACES = ROOT / "sample_traces"
ZERO3 = TRACES / "h200-zero3-lora-sft"
ZERO2 = TRACES / "h200-zero2-full-sft"
BASE_PARAMETERS = 1_055_991_808  # examples/make_random_llama.py --hidden 2048 --layers 18, counted unsharded
LORA_PARAMETERS = 5_677_056  # rank 8 on every linear layer of that model (LLaMA-Factory's own count)


def events(run):
    (path,) = (run / "trace").glob(f"{schema.EVENTS_PREFIX}*.arrow")
    return read_stream(path)


def meta(run):
    return json.loads((run / "trace" / schema.META_FILE).read_text())


@pytest.mark.parametrize(
    ("run", "total", "trainable"),
    [(ZERO3, BASE_PARAMETERS + LORA_PARAMETERS, LORA_PARAMETERS), (ZERO2, BASE_PARAMETERS, BASE_PARAMETERS)],
    ids=["zero3-lora", "zero2-full"],
)
def test_parameter_counts_are_the_unsharded_models(run, total, trainable):
    model = meta(run)["model"]
    assert (model["total_params"], model["trainable_params"]) == (total, trainable)
    log = (run / "trainer" / "trainer_state.json").read_text()
    assert json.loads(log)["global_step"] == 40
    assert meta(run)["versions"]["deepspeed"] == "0.18.9"


@pytest.mark.parametrize(("run", "micro_batches"), [(ZERO3, 2), (ZERO2, 1)], ids=["zero3-lora", "zero2-full"])
def test_one_event_per_optimizer_step_with_its_micro_batches(run, micro_batches):
    table = events(run)
    assert table["kind"].to_pylist() == ["train_step"] * 40
    assert table["step"].to_pylist() == list(range(1, 41))
    assert table["micro_batches"].to_pylist() == [micro_batches] * 40
    assert table["samples"].to_pylist() == [8 * micro_batches] * 40
    assert all(table["synced"].to_pylist())


def test_zero3_steps_count_the_tokens_of_both_micro_batches():
    accumulated = np.array(events(ZERO3)["tokens"].to_pylist())
    single = np.array(events(ZERO2)["tokens"].to_pylist())
    assert np.array_equal(accumulated[:20], single[0::2] + single[1::2])


@pytest.mark.parametrize("run", [ZERO3, ZERO2], ids=["zero3-lora", "zero2-full"])
def test_deepspeed_traces_analyse_with_the_full_parameter_count(run):
    result = analyze(open_run(run / "trace"))
    train = result.train
    assert train.figures["al_seconds"].value > 0
    assert abs(train.value("energy_counter_diff_pct")) < 1.0
    tokens = sum(events(run)["tokens"].to_pylist())
    latency = train.figures["al_seconds"].value * 40
    expected_tt = tokens / (meta(run)["model"]["total_params"] * latency)
    assert train.value("tt_tokens_per_param_per_sec") == pytest.approx(expected_tt, rel=1e-9)
    assert 0 < train.value("mfu") < 1


def test_deepspeeds_own_launcher_reaches_its_worker():
    """``deepspeed --num_gpus 1`` under effrec on the H200: the worker it started wrote every step."""
    run = TRACES / "h200-deepspeed-launcher"
    assert meta(run)["command"][:2] == ["deepspeed", "--num_gpus"]
    table = events(run)
    assert table["step"].to_pylist() == list(range(1, 11))
    (rank,) = meta(run)["ranks"]
    assert rank["device_uuid"] == meta(run)["hosts"][0]["gpus"][0]["uuid"]
    assert analyze(open_run(run / "trace")).train.value("al_seconds") > 0
