"""``Recorder.describe_model`` works in a plain PyTorch loop: torch alone, transformers never imported."""

from __future__ import annotations

import subprocess
import sys

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
