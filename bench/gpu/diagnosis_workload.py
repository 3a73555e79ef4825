"""Training jobs whose bottleneck is known by construction, for checking effanalyze's findings.

    python3 bench/gpu/diagnosis_workload.py {input,launch,compute,oom} OUTPUT_DIR

Each is a ``transformers.Trainer`` on a randomly initialised Llama fed random token ids (no tokenizer,
no download), run under effrec by ``bench/gpu/record_diagnosis_traces.sh``:

- ``input``: a collator that sleeps 0.25 s a batch, one data-loading process: the GPU waits between steps;
- ``launch``: a 2-layer, 256-wide model at batch 1 of 32 tokens: tiny kernels, the host sets the pace;
- ``compute``: a 4-layer, 4096-wide model at batch 16 of 1024 tokens: large bf16 GEMMs;
- ``oom``: a small model beside a tensor that fills the GPU to about 95 % of its memory.
"""

from __future__ import annotations

import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

SHAPES = {  # hidden, intermediate, layers, heads, batch, tokens, steps
    "input": (1024, 2816, 8, 16, 8, 256, 40),
    "launch": (256, 704, 2, 4, 1, 32, 400),
    "compute": (4096, 11008, 4, 32, 16, 1024, 40),
    "oom": (512, 1408, 4, 8, 4, 256, 200),
}


class RandomTokens(torch.utils.data.Dataset):
    def __init__(self, count: int, tokens: int, vocabulary: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, vocabulary, (count, tokens), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.ids[index], "labels": self.ids[index]}


def collate(examples: list[dict], pause: float = 0.0) -> dict:
    if pause:
        time.sleep(pause)  # a slow data pipeline: decoding, augmenting, reading from a slow disk
    return {key: torch.stack([example[key] for example in examples]) for key in examples[0]}


def main() -> None:
    workload, output_dir = sys.argv[1], sys.argv[2]
    hidden, intermediate, layers, heads, batch, tokens, steps = SHAPES[workload]
    config = LlamaConfig(hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads, vocab_size=32000,
                         max_position_embeddings=max(tokens, 256))  # fmt: skip
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    filler = None
    if workload == "oom":
        model = model.cuda()
        free, total = torch.cuda.mem_get_info()
        filler = torch.empty(int(free - 0.06 * total), dtype=torch.uint8, device="cuda")  # held to the end
    pause = 0.25 if workload == "input" else 0.0
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=batch,
            max_steps=steps,
            bf16=True,
            report_to="none",
            save_strategy="no",
            logging_steps=10,
            dataloader_num_workers=0,
        ),
        train_dataset=RandomTokens(batch * steps, tokens, config.vocab_size),
        data_collator=lambda examples: collate(examples, pause),
    )
    trainer.train()
    del filler


if __name__ == "__main__":
    main()
