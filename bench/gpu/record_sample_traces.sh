#!/usr/bin/env bash
# Record efftrace's sample traces on an NVIDIA GPU machine, from the project root:
#
#   bash bench/gpu/record_sample_traces.sh OUT_DIR
#
# Needs python3 with torch, pyarrow, click, nvidia-ml-py, and llamafactory 0.9.5 importable
# (predict_with_generate also needs jieba, nltk and rouge-chinese). RUNS="predict" records only those.
# Makes a random 1.06 B-parameter Llama (no download), then records under effrec:
#   h100-lora-sft   LLaMA-Factory LoRA SFT, 200 steps      (sample_traces/configs/h100_lora_sft.yaml)
#   h100-full-sft   LLaMA-Factory full SFT, 200 steps      (sample_traces/configs/h100_full_sft.yaml)
#   h100-predict    LLaMA-Factory predict_with_generate    (sample_traces/configs/h100_predict.yaml)
#   idle-10hz, idle-100hz   `sleep 60` at 0.1 s and 0.01 s: the sampler's own CPU cost
# and writes OUT_DIR/traces.tar.gz (run directories plus the trainers' logs, without weights).
set -uo pipefail
out=$(realpath -m "${1:?usage: record_sample_traces.sh OUT_DIR}")
project=$(pwd)
work=${EFFTRACE_GPU_WORK:-/tmp/efftrace-gpu}
mkdir -p "$out" "$work"
. "$project/bench/stage_efftrace.sh"
effrec() { python3 -m efftrace.recorder "$@"; }

nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv | tee "$out/gpu.txt"
python3 examples/make_random_llama.py "$work" --hidden 2048 --layers 18 \
    --examples 2000 --min-words 20 --max-words 200 | tee "$out/model.json"
cp sample_traces/configs/h100_*.yaml "$work/"
cd "$work" || exit 1

for run in ${RUNS:-lora_sft full_sft predict}; do
    effrec --out runs --name "h100-${run//_/-}" -- python3 -m llamafactory.cli train "h100_$run.yaml" \
        > "$out/log-$run.txt" 2>&1
    echo "$run: exit $?"; tail -n 3 "$out/log-$run.txt"
done
if [ -z "${RUNS:-}" ]; then
    effrec --out runs --name idle-10hz --interval 0.1 -- sleep 60
    effrec --out runs --name idle-100hz --interval 0.01 -- sleep 60
fi

python3 "$project/bench/gpu/summarise_runs.py" runs | tee "$out/summary.txt"
tar --exclude='*.safetensors' --exclude='*.bin' --exclude='*.pt' --exclude='*.pth' \
    --exclude='checkpoint-*' -czf "$out/traces.tar.gz" runs saves
ls -la "$out"
