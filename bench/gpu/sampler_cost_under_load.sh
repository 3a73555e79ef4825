#!/usr/bin/env bash
# The sampler's CPU cost, idle and while the GPU runs a memory-bound and a compute-bound workload,
# from the project root on an NVIDIA machine:
#
#   bash bench/gpu/sampler_cost_under_load.sh OUT_DIR [SECONDS] [polls]
#
# For each state (idle, copy, matmul) it writes OUT_DIR/<state>-calls.jsonl (each NVML read timed
# at the sampler's real 0.1-s spacing, by bench/gpu/nvml_call_costs.py) and OUT_DIR/<state>-poll.jsonl
# (whole polls by bench/gpu/poll_profile.py). The workloads are bench/fidelity/gpu_workloads.py,
# run in the background for as long as the profiling takes. `polls` profiles whole polls only.
set -uo pipefail
out=$(realpath -m "${1:?usage: sampler_cost_under_load.sh OUT_DIR [SECONDS] [polls]}")
seconds=${2:-30}
only=${3:-}
mkdir -p "$out"
project=$(pwd)
. "$project/bench/stage_efftrace.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$out/gpu.txt"

profile() {  # STATE: per-call costs, then whole polls
    if [ "$only" != polls ]; then
        python3 bench/gpu/nvml_call_costs.py 60 --spacing 0.1 > "$out/$1-calls.jsonl"
    fi
    python3 bench/gpu/poll_profile.py --seconds "$seconds" > "$out/$1-poll.jsonl"
}

profile idle
for workload in copy matmul; do
    python3 bench/fidelity/gpu_workloads.py "$workload" --seconds 600 > "$out/$workload-workload.log" 2>&1 &
    sleep 15  # CUDA context and the first iterations
    profile "$workload"
    kill %1
    wait
done
