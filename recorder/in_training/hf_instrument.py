"""Patches applied to Hugging Face modules as they are imported inside an ``effrec`` run.

:mod:`efftrace.recorder.in_training._autoinstrument.sitecustomize` calls these right after ``transformers.trainer``
and ``transformers.generation.utils`` execute, before user code can touch them:

* every ``Trainer`` (LLaMA-Factory's, TRL's, plain Transformers', in every torchrun worker)
  gets an :class:`~efftrace.recorder.in_training.hf_callback.EffTraceCallback` at the end of its ``__init__``;
* every ``generate()`` call becomes a ``generate`` event.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

from efftrace.recorder.config import cuda_sync_enabled
from efftrace.recorder.in_training import torch_probe
from efftrace.recorder.in_training.events import process_event_log
from efftrace.recorder.log import warn

_PATCHED = "__efftrace_patched__"
_nesting = threading.local()
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warn(message)


def instrument_trainer(module: Any) -> None:
    """Make every ``transformers.Trainer`` install the step-recording callback."""
    trainer_class = module.Trainer
    original_init = trainer_class.__init__
    if getattr(original_init, _PATCHED, False):
        return

    @functools.wraps(original_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        try:
            from efftrace.recorder.in_training.hf_callback import EffTraceCallback

            EffTraceCallback.install(self)
        except Exception as error:  # noqa: BLE001 - the trainer works without us
            _warn_once("trainer", f"could not add the step recorder to {type(self).__name__} ({error})")

    setattr(__init__, _PATCHED, True)
    trainer_class.__init__ = __init__


def instrument_generation(module: Any) -> None:
    """Record every top-level ``GenerationMixin.generate`` call (nested calls belong to it)."""
    mixin = module.GenerationMixin
    original_generate = mixin.generate
    if getattr(original_generate, _PATCHED, False):
        return

    @functools.wraps(original_generate)
    def generate(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_nesting, "depth", 0):
            return original_generate(self, *args, **kwargs)
        start_ns = time.time_ns()
        _nesting.depth = 1
        try:
            output = original_generate(self, *args, **kwargs)
        finally:
            _nesting.depth = 0
        try:
            record_generate(self, args, kwargs, output, start_ns)
        except Exception as error:  # noqa: BLE001 - never lose the user's generation
            _warn_once("generate", f"could not record a generate() call ({type(error).__name__}: {error})")
        return output

    setattr(generate, _PATCHED, True)
    mixin.generate = generate


def record_generate(model: Any, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any, start_ns: int) -> None:
    """Write one ``generate`` event: batch size, prompt tokens, new tokens without padding."""
    log = process_event_log()
    if log is None:
        return
    synced = torch_probe.synchronize() if cuda_sync_enabled() else False
    end_ns = time.time_ns()
    prompt = kwargs.get("input_ids", kwargs.get("inputs", args[0] if args else None))
    mask = kwargs.get("attention_mask")
    sequences = getattr(output, "sequences", output)
    if not hasattr(sequences, "shape") or len(sequences.shape) != 2:
        log.write("generate", start_ns, end_ns, synced=synced)
        return
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False):
        new = sequences[:, 1:]  # the decoder starts from its start token, not the prompt
    else:
        new = sequences[:, prompt.shape[1] :] if hasattr(prompt, "shape") else sequences
    generation_config = kwargs.get("generation_config") or getattr(model, "generation_config", None)
    if mask is not None and hasattr(mask, "count_nonzero"):
        prompt_tokens = int(mask.count_nonzero())
    elif hasattr(prompt, "numel"):
        prompt_tokens = int(prompt.numel())
    else:
        prompt_tokens = None
    log.write(
        "generate",
        start_ns,
        end_ns,
        synced=synced,
        samples=int(sequences.shape[0]),
        tokens=prompt_tokens,
        generated_tokens=count_new_tokens(new, generation_config),
        **torch_probe.allocator_memory(),
    )


def _token_ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def count_new_tokens(new: Any, generation_config: Any) -> int:
    """Tokens each sequence generated up to and including its first end-of-sequence token.

    What follows a sequence's EOS is padding (whatever the pad id); with no EOS known, tokens
    equal to the pad id are padding.
    """
    import torch

    if new.shape[1] == 0:
        return 0
    eos = _token_ids(getattr(generation_config, "eos_token_id", None))
    pad = _token_ids(getattr(generation_config, "pad_token_id", None))
    if not eos:
        if not pad:
            return int(new.numel())
        return int((~torch.isin(new, torch.tensor(pad, device=new.device))).sum())
    is_eos = torch.isin(new, torch.tensor(eos, device=new.device))
    length = new.shape[1]
    first_eos = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1) + 1, length)
    return int(first_eos.sum())
