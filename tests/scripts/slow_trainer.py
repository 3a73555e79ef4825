"""A transformers.Trainer run on CPU whose steps take a known, slow time: for watching a run live.

python slow_trainer.py MODEL_DIR OUTPUT_DIR STEPS SECONDS_PER_STEP
"""

import sys
import time

from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

model_dir, output_dir, steps, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])


class Slow(TrainerCallback):
    """Sleeps inside every step (after its backward pass), as a slow GPU would keep it busy."""

    def on_optimizer_step(self, args, state, control, **kwargs):
        time.sleep(pause)


tokenizer = AutoTokenizer.from_pretrained(model_dir)
examples = [tokenizer(" ".join(["gpu power"] * (1 + i % 7))) for i in range(4 * steps)]
dataset = [{"input_ids": e["input_ids"], "attention_mask": e["attention_mask"]} for e in examples]
args = TrainingArguments(
    output_dir=output_dir,
    per_device_train_batch_size=4,
    max_steps=steps,
    use_cpu=True,
    report_to="tensorboard",
    save_strategy="no",
    logging_steps=1,
)
trainer = Trainer(
    model=AutoModelForCausalLM.from_pretrained(model_dir),
    args=args,
    train_dataset=dataset,
    data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
    callbacks=[Slow()],
)
trainer.train()
