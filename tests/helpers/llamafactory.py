"""LLaMA-Factory configs for the tiny offline Llama on CPU, as the end-to-end tests write them."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def tiny_sft_config(model: Path, data: Path, output: Path, finetuning: str = "lora", **settings: Any) -> str:
    """An SFT config's YAML; ``settings`` add keys or replace the defaults (a value of None drops one)."""
    config: dict[str, Any] = {"model_name_or_path": model, "stage": "sft", "do_train": "true"}
    config["finetuning_type"] = finetuning
    if finetuning == "lora":
        config.update(lora_rank=4, lora_target="all")
    config.update(
        dataset="synthetic",
        dataset_dir=data,
        template="default",
        cutoff_len=128,
        overwrite_cache="true",
        output_dir=output,
        logging_steps=2,
        report_to="tensorboard",
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        save_strategy='"no"',
        use_cpu="true",
    )
    config.update(settings)
    return "".join(f"{key}: {value}\n" for key, value in config.items() if value is not None)
