"""Ranks joined to the GPUs they trained on by device UUID; a GPU no rank used is not the job's."""

from __future__ import annotations

import numpy as np
import pytest

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.read.loader import open_run
from efftrace.recorder.in_training import torch_probe
from helpers.trace_builder import TraceBuilder


def three_gpus_two_used(tmp_path, placed: bool):
    """GPUs 0 and 1 run the job's two ranks at 300 W; GPU 2 (another job's) draws 100 W."""
    builder = TraceBuilder(tmp_path / "run")
    times = np.arange(0.0, 30.0 + 1e-9, 0.1)
    for gpu, watts in ((0, 300.0), (1, 300.0), (2, 100.0)):
        builder.gpu(gpu)
        builder.gpu_samples(gpu, times, power_instant_mw=np.full(times.size, watts * 1e3),
                            mem_used_bytes=np.full(times.size, float((gpu + 1) << 30)))  # fmt: skip
    for rank in (0, 1):
        for step in range(1, 21):
            builder.step(rank, step, float(step), step + 0.9, samples=2, tokens=200)
    if placed:
        builder.meta["ranks"] = [
            {"rank": rank, "host": "node", "local_rank": rank, "device_uuid": f"GPU-{rank}",
             "cuda_visible_devices": "0,1"}
            for rank in (0, 1)
        ]  # fmt: skip
    return analyze(open_run(builder.write(end_s=30.0)))


def test_a_gpu_no_rank_used_is_left_out_of_the_jobs_figures(tmp_path):
    result = three_gpus_two_used(tmp_path, placed=True)
    assert result.train.value("aec_watts") == pytest.approx(600.0), "the job's two GPUs, not the third's 100 W"
    assert result.train.value("amu_gib") == pytest.approx(1.5)
    assert [gpu["gpu"] for gpu in result.run["gpus"]] == [0, 1]
    assert [gpu["gpu"] for gpu in result.run["gpus_unused"]] == [2]
    assert any("used by no rank of the job" in note and "node:2" in note for note in result.notes)
    assert result.run["missing"] == [], "sampled but not the job's is not missing"
    rows = [row for row in result.per_gpu.to_pylist() if row["window"] == "train"]
    assert {row["gpu"]: row["job_gpu"] for row in rows} == {0: True, 1: True, 2: False}, "reported apart"


def test_each_ranks_figures_join_to_its_own_gpu(tmp_path):
    ranks = three_gpus_two_used(tmp_path, placed=True).ranks.to_pylist()
    assert [(row["rank"], row["host"], row["gpu"], row["device_uuid"]) for row in ranks] == [
        (0, "node", 0, "GPU-0"),
        (1, "node", 1, "GPU-1"),
    ]
    train_s = 20.9 - 1.0
    assert ranks[1]["gpu_energy_j"] == pytest.approx(300.0 * train_s, rel=1e-6)
    assert ranks[1]["gpu_energy_per_step_j"] == pytest.approx(300.0 * train_s / 20, rel=1e-6)
    assert ranks[1]["gpu_amu_gib"] == pytest.approx(2.0)


def test_without_recorded_devices_every_sampled_gpu_counts_as_before(tmp_path):
    result = three_gpus_two_used(tmp_path, placed=False)
    assert result.train.value("aec_watts") == pytest.approx(700.0)
    assert result.run["gpus_unused"] == []


class _FakeCuda:
    """torch.cuda as far as the recorder asks it: in use, device 1, and its properties' UUID."""

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def current_device(self) -> int:
        return 1

    def get_device_properties(self, index: int):
        return type("Properties", (), {"uuid": "58f5c4f0-1d7e-2c0b-8b2e-0d9c7a6b5e41"})()


def test_the_recorder_names_the_device_as_nvml_does(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torch", type("Torch", (), {"cuda": _FakeCuda()})())
    assert torch_probe.device_identity() == {
        "device_index": 1,
        "device_uuid": "GPU-58f5c4f0-1d7e-2c0b-8b2e-0d9c7a6b5e41",
    }
    monkeypatch.delitem(__import__("sys").modules, "torch")
    assert torch_probe.device_identity() == {"device_index": None, "device_uuid": None}, "no torch: no GPU"


def test_on_a_real_h200_the_ranks_device_is_the_gpu_nvml_sampled():
    """Recorded on the lent H200 by ``bash bench/gpu/record_placement_trace.sh OUT``: torch's UUID for the
    rank's device, written as NVML writes it, is the UUID of the GPU NVML sampled."""
    from helpers.runs import ROOT

    result = analyze(open_run(ROOT / "sample_traces" / "h200-placement" / "trace"))
    (rank,) = result.ranks.to_pylist()
    (gpu,) = open_run(ROOT / "sample_traces" / "h200-placement" / "trace").gpus
    assert rank["device_uuid"] == gpu.uuid and gpu.name == "NVIDIA H200"
    assert (rank["host"], rank["gpu"]) == (gpu.host, gpu.index)
    assert rank["gpu_energy_j"] == pytest.approx(result.train.value("energy_j"))
    assert result.run["gpus_unused"] == []
