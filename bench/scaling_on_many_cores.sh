#!/usr/bin/env bash
# The scaling benchmarks on a machine with more cores than the 2-core development VM (the lent GPU
# machine has 16), its results in OUT_DIR:
#
#     bash bench/scaling_on_many_cores.sh OUT_DIR [BASELINE_CHECKOUT]
#
# Dask is taken from the environment, or else from wheels in .whl/ (dask, distributed and what they
# need, downloaded for that machine's Python), installed into a temporary folder. Runs: the fleet
# benchmark (single process, Dask with 1 and 2 workers), the ceiling of 2 and of 8 processes at once
# against one (core_scaling.py), and the 24-h single-process benchmark's analysis with and without
# the diagnosis (diagnosis_cost.py), which also gives the single-process speed; with BASELINE_CHECKOUT
# (another checkout of efftrace), the single-process analysis of this one and that one interleaved.
set -euo pipefail
out=$1
baseline=${2:-}
project=$PWD
mkdir -p "$out"
if ! python3 -c "import distributed" 2>/dev/null; then
    site=$(mktemp -d)
    python3 -m pip install -q --no-index --no-deps --target "$site" .whl/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
# shellcheck source=bench/stage_efftrace.sh
source bench/stage_efftrace.sh
{ date -u; nproc; python3 --version; lscpu | grep -E "Model name|Thread|Core|Socket"; free -g | head -2; } > "$out/machine.txt"
work=$(mktemp -d)
python3 bench/fleet.py --step-s 10 --repeat 3 --workdir "$work/fleet" 2>&1 | tee "$out/fleet-10s.txt"
python3 bench/core_scaling.py "$work/fleet" --repeat 3 2>&1 | tee "$out/core-scaling-2.txt"
python3 bench/core_scaling.py "$work/fleet" --copies 8 --repeat 2 2>&1 | tee "$out/core-scaling-8.txt"
python3 -c "
import sys; sys.path.insert(0, 'bench')
from pathlib import Path
from analyzer_speed import make_trace
print(make_trace(Path('$work/day'), 24.0, 8, 100_000), 'GPU sample rows')" | tee "$out/day-trace.txt"
python3 bench/diagnosis_cost.py "$work/day" --repeat 21 2>&1 | tee "$out/diagnosis-cost.txt"
if [ -n "$baseline" ]; then
    python3 bench/analyzer_speed.py --workdir "$work/day" --repeat 15 --baseline "$baseline" --efftrace-only 2>&1 |
        tee "$out/single-process-against-baseline.txt"
fi
