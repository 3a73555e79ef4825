#!/usr/bin/env bash
# Train with LLaMA-Factory under effrec, printing the EfficientLLM metrics block after every log window
# while it trains (effanalyze --follow beside effrec), then the whole run's metrics, backfilling TensorBoard,
# as the EfficientLLM integration's script of the same name was used:
#
#   bash examples/train_with_efficientllm.sh CONFIG.yaml NGPUS
#
# NGPUS = 1 runs `llamafactory-cli train CONFIG` on one GPU; more runs LLaMA-Factory's own torchrun
# launch (FORCE_TORCHRUN=1, NPROC_PER_NODE=NGPUS). Unless CUDA_VISIBLE_DEVICES is set, the first
# NGPUS GPUs are used. The EFFICIENTLLM_* variables keep their meaning (COLLECTION_INTERVAL,
# HISTORY_SIZE, LOG_INTERVAL; METRICS_ENABLED=false trains without recording or analysis).
# EFFTRACE_OUT chooses where run directories go (default effrec_runs). effrec, effanalyze and
# llamafactory-cli must be on PATH (activate the venv efftrace is installed in).
# Exits with the training's exit code; the metrics are printed even when training failed part-way.
set -uo pipefail

usage() {
    echo "usage: bash $0 CONFIG.yaml NGPUS" >&2
    exit 2
}
[ $# -eq 2 ] || usage
config=$1
ngpus=$2
[ -f "$config" ] || { echo "$0: error: $config: no such config file" >&2; exit 2; }
[[ $ngpus =~ ^[1-9][0-9]*$ ]] || { echo "$0: error: NGPUS must be a positive integer, not '$ngpus'" >&2; exit 2; }
for tool in effrec effanalyze llamafactory-cli; do
    command -v "$tool" > /dev/null || { echo "$0: error: $tool is not on PATH (activate efftrace's venv)" >&2; exit 2; }
done

if [ -z "${CUDA_VISIBLE_DEVICES:-}" ]; then
    CUDA_VISIBLE_DEVICES=$(seq -s, 0 $((ngpus - 1)))
    export CUDA_VISIBLE_DEVICES
fi
if [ "$ngpus" -gt 1 ]; then
    export FORCE_TORCHRUN=1 NPROC_PER_NODE=$ngpus
fi

case "${EFFICIENTLLM_METRICS_ENABLED:-true}" in
    0 | false | False | FALSE | no | off)
        exec llamafactory-cli train "$config"
        ;;
esac

out=${EFFTRACE_OUT:-effrec_runs}
name=$(basename "${config%.*}")
run_dir="$out/$(date -u +%Y%m%dT%H%M%SZ)-$name"
echo "[EfficientLLM] training $config on $ngpus GPU(s) ($CUDA_VISIBLE_DEVICES), recording into $run_dir"
effrec --run-dir "$run_dir" -- llamafactory-cli train "$config" &
recorder=$!
while [ ! -f "$run_dir/meta.json" ] && kill -0 "$recorder" 2> /dev/null; do
    sleep 0.2
done
followed=1
if [ -f "$run_dir/meta.json" ]; then
    # Prints each log window's block as it completes, adds its points to TensorBoard, and when the run
    # ends prints the whole run's figures and backfills TensorBoard (one point per logged step).
    effanalyze "$run_dir" --follow --tensorboard && followed=0
fi
wait "$recorder"
status=$?

if [ ! -f "$run_dir/meta.json" ]; then
    echo "$0: no run directory $run_dir; nothing to analyse" >&2
    exit "$status"
fi
if [ "$followed" -ne 0 ]; then
    effanalyze "$run_dir" --tensorboard || echo "$0: effanalyze could not analyse $run_dir" >&2
fi
exit "$status"
