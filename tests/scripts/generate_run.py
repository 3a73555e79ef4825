"""Calls model.generate() twice on a left-padded batch, for the effrec generate-event test."""

import sys

from transformers import AutoModelForCausalLM, AutoTokenizer

model_dir = sys.argv[1]
tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
model = AutoModelForCausalLM.from_pretrained(model_dir)
batch = tokenizer(["gpu", "gpu power energy token", "power"], return_tensors="pt", padding=True)
for _ in range(2):
    model.generate(**batch, min_new_tokens=5, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
print(int(batch["attention_mask"].sum()))
