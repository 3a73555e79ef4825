"""Turn the fidelity recordings into tables: energy, latency, overhead and PCU sources.

    python bench/fidelity/analyse.py RESULTS_DIR [--docs docs/benchmarks.md]

RESULTS_DIR is what ``bench/fidelity/record_on_gpu.sh`` recorded (``runs/`` plus the workloads'
own JSON). Writes ``energy.csv``, ``step_energy.csv``, ``latency.csv``, ``overhead.csv``,
``pcu.csv`` and ``recorder_cost.csv`` into RESULTS_DIR and prints the Markdown tables; with
``--docs``, replaces the part of that file between ``<!-- fidelity:begin -->`` and
``<!-- fidelity:end -->`` with them.

Energy reference: the NVML energy counter's increase between its first and last reading of the
run (the counter is read every 2 s, so no interpolation is involved). Slower polls are emulated by
keeping every 10th or 100th row of a 0.01-s recording: the rows are raw instant readings, so this
is what a slower poll would have read at those instants.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from efftrace.analyzer.compute.integrate import window_integrals
from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.compute.settings import AnalysisSettings
from efftrace.analyzer.read.loader import open_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gpu"))
from summarise_runs import summarise  # a sibling bench script, not an installed module

POLLS_S = (0.01, 0.1, 1.0)
H100_DENSE_BF16_TFLOPS = 989.0
H100_HBM3_GB_PER_S = 3350.0


def _run(results: Path, name: str) -> Path:
    found = sorted((results / "runs").glob(f"*Z-{name}"))  # <UTC time>Z-<name>
    if not found:
        raise SystemExit(f"analyse.py: error: {results / 'runs'}: no run named {name}")
    return found[-1]


def _command(run_dir: Path) -> str:
    """The exact command that recorded a run, as effrec wrote it into meta.json."""
    argv = json.loads((run_dir / "meta.json").read_text())["recorder_argv"]
    return "`" + " ".join(argv) + "`"


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _seconds(times_ns: np.ndarray, origin_ns: int) -> np.ndarray:
    return (times_ns - origin_ns) / 1e9


def energy_rows(run_dir: Path, label: str) -> tuple[list[dict], list[dict]]:
    """Energy over the counter's span by each method, and per-step energy against the buffer's."""
    trace = open_run(run_dir)
    gpu = trace.gpu_samples()
    origin = int(gpu["time_ns"][0].as_py())
    counted = gpu.filter(pc.is_valid(gpu["energy_mj"]))
    counter_t = _seconds(counted["time_ns"].to_numpy(), origin)
    counter_mj = counted["energy_mj"].to_numpy().astype(np.int64)
    start, end = counter_t[0], counter_t[-1]
    reference_j = (counter_mj[-1] - counter_mj[0]) / 1e3
    times = _seconds(gpu["time_ns"].to_numpy(), origin)
    instant = gpu["power_instant_mw"].to_numpy() / 1e3
    average = gpu["power_avg_mw"].to_numpy() / 1e3
    buffer = trace.power_samples()
    buffer_t = _seconds(buffer["time_ns"].to_numpy(), origin)
    buffer_w = buffer["power_mw"].to_numpy() / 1e3
    poll_s = float(np.median(np.diff(times)))

    def trapezoid(t: np.ndarray, watts: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        return window_integrals(t, watts, starts, ends)[0]

    span = (np.array([start]), np.array([end]))
    rows = []
    for poll in POLLS_S:
        keep = slice(None, None, max(1, round(poll / poll_s)))
        methods = {
            "trapezoid of the driver buffer (20 ms)": trapezoid(buffer_t, buffer_w, *span)[0],
            "trapezoid of instant power": trapezoid(times[keep], instant[keep], *span)[0],
            "trapezoid of 1-s averaged power": trapezoid(times[keep], average[keep], *span)[0],
        }
        if poll == 1.0:
            inside = (times[keep] >= start) & (times[keep] <= end)
            methods["seed: plain mean of 1-s averaged power x duration"] = average[keep][inside].mean() * (end - start)
        for method, joules in methods.items():
            error = 100 * (joules - reference_j) / reference_j
            rows.append(
                {
                    "run": label,
                    "poll_s": poll,
                    "method": method,
                    "energy_j": round(joules, 1),
                    "counter_j": round(reference_j, 1),
                    "error_pct": round(error, 3),
                    "window_s": round(end - start, 1),
                    "command": _command(run_dir),
                }
            )
    events = trace.events()
    steps = events.filter(pc.equal(events["kind"], "train_step"))
    step_start = _seconds(steps["start_ns"].to_numpy(), origin)
    step_end = _seconds(steps["end_ns"].to_numpy(), origin)
    reference = trapezoid(buffer_t, buffer_w, step_start, step_end)
    keep = slice(None, None, max(1, round(0.1 / poll_s)))
    step_rows = []
    for method, watts in (("instant power, 0.1-s poll", instant), ("1-s averaged power, 0.1-s poll", average)):
        joules = trapezoid(times[keep], watts[keep], step_start, step_end)
        relative = 100 * np.abs(joules - reference) / reference
        step_rows.append(
            {
                "run": label,
                "method": method,
                "steps": len(reference),
                "median_abs_error_pct": round(float(np.median(relative)), 2),
                "p90_abs_error_pct": round(float(np.percentile(relative, 90)), 2),
                "max_abs_error_pct": round(float(relative.max()), 2),
                "total_error_pct": round(float(100 * (joules.sum() - reference.sum()) / reference.sum()), 3),
                "command": _command(run_dir),
            }
        )
    return rows, step_rows


def latency_rows(results: Path) -> list[dict]:
    """AL from effrec's events against the CUDA-event timing of the same steps."""
    rows = []
    runs = sorted(path.stem for path in results.glob("trainer-effrec-*.json"))
    for name in runs:
        timing = json.loads((results / f"{name}.json").read_text())
        gpu_s = {item["step"]: item["gpu_s"] for item in timing["steps"]}
        events = open_run(_run(results, name)).events()
        steps = events.filter(pc.equal(events["kind"], "train_step"))
        effrec_s = {
            step: (end - start) / 1e9
            for step, start, end in zip(
                steps["step"].to_pylist(), steps["start_ns"].to_pylist(), steps["end_ns"].to_pylist(), strict=True
            )
        }
        common = sorted(set(gpu_s) & set(effrec_s))
        ours = np.array([effrec_s[step] for step in common])
        theirs = np.array([gpu_s[step] for step in common])
        per_step = 100 * (ours - theirs) / theirs
        meta = json.loads((_run(results, name) / "meta.json").read_text())
        rows.append(
            {
                "run": name,
                "cuda_sync": meta["sampling"].get("cuda_sync"),
                "steps": len(common),
                "al_effrec_s": round(float(ours.mean()), 5),
                "al_cuda_events_s": round(float(theirs.mean()), 5),
                "al_error_pct": round(float(100 * (ours.mean() - theirs.mean()) / theirs.mean()), 2),
                "per_step_median_error_pct": round(float(np.median(per_step)), 2),
                "per_step_p90_abs_error_pct": round(float(np.percentile(np.abs(per_step), 90)), 2),
                "command": _command(_run(results, name)),
            }
        )
    return rows


