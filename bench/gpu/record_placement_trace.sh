#!/usr/bin/env bash
# On the GPU machine, from the project root: record a Trainer run under effrec, for the trace that shows
# each rank's device UUID joined to the GPU NVML sampled. Writes OUT_DIR/run (the run directory).
#
#     bash bench/gpu/record_placement_trace.sh OUT_DIR
#
# The job runs in a work folder of its own (model, script and run directory given relative to it), so
# the trace names no path of the checkout it was started from.
set -euo pipefail
out=$(realpath -m "${1:?usage: record_placement_trace.sh OUT_DIR}")
project=$(pwd)
work=${EFFTRACE_PLACEMENT_WORK:-/tmp/efftrace-placement}
mkdir -p "$out" "$work"
. "$project/bench/stage_efftrace.sh"
python3 examples/make_random_llama.py "$work" --hidden 1024 --layers 8 --examples 16 > /dev/null
cp bench/gpu/trainer_on_gpu.py "$work/"
nvidia-smi --query-gpu=name,uuid,driver_version,power.limit --format=csv | tee "$out/gpu.txt"
cd "$work"
rm -rf run
python3 -m efftrace.recorder --run-dir run -- python3 trainer_on_gpu.py model out 60
mv run "$out/run"
