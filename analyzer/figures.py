"""Naming the computed numbers: figures with units, sources and coverage, and the result tables.

:mod:`analyzer.metrics` computes arrays over window groups; this module turns them into the
:class:`~analyzer.result.RunMetrics` that every output formats, and is the only place that
knows the seed's labels and how each figure's source is described.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from analyzer.loader import GpuInfo, Trace
from analyzer.result import Figure, RunMetrics, WindowSummary
from analyzer.signals import SIGNAL_BY_NAME, GpuKey
from analyzer.steps import Generations, LogWindows, Steps
from recorder.arrow_columns import from_numpy, to_arrow

if TYPE_CHECKING:
    from analyzer.metrics import AnalysisSettings, WindowGroups

ENERGY_CHECK_TOLERANCE = 0.02  # flag |trapezoid - counter| / counter above this


@dataclass(frozen=True)
class Context:
    """What naming a figure needs beyond the numbers."""

    trace: Trace
    settings: AnalysisSettings
    max_gap_s: float
    peak_flops: float | None
    peak_source: str
    gpu_info: dict[GpuKey, GpuInfo]

    @property
    def params(self) -> int | None:
        model = self.trace.meta.get("model") or {}
        return model.get("total_params")


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _gpu_count(per_gpu: dict[GpuKey, dict]) -> str:
    return f"{len(per_gpu)} GPU" if len(per_gpu) == 1 else f"{len(per_gpu)} GPUs"


def _power_source(per_gpu: dict[GpuKey, dict]) -> str:
    used = sorted({columns["power_signal"] for columns in per_gpu.values()})
    described = "; ".join(SIGNAL_BY_NAME[name].source for name in used) or "no power samples"
    if "power_average" in used:
        described += " [fallback: lags ~1 s]"
    return described


def gpu_figures(aggregate: dict[str, np.ndarray], at: int, per_gpu: dict[GpuKey, dict]) -> dict[str, Figure]:
    """The figures every window has: memory, utilisation, power and energy of the job's GPUs."""
    gpus = _gpu_count(per_gpu)
    row = {key: _number(values[at]) for key, values in aggregate.items()}
    mean_of = f"time-weighted mean, mean of {gpus}"
    figures = [
        Figure(
            "amu_gib",
            "AMU (GB)",
            row["amu_gib"],
            "GiB",
            f"{SIGNAL_BY_NAME['memory'].source}, {mean_of} (max {_fmt(row['amu_gib_max'])} GiB)",
            row["coverage_memory"],
        ),
        Figure(
            "pcu_ratio",
            "PCU (Ratio)",
            row["pcu_ratio"],
            "ratio",
            f"{SIGNAL_BY_NAME['util_gpu'].source}, {mean_of} (max {_fmt(row['pcu_ratio_max'])})",
            row["coverage_util"],
        ),
        Figure(
            "aec_watts",
            "AEC (Watts)",
            row["aec_watts"],
            "W",
            f"{_power_source(per_gpu)}, time-weighted mean, sum of {gpus} (per GPU {_fmt(row['aec_watts_per_gpu'])} W)",
            row["coverage_power"],
        ),
        Figure(
            "pcu_sm_ratio",
            "PCU-SM (Ratio)",
            row["pcu_sm_ratio"],
            "ratio",
            f"{SIGNAL_BY_NAME['gpm_sm'].source}, {mean_of}",
            row["coverage_gpm"],
        ),
        Figure(
            "pcu_tensor_ratio",
            "PCU-tensor (Ratio)",
            row["pcu_tensor_ratio"],
            "ratio",
            f"{SIGNAL_BY_NAME['gpm_tensor'].source}, {mean_of}",
            row["coverage_gpm"],
        ),
        Figure(
            "dram_bw_ratio",
            "DRAM bandwidth (Ratio)",
            row["dram_bw_ratio"],
            "ratio",
            f"{SIGNAL_BY_NAME['gpm_dram'].source}, {mean_of}",
            row["coverage_gpm"],
        ),
        Figure(
            "energy_j",
            "Energy (J)",
            row["energy_j"],
            "J",
            f"trapezoid integral of {_power_source(per_gpu)}, sum of {gpus}",
            row["coverage_power"],
        ),
        Figure(
            "energy_counter_j",
            "Energy counter (J)",
            row["energy_counter_j"],
            "J",
            f"increase of the {SIGNAL_BY_NAME['energy_counter'].source}, sum of {gpus}",
            row["coverage_counter"],
        ),
        Figure(
            "energy_counter_diff_pct",
            "Energy vs counter (%)",
            _percent(row["energy_counter_diff"]),
            "%",
            "(trapezoid energy - counter increase) / counter increase, both between the counter's first and last "
            f"reading inside the window ({_fmt(row['checked_seconds'])} s compared)",
            None,
        ),
    ]
    return {figure.key: figure for figure in figures}


