#!/usr/bin/env bash
# On the GPU machine, from the project root: LLaMA-Factory under DeepSpeed, recorded by effrec.
#
#     bash bench/gpu/record_deepspeed_traces.sh OUT_DIR
#
# Needs llamafactory 0.9.5 and deepspeed importable (carried as wheels: sample_traces/README.md says
# how), and torchrun on PATH. Makes the random 1.06 B-parameter Llama of the other sample traces, then records
#   h200-zero3-lora-sft   LoRA SFT under ZeRO-3, 40 optimizer steps of 2 micro-batches  (configs/h200_zero3_lora_sft.yaml)
#   h200-zero2-full-sft   full SFT under ZeRO-2, 40 steps                                (configs/h200_zero2_full_sft.yaml)
# both through LLaMA-Factory's own torchrun launch (FORCE_TORCHRUN=1, one process), so the
# auto-instrumentation reaches the worker torchrun starts. Writes OUT_DIR/traces.tar.gz (run directories,
# trainers' results and logs, no weights).
set -uo pipefail
out=$(realpath -m "${1:?usage: record_deepspeed_traces.sh OUT_DIR}")
project=$(pwd)
work=${EFFTRACE_GPU_WORK:-/tmp/efftrace-deepspeed}
mkdir -p "$out" "$work"
. "$project/bench/stage_efftrace.sh"
effrec() { python3 -m efftrace.recorder "$@"; }

nvidia-smi --query-gpu=name,uuid,driver_version,power.limit --format=csv | tee "$out/gpu.txt"
python3 bench/gpu/nvml_power_scope.py | tee "$out/nvml_power_scope.jsonl"
python3 examples/make_random_llama.py "$work" --hidden 2048 --layers 18 \
    --examples 800 --min-words 20 --max-words 200 | tee "$out/model.json"
cp sample_traces/configs/h200_zero*.yaml sample_traces/configs/ds_z*_config.json "$work/"
cd "$work" || exit 1
for run in zero3_lora_sft zero2_full_sft; do
    FORCE_TORCHRUN=1 effrec --out runs --name "h200-${run//_/-}" -- \
        python3 -m llamafactory.cli train "h200_$run.yaml" > "$out/log-$run.txt" 2>&1
    echo "$run: exit $?"; grep -E "trainable params|train_runtime" "$out/log-$run.txt"; tail -n 3 "$out/log-$run.txt"
done
python3 "$project/bench/gpu/summarise_runs.py" runs | tee "$out/summary.txt"
tar --exclude='*.safetensors' --exclude='*.bin' --exclude='*.pt' --exclude='*.pth' \
    --exclude='checkpoint-*' --exclude='global_step*' -czf "$out/traces.tar.gz" runs saves
ls -la "$out"
