"""A plain transformers.Trainer run on CPU (one process or a torchrun worker), for effrec tests.

    python hf_trainer_train.py MODEL_DIR OUTPUT_DIR EXPECTED_JSON

Writes EXPECTED_JSON (rank 0): the examples' real token counts, so the test can compare the
events with what the data holds.
"""

import json
import sys

from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
)

model_dir, output_dir, expected_path = sys.argv[1:4]
tokenizer = AutoTokenizer.from_pretrained(model_dir)
texts = [" ".join(["gpu power"] * (1 + i % 7)) for i in range(32)]
examples = [tokenizer(text) for text in texts]
dataset = [{"input_ids": e["input_ids"], "attention_mask": e["attention_mask"]} for e in examples]
args = TrainingArguments(
    output_dir=output_dir,
    per_device_train_batch_size=4,
    gradient_accumulation_steps=2,
    num_train_epochs=1,
    use_cpu=True,
    report_to="none",
    save_strategy="no",
    logging_steps=1,
    dataloader_num_workers=int(sys.argv[4]) if len(sys.argv) > 4 else 0,
)
trainer = Trainer(
    model=AutoModelForCausalLM.from_pretrained(model_dir),
    args=args,
    train_dataset=dataset,
    data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
)
trainer.train()
if args.process_index == 0:
    with open(expected_path, "w") as handle:
        json.dump(
            {
                "tokens": sum(len(e["input_ids"]) for e in examples),
                "samples": len(examples),
                "global_step": trainer.state.global_step,
                "world_size": args.world_size,
            },
            handle,
        )
