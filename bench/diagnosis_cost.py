"""What the diagnosis (where the time went, and the findings) adds to the analysis of a run.

    python bench/diagnosis_cost.py RUN_DIR [--repeat 5]

Runs the whole analysis of RUN_DIR ``--repeat`` times, each time interleaved with the same analysis
with the diagnosis switched off (its functions replaced by ones that return nothing, and the two
signals only the clock rules read, from the clock-event reasons, not integrated), in one process, and
prints the median of each and the ratio, and the median and quartiles of the ratios of each pair
(a run and the one interleaved beside it). Use it on the 24-hour, 8-GPU benchmark trace
that ``python bench/analyzer_speed.py --workdir DIR`` leaves in DIR.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from efftrace.analyzer.compute import metrics, signals
from efftrace.analyzer.compute.time_buckets import BUCKETS, Buckets
from efftrace.analyzer.read.loader import open_run


def _timed(run_dir: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (all threads): on a shared VM the CPU time is the steadier of the two,
    since time the hypervisor gives to others lengthens the wall time only."""
    began, began_cpu = time.perf_counter(), time.process_time()
    metrics.analyze(open_run(run_dir))
    return time.perf_counter() - began, time.process_time() - began_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    buckets, findings, timing, every_signal = metrics._buckets, metrics.findings, metrics.step_timing, signals.SIGNALS
    nothing = Buckets([], [], np.zeros((0, 0, len(BUCKETS))), np.zeros(0))
    without_clock_rules = tuple(signal for signal in every_signal if not signal.bits)
    with_diagnosis, without = [], []
    _timed(args.run_dir)  # a first read warms the page cache for both
    for _ in range(args.repeat):
        with_diagnosis.append(_timed(args.run_dir))
        metrics._buckets = lambda events, groups: nothing  # type: ignore[assignment]
        metrics.findings = lambda *arguments: []  # type: ignore[assignment]
        metrics.step_timing = lambda *arguments: {}  # type: ignore[assignment]
        signals.SIGNALS = without_clock_rules
        try:
            without.append(_timed(args.run_dir))
        finally:
            metrics._buckets, metrics.findings, metrics.step_timing = buckets, findings, timing
            signals.SIGNALS = every_signal
    for place, clock in enumerate(("wall", "CPU")):
        full = statistics.median(times[place] for times in with_diagnosis)
        bare = statistics.median(times[place] for times in without)
        # each run against the one beside it: the machine's drift over minutes cancels out of each pair
        pairs = zip(with_diagnosis, without, strict=True)
        paired = sorted(100 * (mine[place] / other[place] - 1) for mine, other in pairs)
        quartiles = statistics.quantiles(paired, n=4) if len(paired) >= 2 else paired * 3
        print(
            f"{clock}: analysis with the diagnosis {full:.3f} s, without {bare:.3f} s (medians of {args.repeat}, "
            f"interleaved): the diagnosis adds {100 * (full / bare - 1):+.1f} %; run by run, the median of the "
            f"pairs {statistics.median(paired):+.1f} % (quartiles {quartiles[0]:+.1f} to {quartiles[2]:+.1f} %)"
        )


if __name__ == "__main__":
    main()
