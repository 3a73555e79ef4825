"""What the recorder asks of torch: a GPU clock or a synchronize, allocator memory and batch sizes.

Torch is never imported here: a process that has not imported it uses no GPU through it, so
every helper looks torch up in ``sys.modules`` and does nothing without it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from efftrace.recorder.in_training.gpu_clock import GpuClock


def _cuda() -> Any:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            return torch.cuda
    except Exception:  # noqa: BLE001 - a broken CUDA setup is not ours to report
        return None
    return None


def gpu_clock() -> GpuClock | None:
    """A clock of points in this process's GPU queue, or None while it uses no GPU."""
    cuda = _cuda()
    return None if cuda is None else GpuClock(cuda)


def synchronize() -> bool:
    """Wait for this process's queued GPU work; True if there was a GPU to wait for."""
    cuda = _cuda()
    if cuda is None:
        return False
    cuda.synchronize()
    return True


def device_identity() -> dict[str, Any]:
    """Which GPU this process trains on: its CUDA index and NVML-style UUID (``GPU-…``), so that the
    analyzer joins a rank's figures to the GPU's samples exactly; None while it uses no GPU."""
    cuda = _cuda()
    if cuda is None:
        return {"device_index": None, "device_uuid": None}
    try:
        index = int(cuda.current_device())
        uuid = getattr(cuda.get_device_properties(index), "uuid", None)
    except Exception:  # noqa: BLE001 - an older torch, or a device it cannot describe
        return {"device_index": None, "device_uuid": None}
    text = None if uuid is None else str(uuid)
    return {"device_index": index, "device_uuid": None if text is None else _nvml_style(text)}


def _nvml_style(uuid: str) -> str:
    """torch prints a GPU's UUID bare (``58f5c4f0-…``), NVML with its kind (``GPU-58f5c4f0-…``, ``MIG-…``)."""
    return uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"


def allocator_memory() -> dict[str, int | None]:
    """torch's allocated, reserved and peak-allocated bytes on the current device, as event fields."""
    cuda = _cuda()
    if cuda is None:
        return {"mem_allocated_bytes": None, "mem_reserved_bytes": None, "mem_peak_bytes": None}
    return {
        "mem_allocated_bytes": int(cuda.memory_allocated()),
        "mem_reserved_bytes": int(cuda.memory_reserved()),
        "mem_peak_bytes": int(cuda.max_memory_allocated()),
    }


class TokenTally:
    """Samples and non-padding tokens of one optimizer step's micro-batches.

    Counts of tensors already on the GPU stay there until the step ends, so counting adds no
    synchronisation of its own; :meth:`start_host_copy` then copies them to the host
    asynchronously, and they are read once their copy has landed (see :meth:`ready`).
    """

    def __init__(self) -> None:
        self.micro_batches = 0
        self.samples = 0
        self._tokens = 0
        self._device_counts: list[Any] = []
        self._host_copy: Any = None
        self._tokens_only = False
        self._copied: Any = None
        self.counted = False  # a batch was understood: samples and tokens are known

    def add_tokens(self, tokens: int) -> None:
        """Tokens counted elsewhere (the Trainer's own ``num_input_tokens_seen``); samples stay unknown."""
        self._tokens += tokens
        self._tokens_only = True

    def add(self, inputs: Any) -> None:
        """Count one micro-batch given to ``Trainer.training_step``."""
        self.micro_batches += 1
        if not isinstance(inputs, Mapping):
            return
        input_ids = inputs.get("input_ids")
        mask = inputs.get("attention_mask")
        reference = input_ids if input_ids is not None else mask
        if reference is None or not hasattr(reference, "shape") or len(reference.shape) == 0:
            return
        self.counted = True
        self.samples += int(reference.shape[0])
        if mask is not None and hasattr(mask, "count_nonzero") and mask.dim() == 2:
            count = mask.count_nonzero()
        else:  # no 2-D padding mask: every position is a real token
            self._tokens += int(reference.numel())
            return
        if count.device.type == "cpu":
            self._tokens += int(count)
        else:
            self._device_counts.append(count)

    def start_host_copy(self) -> None:
        """Begin an asynchronous device-to-host copy of the counts (once, when the step has ended)."""
        if not self._device_counts:
            return
        torch = sys.modules["torch"]
        total = torch.stack(self._device_counts).sum()
        self._host_copy = total.to("cpu", non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record()
        self._device_counts = []

    def ready(self) -> bool:
        return self._copied is None or bool(self._copied.query())

    def resolved_samples(self) -> int | None:
        return self.samples if self.counted else None

    def resolve(self) -> int | None:
        """Total non-padding tokens (waits for the GPU if counts are still in flight)."""
        if not self.counted and not self._tokens_only:
            return None
        tokens = self._tokens
        if self._host_copy is not None:
            self._copied.synchronize()
            tokens += int(self._host_copy)
        return tokens
