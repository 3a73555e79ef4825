"""What the recorder reads off a model and its environment: parameter counts and library versions.

Kept apart from :mod:`.hf_callback` (which imports ``transformers``) so that a plain PyTorch loop
calling :meth:`Recorder.describe_model <efftrace.recorder.in_training.api.Recorder.describe_model>`
needs torch alone. Neither function imports anything: they only call what the model offers.
"""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Any

_VERSIONED_PACKAGES = ("torch", "transformers", "accelerate", "peft", "trl", "deepspeed", "llamafactory", "datasets")


def library_versions() -> dict[str, str | None]:
    """Python's and each training library's installed version (None where it is not installed)."""
    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def parameter_counts(model: Any) -> tuple[int, int]:
    """(total, trainable) parameters; ZeRO-3 partitions report their full size via ``ds_numel``."""
    total = trainable = 0
    for parameter in model.parameters():
        count = int(getattr(parameter, "ds_numel", 0) or parameter.numel())
        total += count
        if parameter.requires_grad:
            trainable += count
    return total, trainable
