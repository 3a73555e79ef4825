"""How much two cores of this machine give over one, for the analysis's own work, with no engine at all.

    python bench/core_scaling.py RUN_DIR [--copies 2] [--repeat 3]

Runs the analysis of RUN_DIR on one thread (no reading ahead) in one process alone, then in
``--copies`` processes at once, ``--repeat`` times interleaved, each process timing its second
analysis (the first warms its allocator and the page cache). The throughput of the copies together
over the one alone is the most any engine can get from those cores on this machine: a shared VM's
cores share caches, memory bandwidth and sometimes a physical core, so it is less than the count
of copies. ``bench/fleet.py``'s "2 workers against 1" is measured against this ceiling.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import sys, time
from efftrace.analyzer.compute import signals
from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.read.loader import open_run
signals.read_ahead = lambda items: items  # one thread: the work itself, not its overlap
analyze(open_run(sys.argv[1]))
began = time.perf_counter()
analyze(open_run(sys.argv[1]))
print(time.perf_counter() - began)
"""


def _together(run_dir: Path, copies: int) -> list[float]:
    """Each copy's seconds, all started at once."""
    processes = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(run_dir)], stdout=subprocess.PIPE, text=True)
        for _ in range(copies)
    ]
    return [float(process.communicate()[0]) for process in processes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    alone, together = [], []
    for _ in range(args.repeat):
        alone += _together(args.run_dir, 1)
        together += _together(args.run_dir, args.copies)
    one, each = statistics.median(alone), statistics.median(together)
    print(f"alone: {', '.join(f'{s:.2f}' for s in alone)} s (median {one:.3f})")
    print(f"{args.copies} at once: {', '.join(f'{s:.2f}' for s in together)} s (median {each:.3f} each)")
    print(f"throughput of {args.copies} at once / 1 alone: {args.copies * one / each:.2f}x")


if __name__ == "__main__":
    main()
