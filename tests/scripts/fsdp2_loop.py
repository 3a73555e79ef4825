"""A plain PyTorch loop over a Llama sharded with FSDP2 (``fully_shard``), on CPU ranks (gloo).

    torchrun --nproc-per-node 2 fsdp2_loop.py MODEL_DIR EXPECTED_JSON

Each rank holds only its shard of every parameter; the recorder must still describe the whole model.
Writes EXPECTED_JSON (rank 0): the unsharded parameter count, read from a model loaded whole.
"""

import json
import sys

import torch
import torch.distributed as dist
from torch.distributed.fsdp import fully_shard
from transformers import AutoModelForCausalLM

from efftrace.recorder import Recorder

model_dir, expected_path = sys.argv[1:3]
dist.init_process_group("gloo")
unsharded = sum(parameter.numel() for parameter in AutoModelForCausalLM.from_pretrained(model_dir).parameters())
model = AutoModelForCausalLM.from_pretrained(model_dir)
for layer in model.model.layers:
    fully_shard(layer)
fully_shard(model)
local = sum(parameter.to_local().numel() for parameter in model.parameters())
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
tokens = torch.randint(0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(dist.get_rank()))
with Recorder() as recorder:
    recorder.describe_model(model)
    for _ in range(3):
        with recorder.step(samples=2, tokens=tokens.numel()):
            loss = model(input_ids=tokens, labels=tokens).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
if dist.get_rank() == 0:
    with open(expected_path, "w") as handle:
        json.dump({"unsharded": unsharded, "local_shard": local}, handle)
dist.destroy_process_group()
