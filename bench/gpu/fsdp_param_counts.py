"""On a GPU: the recorder's parameter counts of a model wrapped by FSDP1 (both ``use_orig_params``
settings) and FSDP2, against the unsharded model's. Prints one JSON line per wrapping.

    torchrun --nproc-per-node 1 bench/gpu/fsdp_param_counts.py
"""

from __future__ import annotations

import json

import torch
import torch.distributed as dist
from torch.distributed.fsdp import FullyShardedDataParallel, fully_shard
from transformers import LlamaConfig, LlamaForCausalLM

from efftrace.recorder.in_training.model_info import parameter_counts


def make(frozen: bool = True) -> torch.nn.Module:
    """The model; ``frozen``: its embedding frozen, as adapters leave the base (FSDP1 without
    ``use_orig_params`` refuses to flatten a module whose parameters differ in requires_grad)."""
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=512, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=8,
                         num_key_value_heads=8, vocab_size=8000)  # fmt: skip
    model = LlamaForCausalLM(config).cuda()
    model.model.embed_tokens.weight.requires_grad_(not frozen)
    return model


def main() -> None:
    dist.init_process_group("nccl")
    torch.cuda.set_device(dist.get_rank())
    for orig in (False, True):
        reference = parameter_counts(make(frozen=orig))
        model = FullyShardedDataParallel(make(frozen=orig), use_orig_params=orig)
        flats = sum(
            1 for module in model.modules() if getattr(getattr(module, "_handle", None), "flat_param", None) is not None
        )
        print(json.dumps({"wrapping": f"FSDP1 use_orig_params={orig}", "flat_parameters": flats,
                          "counts": parameter_counts(model), "unsharded": reference}))  # fmt: skip
    reference = parameter_counts(make())
    model = make()
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    print(json.dumps({"wrapping": "FSDP2", "counts": parameter_counts(model), "unsharded": reference}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
