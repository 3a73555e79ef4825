#!/usr/bin/env bash
# Record the fidelity experiments on an NVIDIA GPU machine, from the project root:
#
#   bash bench/fidelity/record_on_gpu.sh OUT_DIR [workloads|trainer|overhead|all]
#
# Needs python3 with torch, transformers, pyarrow, click and nvidia-ml-py importable (and, for
# `overhead`, llamafactory 0.9.5). Writes OUT_DIR/fidelity.tar.gz, which bench/fidelity/analyse.py reads:
#   workloads  under effrec: the bursty matmul workload polled every 0.01 s (energy accuracy), steady
#              matmul and copy workloads (PCU sources)
#   trainer    a transformers Trainer timing its own steps (CUDA events, wall clock): four interleaved
#              pairs without and with effrec (overhead, latency accuracy), then effrec --no-sync and
#              effrec polling every 0.01 s
#   overhead   the same LLaMA-Factory full SFT (random 1.06 B Llama, 100 steps) without and with effrec,
#              three interleaved pairs, then once with effrec polling every 0.01 s
set -uo pipefail
out=$(realpath -m "${1:?usage: record_on_gpu.sh OUT_DIR [workloads|overhead|all]}")
part=${2:-all}
project=$(pwd)
work=${EFFTRACE_FIDELITY_WORK:-/tmp/efftrace-fidelity}
mkdir -p "$out" "$work/results"
. "$project/bench/stage_efftrace.sh"
effrec() { python3 -m efftrace.recorder "$@"; }
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv | tee "$out/gpu.txt"

if [ "$part" = workloads ] || [ "$part" = all ]; then
    cd "$work" || exit 1
    workloads="$project/bench/fidelity/gpu_workloads.py"
    effrec --out runs --name bursty-10ms --interval 0.01 -- python3 "$workloads" bursty --out results/bursty.json
    effrec --out runs --name matmul -- python3 "$workloads" matmul --seconds 20 --out results/matmul.json
    effrec --out runs --name copy -- python3 "$workloads" copy --seconds 20 --out results/copy.json
    cd "$project" || exit 1
fi

if [ "$part" = trainer ] || [ "$part" = all ]; then
    cd "$work" || exit 1
    script="$project/bench/fidelity/trainer_latency.py"
    timed() {  # NAME [effrec options...]: one Trainer run, under effrec unless NAME says plain
        local name=$1
        shift
        case $name in
            *plain*) python3 "$script" "results/$name.json" > "results/log-$name.txt" 2>&1 ;;
            *) effrec --out runs --name "$name" "$@" -- python3 "$script" "results/$name.json" > "results/log-$name.txt" 2>&1 ;;
        esac
        echo "$name: exit $?"
    }
    for pair in 1 2 3 4; do
        timed "trainer-plain-$pair"
        timed "trainer-effrec-$pair"
    done
    timed trainer-effrec-nosync --no-sync
    timed trainer-effrec-10ms --interval 0.01
    cd "$project" || exit 1
fi

if [ "$part" = overhead ] || [ "$part" = all ]; then
    python3 examples/make_random_llama.py "$work" --hidden 2048 --layers 18 \
        --examples 2000 --min-words 20 --max-words 200 > "$work/results/model.json"
    sed -e 's/max_steps: 200/max_steps: 100/' sample_traces/configs/h100_full_sft.yaml > "$work/overhead.yaml"
    cd "$work" || exit 1
    train() {  # NAME [effrec options...]: one LLaMA-Factory run, its results kept as results/NAME.json
        local name=$1
        shift
        sed -e "s|output_dir: .*|output_dir: saves/$name|" overhead.yaml > "$name.yaml"
        if [ "$#" -gt 0 ] || [ "$name" != "${name#effrec}" ]; then
            effrec --out runs --name "$name" "$@" -- python3 -m llamafactory.cli train "$name.yaml" > "results/log-$name.txt" 2>&1
        else
            python3 -m llamafactory.cli train "$name.yaml" > "results/log-$name.txt" 2>&1
        fi
        echo "$name: exit $?"
        cp "saves/$name/all_results.json" "results/$name.json"
    }
    for pair in 1 2 3; do
        train "plain-$pair"
        train "effrec-$pair"
    done
    train effrec-10ms --interval 0.01
    cd "$project" || exit 1
fi

tar -C "$work" -czf "$out/fidelity.tar.gz" runs results
ls -la "$out"
