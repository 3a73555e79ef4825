"""MIG instances, Grace Hopper modules and GPUs without an energy counter, in the analyzer's figures."""

from __future__ import annotations

import numpy as np
import pytest

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.read.loader import open_run
from helpers.trace_builder import TraceBuilder

TIMES = np.arange(0.0, 30.0 + 1e-9, 0.1)
MIG_NAME = "NVIDIA H100 80GB HBM3 MIG 3g.40gb"


def _steps(builder, ranks):
    for rank in ranks:
        for step in range(1, 21):
            builder.step(rank, step, float(step), step + 0.9, samples=2, tokens=200)


def two_mig_instances_of_one_gpu(tmp_path):
    """Ranks 0 and 1 on MIG instances 200 and 201 of physical GPU 1 (400 W, sampled through each);
    rank 2 on whole GPU 0 (300 W)."""
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    builder.gpus[0]["uuid"] = "GPU-aaaa"
    for slot in (0, 1):
        number = 200 + slot
        builder.gpus.append(
            {"index": number, "uuid": f"MIG-b00{slot}", "name": MIG_NAME, "memory_total_bytes": 40 << 30,
             "mig": {"parent_index": 1, "parent_uuid": "GPU-bbbb", "slot": slot, "gpu_instance_id": 1 + slot}}
        )  # fmt: skip
    every_second = np.arange(TIMES.size) % 10 == 0
    for gpu, watts, memory in ((0, 300.0, 8), (200, 400.0, 2), (201, 400.0, 6)):
        builder.gpu_samples(gpu, TIMES, power_instant_mw=np.full(TIMES.size, watts * 1e3),
                            mem_used_bytes=np.full(TIMES.size, float(memory << 30)),
                            energy_mj=np.where(every_second, TIMES * watts * 1e3, np.nan))  # fmt: skip
    _steps(builder, (0, 1, 2))
    uuids = {
        0: "GPU-b000",
        1: "MIG-b001",
        2: "GPU-aaaa",
    }  # torch names a MIG instance bare, as effrec writes GPU-<bare>
    builder.meta["ranks"] = [
        {"rank": rank, "host": "node", "local_rank": rank, "device_uuid": uuid} for rank, uuid in uuids.items()
    ]
    builder.meta["world_size"] = 3
    return analyze(open_run(builder.write(end_s=30.0)))


def test_mig_instances_of_one_gpu_count_its_power_once(tmp_path):
    result = two_mig_instances_of_one_gpu(tmp_path)
    train = result.train
    assert train.value("aec_watts") == pytest.approx(300.0 + 400.0), "GPU 0 plus physical GPU 1 once, not twice"
    assert train.value("energy_j") == pytest.approx(700.0 * train.seconds, rel=1e-6)
    assert train.value("amu_gib") == pytest.approx((8 + 2 + 6) / 3), "memory is each instance's own"
    assert [row["gpu"] for row in result.ranks.to_pylist()] == [200, 201, 0]
    assert "MIG" in train.figures["aec_watts"].source and "counted once per GPU" in train.figures["aec_watts"].source
    (note,) = [note for note in result.notes if note.startswith("MIG instances")]
    assert "node:200 (of GPU-bbbb)" in note and "node:201 (of GPU-bbbb)" in note and "upper bound" in note
    assert train.value("mfu") is None, "a MIG slice has no known peak"
    assert "MIG 3g.40gb" in train.figures["mfu"].source


def one_gpu(tmp_path, energy_scope=None, counter=True):
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    if energy_scope:
        builder.gpus[0].update(module_power=energy_scope == "module", energy_scope=energy_scope)
    power = np.full(TIMES.size, 250e3)
    columns = {"power_instant_mw": power}
    if counter:
        columns["energy_mj"] = np.where(np.arange(TIMES.size) % 10 == 0, 5e6 + TIMES * 250e3, np.nan)
    builder.gpu_samples(0, TIMES, **columns)
    _steps(builder, (0,))
    return analyze(open_run(builder.write(end_s=30.0)))


def test_a_module_scope_counter_is_said_in_its_source_and_a_note(tmp_path):
    result = one_gpu(tmp_path, energy_scope="module")
    assert "[module scope: GPU, CPU and memory]" in result.train.figures["energy_counter_j"].source
    assert any("on a module" in note and "CPU and memory included" in note for note in result.notes)
    plain = one_gpu(tmp_path / "discrete", energy_scope="gpu")
    assert "module" not in plain.train.figures["energy_counter_j"].source
    assert not any("on a module" in note for note in plain.notes)


def test_without_an_energy_counter_energy_is_the_power_integral_and_says_so(tmp_path):
    result = one_gpu(tmp_path, counter=False)
    train = result.train
    assert train.value("energy_j") == pytest.approx(250.0 * train.seconds, rel=1e-6)
    assert train.value("energy_counter_j") is None and train.figures["energy_counter_j"].coverage == 0.0
    assert any("no energy-counter reading from GPUs node:0" in note for note in result.notes)
    assert not any("energy-counter reading" in note for note in one_gpu(tmp_path / "with").notes)
