"""A transformers Trainer run that times its own steps with CUDA events, to check effrec's AL.

    [effrec [--no-sync] --] python bench/fidelity/trainer_latency.py OUT.json [--steps 150]

Trains a randomly initialised Llama (hidden 1024, 8 layers, bf16) on random tokens. A callback
records a CUDA event at every ``on_step_begin`` and ``on_step_end``, on the training stream,
inside the loop, and the wall clock at each step's end. OUT.json gets each step's GPU-side
duration (end event minus begin event): the independent timing effrec's ``train_step`` events
are compared with; and the wall time from the end of step 10 to the end of training (after a
synchronize): the throughput with and without effrec (``bench/fidelity/analyse.py``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainerCallback, TrainingArguments

WARM_UP_STEPS = 10  # left out of the throughput: compilation, allocator and clock ramp-up


class CudaEventSteps(TrainerCallback):
    """CUDA events at each step's begin and end: what the GPU itself took between them."""

    def __init__(self) -> None:
        self.events: list[tuple[int, torch.cuda.Event, torch.cuda.Event]] = []
        self.wall_ends: list[float] = []
        self.finished = 0.0
        self._begin: torch.cuda.Event | None = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._begin = torch.cuda.Event(enable_timing=True)
        self._begin.record()

    def on_step_end(self, args, state, control, **kwargs):
        end = torch.cuda.Event(enable_timing=True)
        end.record()
        self.events.append((state.global_step, self._begin, end))
        self.wall_ends.append(time.perf_counter())

    def on_train_end(self, args, state, control, **kwargs):
        torch.cuda.synchronize()
        self.finished = time.perf_counter()

    def results(self) -> dict:
        torch.cuda.synchronize()
        warm = WARM_UP_STEPS
        return {
            "steps": [{"step": step, "gpu_s": begin.elapsed_time(end) / 1e3} for step, begin, end in self.events],
            "timed_steps": len(self.events) - warm,
            "timed_wall_s": self.finished - self.wall_ends[warm - 1],
        }


class RandomTokens(torch.utils.data.Dataset):
    def __init__(self, count: int, length: int, vocab: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, vocab, (count, length), generator=generator)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        ids = self.ids[index]
        return {"input_ids": ids, "labels": ids, "attention_mask": torch.ones_like(ids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    config = LlamaConfig(
        vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8, num_attention_heads=16
    )
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    timing = CudaEventSteps()
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(args.out.parent / "trainer_latency_out"),
            per_device_train_batch_size=8,
            max_steps=args.steps,
            logging_steps=10,
            save_strategy="no",
            report_to=[],
            bf16=True,
            dataloader_num_workers=0,
        ),
        train_dataset=RandomTokens(8 * args.steps, 512, config.vocab_size),
        callbacks=[timing],
    )
    trainer.train()
    args.out.write_text(json.dumps(timing.results()))


if __name__ == "__main__":
    main()
