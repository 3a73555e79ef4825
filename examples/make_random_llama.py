"""Make a randomly initialised Llama, its tokenizer and an alpaca-style dataset, all offline.

efftrace measures how a GPU is used, not what a model learns, so a random model of the right
shape gives real traces without downloading weights. The dataset's examples have varied
lengths so that batches carry padding, as real fine-tuning data does.

    python examples/make_random_llama.py OUT --hidden 2048 --layers 18   # ~1.06 B parameters
    python examples/make_random_llama.py OUT --hidden 64 --layers 2      # a tiny test model

OUT/model is a Hugging Face model directory; OUT/data holds ``dataset_info.json`` (dataset
name ``synthetic``) for LLaMA-Factory's ``dataset_dir``.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

WORDS = [
    "gpu",
    "memory",
    "power",
    "energy",
    "token",
    "sample",
    "step",
    "latency",
    "throughput",
    "kernel",
    "tensor",
    "matrix",
    "batch",
    "gradient",
    "optimizer",
    "adapter",
    "rank",
    "layer",
    "attention",
    "head",
    "model",
    "train",
    "tune",
    "loss",
    "learning",
    "rate",
    "average",
    "peak",
    "compute",
    "utilisation",
    "clock",
    "watt",
    "joule",
    "second",
    "cluster",
    "node",
    "driver",
    "sensor",
    "trace",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def make_dataset(out: Path, examples: int, seed: int, min_words: int, max_words: int) -> None:
    rng = random.Random(seed)
    rows = [
        {
            "instruction": sentence(rng, rng.randint(min_words, max_words)),
            "input": "",
            "output": sentence(rng, rng.randint(min_words, max_words)),
        }
        for _ in range(examples)
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "synthetic.json").write_text(json.dumps(rows))
    (out / "dataset_info.json").write_text(json.dumps({"synthetic": {"file_name": "synthetic.json"}}))


def make_tokenizer(out: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>", "<pad>"], show_progress=False
    )
    tokenizer.train_from_iterator([" ".join(WORDS)] * 4 + WORDS, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    wrapped.chat_template = CHAT_TEMPLATE
    wrapped.save_pretrained(out)


def make_model(out: Path, hidden: int, layers: int, heads: int, intermediate: int, vocab: int, seed: int) -> int:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=4096,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = LlamaForCausalLM(config)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model.to(dtype).save_pretrained(out)
    return sum(parameter.numel() for parameter in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=None, help="default: hidden / 128, at least 2")
    parser.add_argument("--intermediate", type=int, default=None, help="default: 2.75 x hidden")
    parser.add_argument("--vocab", type=int, default=None, help="model vocabulary [default: 32000, 512 if tiny]")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--min-words", type=int, default=4)
    parser.add_argument("--max-words", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    heads = args.heads or max(2, args.hidden // 128)
    intermediate = args.intermediate or int(args.hidden * 2.75)
    vocab = args.vocab or (512 if args.hidden < 512 else 32000)
    make_tokenizer(args.out / "model", vocab_size=min(vocab, 512))
    params = make_model(args.out / "model", args.hidden, args.layers, heads, intermediate, vocab, args.seed)
    make_dataset(args.out / "data", args.examples, args.seed, args.min_words, args.max_words)
    print(json.dumps({"model": str(args.out / "model"), "data": str(args.out / "data"), "parameters": params}))


if __name__ == "__main__":
    main()