def overhead_rows(results: Path) -> list[dict]:
    """Throughput with effrec over throughput without, pair by pair, for both jobs."""
    rows = []
    for pair in range(1, 10):
        plain, recorded = results / f"plain-{pair}.json", results / f"effrec-{pair}.json"
        if plain.is_file() and recorded.is_file():
            without = json.loads(plain.read_text())["train_samples_per_second"]
            with_effrec = json.loads(recorded.read_text())["train_samples_per_second"]
            rows.append(
                {
                    "job": "LLaMA-Factory full SFT, 100 steps (train_samples_per_second)",
                    "pair": pair,
                    "without": without,
                    "with_effrec": with_effrec,
                    "ratio": round(with_effrec / without, 4),
                    "command": f"`llamafactory-cli train plain-{pair}.yaml`, then "
                    + _command(_run(results, f"effrec-{pair}")),
                }
            )
    for pair in range(1, 10):
        plain, recorded = results / f"trainer-plain-{pair}.json", results / f"trainer-effrec-{pair}.json"
        if plain.is_file() and recorded.is_file():
            without, with_effrec = (_steps_per_second(json.loads(path.read_text())) for path in (plain, recorded))
            rows.append(
                {
                    "job": "transformers Trainer, steps 11-150 (steps/s, wall clock)",
                    "pair": pair,
                    "without": round(without, 3),
                    "with_effrec": round(with_effrec, 3),
                    "ratio": round(with_effrec / without, 4),
                    "command": f"`python3 bench/fidelity/trainer_latency.py results/trainer-plain-{pair}.json`, then "
                    + _command(_run(results, f"trainer-effrec-{pair}")),
                }
            )
    plain_mean = statistics.mean(
        _steps_per_second(json.loads(path.read_text())) for path in results.glob("trainer-plain-*.json")
    )
    for variant, label in (("nosync", "effrec --no-sync"), ("10ms", "effrec --interval 0.01")):
        path = results / f"trainer-effrec-{variant}.json"
        if path.is_file():
            with_effrec = _steps_per_second(json.loads(path.read_text()))
            rows.append(
                {
                    "job": f"transformers Trainer, {label}, against the mean of the runs without",
                    "pair": "-",
                    "without": round(plain_mean, 3),
                    "with_effrec": round(with_effrec, 3),
                    "ratio": round(with_effrec / plain_mean, 4),
                    "command": _command(_run(results, f"trainer-effrec-{variant}")),
                }
            )
    for job in sorted({row["job"] for row in rows if row["pair"] != "-"}):
        ratios = [row["ratio"] for row in rows if row["job"] == job and row["pair"] != "-"]
        rows.append(
            {
                "job": job,
                "pair": "geometric mean",
                "without": "",
                "with_effrec": "",
                "ratio": round(float(np.exp(np.mean(np.log(ratios)))), 4),
                "command": "the pairs above",
            }
        )
    return rows


