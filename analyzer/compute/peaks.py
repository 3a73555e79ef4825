"""Peak dense bf16 tensor throughput per GPU model, and the model FLOPs that MFU divides by it.

Peaks are the vendors' dense (no sparsity) bf16 figures with FP32 accumulate, in TFLOP/s. The
GPU is recognised from its NVML name; ``--peak-tflops`` overrides the table for anything else.
"""

from __future__ import annotations

# Most specific patterns first: "H100 PCIe" must win over "H100", "A100" over "A10".
_PEAK_BF16_TFLOPS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("GH200",), 989.0),
    (("H200 NVL",), 835.0),
    (("H200",), 989.0),
    (("H100", "PCIE"), 756.0),
    (("H100 NVL",), 835.0),
    (("H100",), 989.0),  # SXM (NVML: "NVIDIA H100 80GB HBM3")
    (("B200",), 2250.0),
    (("A100",), 312.0),
    (("L40S",), 362.0),
    (("L4",), 121.0),
    (("A10G",), 70.0),
    (("A10",), 125.0),
    (("RTX 4090",), 165.2),
)


def peak_bf16_tflops(gpu_name: str) -> float | None:
    """The peak dense bf16 TFLOP/s of the GPU NVML calls ``gpu_name``, or None if unknown."""
    upper = gpu_name.upper()
    if " MIG " in f"{upper} ":
        return None  # a MIG instance ("... MIG 3g.40gb") has a share of the GPU's SMs, not its peak
    for words, peak in _PEAK_BF16_TFLOPS:
        if all(word in upper for word in words):
            if words == ("L4",) and "L40" in upper:
                continue
            return peak
    return None


def flops_per_token(
    total_params: int,
    trainable_params: int | None,
    layers: int | None,
    hidden: int | None,
    sequence_tokens: float,
) -> float:
    """Training FLOPs per token (PaLM appendix B), without recomputation.

    Forward 2N and input-gradient 2N always; weight gradients 2N only for trainable weights, so
    6N for full fine-tuning and 4N + 2N_trainable for adapters. Attention adds 12 * layers *
    hidden * sequence length per token (forward and backward of QK^T and AV).
    """
    trainable = total_params if trainable_params is None else trainable_params
    dense = 4.0 * total_params + 2.0 * trainable
    attention = 12.0 * layers * hidden * sequence_tokens if layers and hidden else 0.0
    return dense + attention
