#!/usr/bin/env bash
# effrec's overhead on a LLaMA-Factory job, from the project root on an NVIDIA machine:
#
#   bash bench/fidelity/overhead_on_gpu.sh OUT_DIR FIRST_PAIR LAST_PAIR [10ms] [nosync]
#
# The job: full SFT of a random 1.06 B Llama, 150 steps of 16 sequences cut to exactly 512 tokens
# (every step the same work, so run-to-run differences are the recorder's or the machine's, not the
# data's). Pairs run the job without and with effrec (default settings), alternating which goes first
# (odd pairs plain first, even pairs effrec first) so that a drift of the machine cancels out; `10ms`
# adds one run with effrec polling every 0.01 s, `nosync` one with effrec --no-sync. Throughput is read from the trainer's own TensorBoard
# log (bench/fidelity/log_times.py), between the first logged step >= 50 and the last, so start-up and
# warm-up are left out. Needs llamafactory 0.9.5 importable. Writes OUT_DIR/NAME.json per run and
# OUT_DIR/runs/ (effrec's run directories); bench/fidelity/overhead.py turns them into the table.
set -uo pipefail
out=$(realpath -m "${1:?usage: overhead_on_gpu.sh OUT_DIR FIRST_PAIR LAST_PAIR [10ms] [nosync]}")
first=${2:?first pair}
last=${3:?last pair}
project=$(pwd)
work=${EFFTRACE_OVERHEAD_WORK:-/tmp/efftrace-overhead}
mkdir -p "$out" "$work"
. "$project/bench/stage_efftrace.sh"
nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv,noheader > "$out/gpu.txt"
cd "$work" || exit 1
if [ ! -f model/config.json ]; then
    python3 "$project/examples/make_random_llama.py" . --hidden 2048 --layers 18 \
        --examples 4000 --min-words 300 --max-words 300 > "$out/model.json"
fi
sed -e 's/max_steps: .*/max_steps: 150/' -e 's/per_device_train_batch_size: .*/per_device_train_batch_size: 16/' \
    "$project/sample_traces/configs/h100_full_sft.yaml" > job.yaml

train() {  # NAME [effrec options...]: one run; NAME starting with "plain" runs without effrec
    local name=$1
    shift
    rm -rf "saves/$name"
    sed -e "s|output_dir: .*|output_dir: saves/$name|" job.yaml > "$name.yaml"
    case $name in
        plain*) python3 -m llamafactory.cli train "$name.yaml" > "$out/log-$name.txt" 2>&1 ;;
        *) python3 -m efftrace.recorder --out "$out/runs" --name "$name" "$@" -- \
            python3 -m llamafactory.cli train "$name.yaml" > "$out/log-$name.txt" 2>&1 ;;
    esac
    echo "$name: exit $?"
    python3 "$project/bench/fidelity/log_times.py" "saves/$name" > "$out/$name.json"
    rm -rf "saves/$name"  # the 2-GB checkpoint is not needed
}

for pair in $(seq "$first" "$last"); do
    if [ $((pair % 2)) -eq 1 ]; then
        train "plain-$pair"
        train "effrec-$pair"
    else
        train "effrec-$pair"
        train "plain-$pair"
    fi
done
for extra in "${@:4}"; do
    case $extra in
        10ms) train effrec-10ms --interval 0.01 ;;
        nosync) train effrec-nosync --no-sync ;;
        *) echo "unknown extra run: $extra" >&2 ;;
    esac
done