def _steps_per_second(timing: dict) -> float:
    return timing["timed_steps"] / timing["timed_wall_s"]


def pcu_rows(results: Path) -> list[dict]:
    rows = []
    for kind in ("matmul", "copy"):
        achieved = json.loads((results / f"{kind}.json").read_text())
        train = analyze(open_run(_run(results, kind)), AnalysisSettings(log_interval=10)).train
        if kind == "matmul":
            fraction = achieved["tflops"] / H100_DENSE_BF16_TFLOPS
            truth = f"{achieved['tflops']:.0f} TFLOP/s = {fraction:.3f} of dense bf16 peak (MFU)"
        else:
            fraction = achieved["gb_per_s"] / H100_HBM3_GB_PER_S
            truth = f"{achieved['gb_per_s']:.0f} GB/s = {fraction:.3f} of HBM3 peak"
        rows.append(
            {
                "workload": "bf16 8192^3 matmul (compute-bound)" if kind == "matmul" else "2 GiB copies (memory-bound)",
                "pcu_nvml_util": round(train.value("pcu_ratio"), 3),
                "pcu_sm_gpm": round(train.value("pcu_sm_ratio"), 3),
                "pcu_tensor_gpm": round(train.value("pcu_tensor_ratio"), 3),
                "dram_bw_gpm": round(train.value("dram_bw_ratio"), 3),
                "aec_w": round(train.value("aec_watts"), 1),
                "achieved": truth,
                "command": _command(_run(results, kind)),
            }
        )
    return rows


def recorder_cost_rows(results: Path) -> list[dict]:
    """The sampler thread's CPU and the trace size of every recorded run, as bench/gpu/summarise_runs.py reads them."""
    rows = []
    for run in sorted((results / "runs").iterdir()):
        summary = summarise(run)
        rows.append(
            {
                "run": run.name.split("Z-", 1)[1],
                "poll_s": json.loads((run / "meta.json").read_text())["sampling"]["interval_s"],
                "seconds": summary["seconds"],
                "sampler_cpu_pct_of_core_per_gpu": summary["sampler_cpu_pct_of_core_per_gpu"],
                "mb_per_gpu_hour": summary["mb_per_gpu_hour"],
                "command": _command(run),
            }
        )
    return rows


def markdown(table: list[dict]) -> str:
    header = list(table[0])
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in table]
    return "\n".join(lines)


def publish(tables: dict[str, list[dict]], results: Path, docs: Path | None, marker: str) -> None:
    """Write each table as RESULTS/NAME.csv, print them as Markdown, and put them into ``docs``
    between ``<!-- MARKER:begin -->`` and ``<!-- MARKER:end -->``."""
    for name, rows in tables.items():
        _write_csv(results / f"{name}.csv", rows)
    text = "\n\n".join(f"#### {name}\n\n{markdown(rows)}" for name, rows in tables.items())
    print(text)
    if docs:
        document = docs.read_text()
        begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
        head, _, rest = document.partition(begin)
        _, _, tail = rest.partition(end)
        docs.write_text(f"{head}{begin}\n{text}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--docs", type=Path)
    args = parser.parse_args()
    energy, step_energy = [], []
    for name, label in (("bursty-10ms", "bursty matmul workload"), ("effrec-10ms", "LLaMA-Factory full SFT")):
        rows, steps = energy_rows(_run(args.results, name), label)
        energy += rows
        step_energy += steps
    tables = {
        "energy": energy,
        "step_energy": step_energy,
        "latency": latency_rows(args.results),
        "overhead": overhead_rows(args.results),
        "pcu": pcu_rows(args.results),
        "recorder_cost": recorder_cost_rows(args.results),
    }
    publish(tables, args.results, args.docs, "fidelity")


if __name__ == "__main__":
    main()
