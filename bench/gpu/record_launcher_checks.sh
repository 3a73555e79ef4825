#!/usr/bin/env bash
# On the GPU machine, from the project root, with the wheels of record_deepspeed_traces.sh installed:
# the FSDP parameter counts on a real GPU, and a LLaMA-Factory ZeRO-2 run started by DeepSpeed's own
# launcher (`deepspeed --num_gpus 1`) under effrec, which must reach the worker it starts.
#
#     bash bench/gpu/record_launcher_checks.sh OUT_DIR
set -uo pipefail
out=$(realpath -m "${1:?usage: record_launcher_checks.sh OUT_DIR}")
project=$(pwd)
work=${EFFTRACE_GPU_WORK:-/tmp/efftrace-launchers}
mkdir -p "$out" "$work"
. "$project/bench/stage_efftrace.sh"
torchrun --nproc-per-node 1 bench/gpu/fsdp_param_counts.py 2> "$out/fsdp.err" | tee "$out/fsdp_param_counts.jsonl"
python3 examples/make_random_llama.py "$work" --hidden 1024 --layers 8 --examples 200 > /dev/null
sed -e 's/max_steps: 40/max_steps: 10/' -e 's|saves/zero2-full|saves/ds-launcher|' \
    sample_traces/configs/h200_zero2_full_sft.yaml > "$work/ds_launcher.yaml"
cp sample_traces/configs/ds_z2_config.json "$work/"
launcher=$(python3 -c "import llamafactory.launcher as module; print(module.__file__)")
cd "$work" || exit 1
python3 -m efftrace.recorder --out runs --name ds-launcher -- \
    deepspeed --num_gpus 1 --no_local_rank "$launcher" ds_launcher.yaml > "$out/log-ds-launcher.txt" 2>&1
echo "deepspeed launcher: exit $?"; tail -n 3 "$out/log-ds-launcher.txt"
python3 "$project/bench/gpu/summarise_runs.py" runs | tee "$out/summary.txt"
tar -czf "$out/ds-launcher-trace.tar.gz" runs
