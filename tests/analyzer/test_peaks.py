"""MFU's denominator: each GPU's dense bf16 peak, recognised from its NVML name, most specific first."""

from __future__ import annotations

import pytest

from efftrace.analyzer.compute.peaks import flops_per_token, peak_bf16_tflops


@pytest.mark.parametrize(
    ("nvml_name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),  # SXM
        ("NVIDIA H100 PCIe", 756.0),  # must not match the SXM row
        ("NVIDIA H100 NVL", 835.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA H200 NVL", 835.0),
        ("NVIDIA GH200 480GB", 989.0),  # not read as an H200 row by accident (same peak, own row)
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA A10G", 70.0),  # not the A100's
        ("NVIDIA A10", 125.0),
        ("NVIDIA L40S", 362.0),
        ("NVIDIA L4", 121.0),
        ("NVIDIA GeForce RTX 4090", 165.2),
    ],
)
def test_known_gpus_get_their_own_peak(nvml_name, peak):
    assert peak_bf16_tflops(nvml_name) == peak


@pytest.mark.parametrize("nvml_name", ["NVIDIA L40", "Tesla V100-SXM2-32GB", "", "NVIDIA RTX A6000"])
def test_an_unknown_gpu_has_no_peak_rather_than_a_neighbours(nvml_name):
    assert peak_bf16_tflops(nvml_name) is None


def test_flops_per_token_full_fine_tuning_adapters_and_attention():
    assert flops_per_token(1_000, None, None, None, 0.0) == 6_000  # 6N
    assert flops_per_token(1_000, 10, None, None, 0.0) == 4_020  # 4N + 2N_trainable
    assert flops_per_token(1_000, None, 2, 8, 16.0) == 6_000 + 12 * 2 * 8 * 16
