"""``Recorder.describe_model`` works in a plain PyTorch loop: torch alone, transformers never imported."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest


def test_describe_model_needs_torch_alone(tmp_path):
    pytest.importorskip("torch")
    script = f"""
import sys
sys.modules["transformers"] = None  # importing transformers now fails, as where it is not installed
import torch
from efftrace.recorder import Recorder
model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
model[0].weight.requires_grad_(False)  # 12 of the 23 parameters frozen
with Recorder(out={str(tmp_path)!r}, name="plain", interval_s=0.5) as recorder:
    recorder.describe_model(model)
    with recorder.step(samples=1, tokens=4):
        pass
print(recorder._model_info)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'total_params': 23" in result.stdout and "'trainable_params': 11" in result.stdout


def _fsdp1_wrapper(use_orig_params: bool):
    """A module laid out as FSDP1 leaves a wrapped one (FSDP1 itself refuses to start without an
    accelerator): one ``FlatParameter`` holding this rank's shard, whose ``_numels`` are the full sizes
    of the flattened originals, and with ``use_orig_params`` the originals as views of the local shard."""
    import torch

    wrapper = torch.nn.Module()
    flat = torch.nn.Parameter(torch.zeros(12))  # this rank's shard of 4*3 + 3 + 3*2 + 2 = 23 numbers
    flat._numels = (12, 3, 6, 2)
    wrapper._handle = SimpleNamespace(flat_param=flat)
    if use_orig_params:
        views = [torch.nn.Parameter(torch.zeros(n), requires_grad=at > 0) for at, n in enumerate((5, 3, 4, 0))]
        flat._params = views
        for number, view in enumerate(views):
            wrapper.register_parameter(f"original_{number}", view)
    else:
        flat._params = None
        wrapper.register_parameter("flat", flat)
    wrapper.register_parameter("outside", torch.nn.Parameter(torch.zeros(7)))  # a parameter FSDP left alone
    return wrapper


@pytest.mark.parametrize("use_orig_params", [False, True])
def test_fsdp1_flat_parameters_count_their_full_originals(use_orig_params):
    pytest.importorskip("torch")
    from efftrace.recorder.in_training.model_info import parameter_counts

    total, trainable = parameter_counts(_fsdp1_wrapper(use_orig_params))
    assert total == 23 + 7
    assert trainable == (23 - 12 if use_orig_params else 23) + 7
