#!/usr/bin/env bash
# On the GPU machine, from the project root: the four workloads of bench/gpu/diagnosis_workload.py under
# effrec, one after another, then the launch- and compute-bound ones again with two steps under the
# PyTorch profiler (--profile-steps); writes OUT_DIR/traces.tar.gz (run directories) and each one's analysis.
#
#     bash bench/gpu/record_diagnosis_traces.sh OUT_DIR
set -uo pipefail
out=$(realpath -m "${1:?usage: record_diagnosis_traces.sh OUT_DIR}")
project=$(pwd)
work=${EFFTRACE_GPU_WORK:-/tmp/efftrace-diagnosis}
mkdir -p "$out" "$work"
. "$project/bench/stage_efftrace.sh"
cp bench/gpu/diagnosis_workload.py "$work/"
cd "$work" || exit 1
for workload in ${WORKLOADS:-input launch compute oom}; do
    python3 -m efftrace.recorder --out runs --name "h200-diagnosis-$workload" -- \
        python3 diagnosis_workload.py "$workload" "out-$workload" > "$out/log-$workload.txt" 2>&1
    echo "$workload: exit $?"; tail -n 2 "$out/log-$workload.txt"
    python3 -m efftrace.analyzer runs/*-h200-diagnosis-"$workload" > "$out/analysis-$workload.txt" 2>&1
    grep -A 8 "^Findings" "$out/analysis-$workload.txt"
done
for profiled in ${PROFILED:-launch:200-201 compute:20-21}; do
    workload=${profiled%%:*} steps=${profiled#*:}
    python3 -m efftrace.recorder --out runs --name "h200-profile-$workload" --profile-steps "$steps" -- \
        python3 diagnosis_workload.py "$workload" "out-profile-$workload" > "$out/log-profile-$workload.txt" 2>&1
    echo "profiled $workload ($steps): exit $?"; tail -n 2 "$out/log-profile-$workload.txt"
    ls -l runs/*-h200-profile-"$workload"/profile-*
done
tar -czf "$out/traces.tar.gz" runs
