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
    """(total, trainable) parameters of the whole model, however it is sharded.

    A sharded parameter's ``numel()`` is this rank's piece, so each kind of wrapper is asked for the
    full size: DeepSpeed ZeRO-3 partitions carry ``ds_numel``; FSDP2 parameters are DTensors whose
    ``numel()`` is already the global size; an FSDP1 wrapper flattens its module's parameters into one
    ``FlatParameter`` whose ``_numels`` are the originals' full sizes (its originals, when exposed with
    ``use_orig_params``, are views of the local shard and are skipped).
    """
    total = trainable = 0
    counted: set[int] = set()
    for flat in _fsdp1_flat_parameters(model):
        originals = list(getattr(flat, "_params", None) or ())
        for position, count in enumerate(flat._numels):
            requires_grad = originals[position].requires_grad if originals else flat.requires_grad
            total += int(count)
            trainable += int(count) if requires_grad else 0
        shared = getattr(flat, "_shared_params", None) or ()  # tied weights: counted once, as their first use
        counted.update(id(parameter) for parameter in (flat, *originals, *shared))
    for parameter in model.parameters():
        if id(parameter) in counted:
            continue
        count = int(getattr(parameter, "ds_numel", 0) or parameter.numel())
        total += count
        if parameter.requires_grad:
            trainable += count
    return total, trainable


def _fsdp1_flat_parameters(model: Any) -> list[Any]:
    """The ``FlatParameter`` of every FSDP1 wrapper inside ``model`` (none for any other model)."""
    flats = []
    for module in model.modules():
        flat = getattr(getattr(module, "_handle", None), "flat_param", None)
        if flat is not None and hasattr(flat, "_numels"):
            flats.append(flat)
    return flats