def _percent(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def train_figures(
    context: Context, steps: Steps, step_row: dict[str, float | None], gpu: dict[str, Figure]
) -> dict[str, Figure]:
    """The train window: the seed's seven figures first, then what goes beyond them."""
    params = context.params
    latency = steps.latency_s
    ranks = steps.rank_ids.size
    events = f"train_step events of {ranks} rank{'s' if ranks != 1 else ''}, {steps.count} steps"
    synced = (context.trace.meta.get("sampling") or {}).get("cuda_sync", True)
    timing = "times as the GPU reached them" if synced else "times on the host's clock (--no-sync)"
    per_param = f"/ ({params:,} params x sum of step latencies)" if params else "(parameter count unknown)"
    slowest = int(steps.rank_ids[np.argmax(steps.rank_mean_duration_s)]) if ranks else None
    energy, tokens, samples = gpu["energy_j"].value, step_row["tokens"], step_row["samples"]
    figures = [
        Figure("loss", "Loss", step_row["loss"], "", f"Trainer log, last logged loss (step {_last_logged(steps)})"),
        gpu["amu_gib"],
        gpu["pcu_ratio"],
        Figure(
            "al_seconds",
            "AL (Seconds)",
            step_row["al_seconds"],
            "s",
            f"mean step latency (latest end - earliest start over ranks), {events}, {timing}",
        ),
        Figure(
            "tt_tokens_per_param_per_sec",
            "TT (Tokens/Param/Sec)",
            step_row["tt_tokens_per_param_per_sec"],
            "tokens/param/s",
            f"non-padding tokens summed over ranks and micro-batches {per_param}",
        ),
        Figure(
            "st_samples_per_param_per_sec",
            "ST (Samples/Param/Sec)",
            step_row["st_samples_per_param_per_sec"],
            "samples/param/s",
            f"samples summed over ranks {per_param}",
        ),
        gpu["aec_watts"],
        gpu["pcu_sm_ratio"],
        gpu["pcu_tensor_ratio"],
        Figure(
            "mfu",
            "MFU (Ratio)",
            step_row["mfu"],
            "ratio",
            f"model FLOPs/s (PaLM: 6N, or 4N + 2N_trainable for adapters, plus attention) / {context.peak_source}",
        ),
        Figure("tokens_per_sec", "Tokens/s", step_row["tokens_per_sec"], "tokens/s", "tokens / sum of step latencies"),
        Figure(
            "samples_per_sec", "Samples/s", step_row["samples_per_sec"], "samples/s", "samples / sum of step latencies"
        ),
        Figure("al_p50_seconds", "AL p50 (Seconds)", _number(np.percentile(latency, 50)), "s", events),
        Figure("al_p90_seconds", "AL p90 (Seconds)", _number(np.percentile(latency, 90)), "s", events),
        Figure("al_p99_seconds", "AL p99 (Seconds)", _number(np.percentile(latency, 99)), "s", events),
        Figure("al_max_seconds", "AL max (Seconds)", _number(latency.max()), "s", events),
        Figure(
            "rank_end_skew_seconds",
            "Rank end skew (Seconds)",
            step_row["end_skew_s"],
            "s",
            f"mean over steps of (latest - earliest rank end); slowest rank on average: {slowest}",
        ),
        gpu["energy_j"],
        gpu["energy_counter_j"],
        gpu["energy_counter_diff_pct"],
        Figure(
            "energy_per_token_j", "Energy/token (J)", _ratio(energy, tokens), "J/token", "train-window energy / tokens"
        ),
        Figure(
            "energy_per_sample_j",
            "Energy/sample (J)",
            _ratio(energy, samples),
            "J/sample",
            "train-window energy / samples",
        ),
        Figure(
            "torch_allocated_gib",
            "Torch allocated (GiB)",
            step_row["torch_allocated_gib"],
            "GiB",
            "torch.cuda.memory_allocated() at step ends, mean over steps and ranks",
        ),
        Figure(
            "torch_reserved_gib",
            "Torch reserved (GiB)",
            step_row["torch_reserved_gib"],
            "GiB",
            "torch.cuda.memory_reserved() at step ends, mean over steps and ranks",
        ),
        Figure(
            "torch_peak_gib",
            "Torch peak (GiB)",
            step_row["torch_peak_gib"],
            "GiB",
            "torch.cuda.max_memory_allocated(), max over ranks",
        ),
        gpu["dram_bw_ratio"],
    ]
    return {figure.key: figure for figure in figures}


def _last_logged(steps: Steps) -> str:
    logged = steps.step[~np.isnan(steps.loss)]
    return str(int(logged[-1])) if logged.size else "none"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def inference_figures(context: Context, gens: Generations, gpu: dict[str, Figure]) -> dict[str, Figure]:
    generated = float(np.nansum(gens.generated_tokens)) if not np.isnan(gens.generated_tokens).all() else None
    seconds = gens.union_seconds
    throughput = _ratio(generated, seconds)
    params = context.params
    calls = f"{gens.count} generate() calls, {seconds:.3f} s of inference (their union)"
    figures = [
        Figure(
            "it_tokens_per_sec",
            "IT (Tokens/Sec)",
            throughput,
            "tokens/s",
            f"new tokens (padding excluded) / inference window; {calls}",
        ),
        Figure(
            "it_tokens_per_param_per_sec",
            "IT (Tokens/Param/Sec)",
            _ratio(throughput, params),
            "tokens/param/s",
            f"IT / {params:,} params" if params else "parameter count unknown",
        ),
        Figure("generated_tokens", "Generated tokens", generated, "tokens", calls),
        gpu["amu_gib"],
        gpu["pcu_ratio"],
        gpu["aec_watts"],
        gpu["pcu_sm_ratio"],
        gpu["pcu_tensor_ratio"],
        gpu["energy_j"],
        gpu["energy_counter_j"],
        gpu["energy_counter_diff_pct"],
        Figure(
            "energy_per_generated_token_j",
            "Energy/generated token (J)",
            _ratio(gpu["energy_j"].value, generated),
            "J/token",
            "inference-window energy / generated tokens",
        ),
    ]
    return {figure.key: figure for figure in figures}


def _column(values: np.ndarray) -> pa.Array:
    """A float column with NaN stored as null (unknown), so Parquet/CSV readers see a gap, not a number."""
    values = np.asarray(values, dtype=np.float64)
    return from_numpy(values, pa.float64(), mask=np.isnan(values))


_WINDOW_GPU_COLUMNS = (
    "amu_gib",
    "amu_gib_max",
    "pcu_ratio",
    "pcu_ratio_max",
    "pcu_sm_ratio",
    "pcu_tensor_ratio",
    "dram_bw_ratio",
    "aec_watts",
    "aec_watts_per_gpu",
    "energy_j",
    "energy_counter_j",
    "energy_counter_diff",
    "coverage_memory",
    "coverage_util",
    "coverage_gpm",
    "coverage_power",
    "coverage_counter",
)
_WINDOW_STEP_COLUMNS = (
    "loss",
    "al_seconds",
    "tt_tokens_per_param_per_sec",
    "st_samples_per_param_per_sec",
    "mfu",
    "tokens_per_sec",
    "samples_per_sec",
    "tokens",
    "samples",
    "latency_s_sum",
    "end_skew_s",
    "torch_allocated_gib",
    "torch_reserved_gib",
    "torch_peak_gib",
)


def windows_table(
    logs: LogWindows, log_rows: np.ndarray, aggregate: dict[str, np.ndarray], step_columns: dict[str, np.ndarray]
) -> pa.Table:
    """One row per log window, reported at its last step with that step's end as wall time."""
    columns: dict[str, pa.Array] = {
        "window": from_numpy(np.arange(1, logs.count + 1, dtype=np.int64)),
        "step": from_numpy(logs.last_step.astype(np.int64)),
        "first_step": from_numpy(step_columns["first_step"].astype(np.int64)),
        "steps": from_numpy(step_columns["steps"].astype(np.int64)),
        "complete": from_numpy(logs.complete.astype(bool)),
        "start_ns": from_numpy(logs.start_ns.astype(np.int64)),
        "end_ns": from_numpy(logs.end_ns.astype(np.int64)),
        "wall_time": from_numpy(logs.end_ns / 1e9),
        "seconds": from_numpy((logs.end_ns - logs.start_ns) / 1e9),
    }
    for key in _WINDOW_STEP_COLUMNS:
        columns[key] = _column(step_columns[key])
    for key in _WINDOW_GPU_COLUMNS:
        columns[key] = _column(aggregate[key][log_rows])
    columns["energy_per_token_j"] = _column(aggregate["energy_j"][log_rows] / step_columns["tokens"])
    return pa.table(columns)


_PER_GPU_COLUMNS = (
    "amu_gib",
    "pcu_ratio",
    "pcu_sm_ratio",
    "pcu_tensor_ratio",
    "dram_bw_ratio",
    "util_memory_ratio",
    "aec_watts",
    "energy_j",
    "energy_counter_j",
    "power_buffer_watts",
    "power_instant_watts",
    "power_average_watts",
    "sm_clock_mhz",
    "temperature_c",
    "coverage_memory",
    "coverage_util",
    "coverage_gpm",
    "coverage_power",
    "coverage_counter",
    "energy_counter_diff",
)


def per_gpu_table(
    context: Context, per_gpu: dict[GpuKey, dict], group_names: list[str], group_seconds: np.ndarray
) -> pa.Table:
    """One row per (window, GPU) for the summary windows: train, inference, job."""
    rows = [at for at, name in enumerate(group_names) if name != "log"]
    keys = list(per_gpu)
    window = [group_names[at] for at in rows for _ in keys]
    info = [context.gpu_info.get(key) for _ in rows for key in keys]
    columns: dict[str, Any] = {
        "window": to_arrow(window, pa.string()),
        "host": to_arrow([key[0] for _ in rows for key in keys], pa.string()),
        "gpu": to_arrow([key[1] for _ in rows for key in keys], pa.int64()),
        "name": to_arrow([gpu.name if gpu else None for gpu in info], pa.string()),
        "uuid": to_arrow([gpu.uuid if gpu else None for gpu in info], pa.string()),
        "seconds": to_arrow([float(group_seconds[at]) for at in rows for _ in keys], pa.float64()),
        "power_source": to_arrow([per_gpu[key]["power_signal"] for _ in rows for key in keys], pa.string()),
    }
    for name in _PER_GPU_COLUMNS:
        values = np.array([per_gpu[key][name][at] for at in rows for key in keys], dtype=np.float64)
        columns[name] = _column(values)
    return pa.table(columns)


def step_table(steps: Steps) -> pa.Table:
    """One row per optimizer step, all ranks merged: what the latency figures are made of."""
    return pa.table(
        {
            "step": from_numpy(steps.step.astype(np.int64)),
            "start_ns": from_numpy(steps.start_ns.astype(np.int64)),
            "end_ns": from_numpy(steps.end_ns.astype(np.int64)),
            "latency_s": from_numpy(steps.latency_s.astype(np.float64)),
            "ranks": from_numpy(steps.ranks.astype(np.int64)),
            "samples": _column(steps.samples),
            "tokens": _column(steps.tokens),
            "loss": _column(steps.loss),
            "end_skew_s": _column(steps.end_skew_s),
        }
    )


def rank_table(steps: Steps) -> pa.Table:
    """Each rank's own mean step duration: the per-rank skew."""
    return pa.table(
        {
            "rank": from_numpy(steps.rank_ids.astype(np.int64)),
            "mean_step_s": from_numpy(steps.rank_mean_duration_s.astype(np.float64)),
        }
    )


def generate_table(gens: Generations) -> pa.Table:
    seconds = (gens.end_ns - gens.start_ns) / 1e9
    with np.errstate(divide="ignore", invalid="ignore"):
        throughput = np.where(seconds > 0, gens.generated_tokens / seconds, np.nan)
    return pa.table(
        {
            "call": from_numpy(np.arange(1, gens.count + 1, dtype=np.int64)),
            "start_ns": from_numpy(gens.start_ns.astype(np.int64)),
            "end_ns": from_numpy(gens.end_ns.astype(np.int64)),
            "wall_time": from_numpy(gens.end_ns / 1e9),
            "seconds": from_numpy(seconds.astype(np.float64)),
            "samples": _column(gens.samples),
            "prompt_tokens": _column(gens.prompt_tokens),
            "generated_tokens": _column(gens.generated_tokens),
            "it_tokens_per_sec": _column(throughput),
        }
    )


def _energy_checks(summaries: dict[str, WindowSummary]) -> list[str]:
    notes = []
    for summary in summaries.values():
        difference = summary.figures["energy_counter_diff_pct"].value
        power, counter = summary.figures["energy_j"], summary.figures["energy_counter_j"]
        full = (power.coverage or 0) >= 0.99 and (counter.coverage or 0) >= 0.99
        if difference is not None and full and abs(difference) > 100 * ENERGY_CHECK_TOLERANCE:
            notes.append(
                f"{summary.name} window: energy from power samples ({power.value:.1f} J) differs from the "
                f"energy counter ({counter.value:.1f} J) by {difference:+.2f} % (more than "
                f"{100 * ENERGY_CHECK_TOLERANCE:g} %)"
            )
    return notes


def build_result(
    context: Context,
    steps: Steps,
    logs: LogWindows,
    gens: Generations,
    groups: WindowGroups,
    per_gpu: dict[GpuKey, dict],
    aggregate: dict[str, np.ndarray],
    step_columns: dict[str, dict[str, np.ndarray]],
    notes: list[str],
) -> RunMetrics:
    summaries: dict[str, WindowSummary] = {}
    for name in ("train", "inference", "job"):
        at = groups.index(name)
        if at is None:
            continue
        spans = slice(groups.first_span[at], groups.first_span[at + 1] if at + 1 < len(groups.names) else None)
        start, end = int(groups.starts_ns[spans].min()), int(groups.ends_ns[spans].max())
        gpu = gpu_figures(aggregate, at, per_gpu)
        if name == "train":
            step_row = {key: _number(values[0]) for key, values in step_columns["train"].items()}
            figures = train_figures(context, steps, step_row, gpu)
        elif name == "inference":
            figures = inference_figures(context, gens, gpu)
        else:
            figures = dict(gpu)
        summaries[name] = WindowSummary(name, start, end, figures)
    log_rows = np.array([at for at, name in enumerate(groups.names) if name == "log"], dtype=np.int64)
    windows = (
        windows_table(logs, log_rows, aggregate, step_columns["log"])
        if logs.count
        else pa.table({"window": to_arrow([], pa.int64())})
    )
    return RunMetrics(
        run_dir=context.trace.run_dir,
        run=_run_info(context, steps, gens, per_gpu),
        summaries=summaries,
        per_gpu=per_gpu_table(context, per_gpu, groups.names, groups.seconds),
        windows=windows,
        generate_calls=generate_table(gens),
        steps=step_table(steps),
        ranks=rank_table(steps),
        notes=notes + _energy_checks(summaries),
    )


def _run_info(context: Context, steps: Steps, gens: Generations, per_gpu: dict[GpuKey, dict]) -> dict[str, Any]:
    meta = context.trace.meta
    return {
        "name": context.trace.name,
        "status": context.trace.status,
        "command": meta.get("command"),
        "model": meta.get("model"),
        "world_size": meta.get("world_size"),
        "gpus": [
            {"host": key[0], "gpu": key[1], "name": info.name if info else None}
            for key, info in ((key, context.gpu_info.get(key)) for key in per_gpu)
        ],
        "train_steps": steps.count,
        "last_step": int(steps.step[-1]) if steps.count else None,
        "generate_calls": gens.count,
        "log_interval": context.settings.log_interval,
        "power_source": context.settings.power_source,
        "max_gap_s": context.max_gap_s,
        "format_version": meta.get("format_version"),
        "recorder_version": meta.get("recorder_version"),
    }
