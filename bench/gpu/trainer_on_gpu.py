"""A plain ``transformers.Trainer`` fine-tuning a random Llama on the GPU, for traces that show which
device each rank trained on (its UUID in ``rank-*.json``, joined by the analyzer to NVML's GPUs).

    python3 bench/gpu/trainer_on_gpu.py MODEL_DIR OUTPUT_DIR [STEPS]

MODEL_DIR comes from ``examples/make_random_llama.py``. Run it under effrec, as
``bench/gpu/record_placement_trace.sh`` does.
"""

from __future__ import annotations

import sys

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
)

model_dir, output_dir = sys.argv[1], sys.argv[2]
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 60
tokenizer = AutoTokenizer.from_pretrained(model_dir)
texts = [" ".join(["gpu power memory energy"] * (8 + i % 24)) for i in range(steps * 8)]
dataset = [dict(tokenizer(text, truncation=True, max_length=256)) for text in texts]
trainer = Trainer(
    model=AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.bfloat16),
    args=TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=8,
        max_steps=steps,
        bf16=True,
        report_to="none",
        save_strategy="no",
        logging_steps=10,
    ),
    train_dataset=dataset,
    data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
)
trainer.train()
