"""effrec's overhead on a LLaMA-Factory job, from what bench/fidelity/overhead_on_gpu.sh recorded.

    python bench/fidelity/overhead.py RESULTS_DIR [--docs docs/benchmarks.md] [--marker NAME]

Throughput of each run is read from the trainer's own TensorBoard log (``log_times.py``): logged
steps per second between the first logged step at or after :data:`FIRST_TIMED_STEP` and the last,
so start-up, model loading and warm-up are left out and the same clock times runs with and without
effrec. Writes ``overhead.csv`` (pairs, their geometric mean, the extra runs against the mean of the
runs without effrec) and ``recorder_cost.csv`` (sampler CPU and trace size of each recorded run)
into RESULTS_DIR and prints them as Markdown; with ``--docs``, replaces the part of that file
between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` (NAME from ``--marker``, default
``events-overhead``) with them. Two optional parts of RESULTS_DIR add rows: ``aa/plainA.json`` and
``aa/plainB.json``, two runs without effrec back to back (how far two identical runs differ), and
``latency/``, Trainer runs timed with CUDA events under effrec (``latency.csv``, as in analyse.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from analyse import _command, _run, latency_rows, publish, recorder_cost_rows  # a sibling bench script

FIRST_TIMED_STEP = 50
EXTRA_RUNS = {"nosync": "effrec --no-sync", "10ms": "effrec --interval 0.01"}


def steps_per_second(path: Path) -> float:
    """Logged steps per second from the first logged step >= FIRST_TIMED_STEP to the last."""
    logged = json.loads(path.read_text())
    steps, wall = np.asarray(logged["steps"]), np.asarray(logged["wall_times"])
    first = int(np.argmax(steps >= FIRST_TIMED_STEP))
    return float((steps[-1] - steps[first]) / (wall[-1] - wall[first]))


def overhead_rows(results: Path) -> list[dict]:
    rows = []
    pairs = sorted(int(path.stem.split("-")[1]) for path in results.glob("plain-*.json"))
    for pair in pairs:
        without = steps_per_second(results / f"plain-{pair}.json")
        with_effrec = steps_per_second(results / f"effrec-{pair}.json")
        order = "without first" if pair % 2 else "with effrec first"
        rows.append(
            {
                "pair": f"{pair} ({order})",
                "without_steps_per_s": round(without, 4),
                "with_effrec_steps_per_s": round(with_effrec, 4),
                "ratio": round(with_effrec / without, 4),
                "command": f"`llamafactory-cli train plain-{pair}.yaml`, and "
                + _command(_run(results, f"effrec-{pair}")),
            }
        )
    ratios = [row["ratio"] for row in rows]
    rows.append(
        {
            "pair": f"geometric mean of {len(ratios)} pairs",
            "without_steps_per_s": "",
            "with_effrec_steps_per_s": "",
            "ratio": round(float(np.exp(np.mean(np.log(ratios)))), 4),
            "command": "the pairs above",
        }
    )
    control = results / "aa"
    if (control / "plainA.json").is_file() and (control / "plainB.json").is_file():
        first, second = steps_per_second(control / "plainA.json"), steps_per_second(control / "plainB.json")
        rows.append(
            {
                "pair": "control: two runs without effrec, back to back (second / first)",
                "without_steps_per_s": round(first, 4),
                "with_effrec_steps_per_s": round(second, 4),
                "ratio": round(second / first, 4),
                "command": "`llamafactory-cli train plainA.yaml`, then `llamafactory-cli train plainB.yaml`",
            }
        )
    plain_mean = statistics.mean(steps_per_second(results / f"plain-{pair}.json") for pair in pairs)
    for variant, label in EXTRA_RUNS.items():
        path = results / f"effrec-{variant}.json"
        if path.is_file():
            with_effrec = steps_per_second(path)
            rows.append(
                {
                    "pair": f"{label}, against the mean of the runs without",
                    "without_steps_per_s": round(plain_mean, 4),
                    "with_effrec_steps_per_s": round(with_effrec, 4),
                    "ratio": round(with_effrec / plain_mean, 4),
                    "command": _command(_run(results, f"effrec-{variant}")),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--docs", type=Path)
    parser.add_argument("--marker", default="events-overhead")
    args = parser.parse_args()
    tables = {"overhead": overhead_rows(args.results), "recorder_cost": recorder_cost_rows(args.results)}
    if (args.results / "latency").is_dir():
        tables["latency"] = latency_rows(args.results / "latency")
    publish(tables, args.results, args.docs, args.marker)


if __name__ == "__main__":
    main()
