"""Naming the computed numbers: figures with units, sources and coverage, and the result tables.

:mod:`efftrace.analyzer.compute.metrics` computes arrays over window groups; this module turns them into the
:class:`~efftrace.analyzer.result.RunMetrics` that every output formats, and is the only place that
knows the seed's labels and how each figure's source is described.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from efftrace.analyzer.compute.alerts import GpuLimits, limits_of, run_alerts
from efftrace.analyzer.compute.catalog import CATALOG, WINDOW_FIGURES, where
from efftrace.analyzer.compute.clocks import ClockOffset
from efftrace.analyzer.compute.settings import AnalysisSettings, WindowGroups
from efftrace.analyzer.compute.signals import SIGNAL_BY_NAME, GpuKey
from efftrace.analyzer.compute.steps import Generations, LogWindows, Steps
from efftrace.analyzer.read.loader import RecordedGpu, Trace
from efftrace.analyzer.result import ENERGY_CHECK_TOLERANCE, Figure, RunMetrics, WindowSummary
from efftrace.recorder.format import schema
from efftrace.recorder.format.columns import from_numpy, to_arrow


@dataclass(frozen=True)
class Context:
    """What naming a figure needs beyond the numbers."""

    trace: Trace
    settings: AnalysisSettings
    max_gap_s: float
    peak_flops: float | None
    peak_source: str
    gpu_info: dict[GpuKey, RecordedGpu]
    unfinished: dict[str, Any] | None = None  # what an unfinished run's figures cover (compute.completeness)
    missing: tuple[list[str], list[dict[str, Any]]] = ([], [])  # what the files lack (compute.completeness)
    clock_offsets: list[ClockOffset] = field(default_factory=list)  # hosts' clocks (compute.clocks)
    unused_gpus: dict[GpuKey, dict] = field(default_factory=dict)  # sampled, used by no rank (compute.placement)
    ranks: list[dict[str, Any]] = field(default_factory=list)  # each rank's host and GPU (compute.placement)

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
    if any(columns.get("shared_power") for columns in per_gpu.values()):
        described += " [MIG: the whole GPU's power, shared by its instances, counted once per GPU]"
    return described


def _counter_source(per_gpu: dict[GpuKey, dict]) -> str:
    described = SIGNAL_BY_NAME["energy_counter"].source
    if any(columns.get("energy_scope") == "module" for columns in per_gpu.values()):
        described += " [module scope: GPU, CPU and memory]"
    return described


COUNTER_INTERVAL_UNRECORDED_S = 1.0
"""The energy counter's cadence in traces whose manifest does not record it (effrec read it every second then)."""


def _named(key: str, value: float | None, coverage: float | None = None, **facts: Any) -> Figure:
    """A catalog entry's figure: its label and unit, and its source template filled with ``facts``."""
    entry = CATALOG[key]
    return Figure(key, entry.label, value, entry.unit, entry.source.format(**facts), coverage)


def _in_order(window: str, figures: dict[str, Figure]) -> dict[str, Figure]:
    return {key: figures[key] for key in WINDOW_FIGURES[window]}


def gpu_figures(
    aggregate: dict[str, np.ndarray], at: int, per_gpu: dict[GpuKey, dict], seconds: float, counter_every_s: float
) -> dict[str, Figure]:
    """The figures every window has: memory, utilisation, power and energy of the job's GPUs.

    The energy counter is read every ``counter_every_s``; its whole-window increase interpolates
    its readings to the window's edges, so its coverage is the share of the window between its own
    readings, and the cross-check compares both energies over that span only.
    """
    row = {key: _number(values[at]) for key, values in aggregate.items()}
    spanned = min(row["checked_seconds"] / seconds, 1.0) if row["checked_seconds"] and seconds > 0 else 0.0
    facts = {
        "gpus": _gpu_count(per_gpu),
        "power_source": _power_source(per_gpu),
        "memory_source": SIGNAL_BY_NAME["memory"].source,
        "util_source": SIGNAL_BY_NAME["util_gpu"].source,
        "sm_source": SIGNAL_BY_NAME["gpm_sm"].source,
        "tensor_source": SIGNAL_BY_NAME["gpm_tensor"].source,
        "dram_source": SIGNAL_BY_NAME["gpm_dram"].source,
        "counter_source": _counter_source(per_gpu),
        "counter_every": f"{counter_every_s:g}",
        **{key: _fmt(row[key]) for key in ("amu_gib_max", "pcu_ratio_max", "aec_watts_per_gpu", "checked_seconds")},
        **{key: "n/a" if row[key] is None else f"{row[key]:,.1f}" for key in ("checked_energy_j", "checked_counter_j")},
    }
    coverage = {
        "amu_gib": row["coverage_memory"],
        "pcu_ratio": row["coverage_util"],
        "aec_watts": row["coverage_power"],
        "pcu_sm_ratio": row["coverage_gpm"],
        "pcu_tensor_ratio": row["coverage_gpm"],
        "dram_bw_ratio": row["coverage_gpm"],
        "energy_j": row["coverage_power"],
        "energy_counter_j": spanned if row["coverage_counter"] else 0.0,
        "checked_energy_j": spanned,
        "checked_counter_j": spanned,
    }
    figures = {key: _named(key, row[key], covered, **facts) for key, covered in coverage.items()}
    figures["energy_counter_diff_pct"] = _named(
        "energy_counter_diff_pct", _percent(row["energy_counter_diff"]), None, **facts
    )
    return _in_order("job", figures)


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
    facts = {
        "events": f"train_step events of {ranks} rank{'s' if ranks != 1 else ''}, {steps.count} steps",
        "timing": _timing(context, steps),
        "per_param": f"/ ({params:,} params x sum of step latencies)" if params else "(parameter count unknown)",
        "slowest_rank": int(steps.rank_ids[np.argmax(steps.rank_mean_duration_s)]) if ranks else None,
        "last_logged": _last_logged(steps),
        "peak_source": context.peak_source,
    }
    energy, tokens, samples = gpu["energy_j"].value, step_row["tokens"], step_row["samples"]
    values = {
        key: step_row[key]
        for key in (
            "loss",
            "al_seconds",
            "tt_tokens_per_param_per_sec",
            "st_samples_per_param_per_sec",
            "mfu",
            "tokens_per_sec",
            "samples_per_sec",
            "torch_allocated_gib",
            "torch_reserved_gib",
            "torch_peak_gib",
        )
    }
    values["rank_end_skew_seconds"] = step_row["end_skew_s"]
    values["energy_per_token_j"] = _ratio(energy, tokens)
    values["energy_per_sample_j"] = _ratio(energy, samples)
    for percentile in (50, 90, 99):
        values[f"al_p{percentile}_seconds"] = _number(np.percentile(latency, percentile))
    values["al_max_seconds"] = _number(latency.max())
    figures = {key: _named(key, value, **facts) for key, value in values.items()}
    return _in_order("train", {**gpu, **figures})


def _timing(context: Context, steps: Steps) -> str:
    """Whose clock the step times are on, as the events say (not as the settings asked)."""
    if not (context.trace.meta.get("sampling") or {}).get("cuda_sync", True):
        return "times on the host's clock (--no-sync)"
    if steps.gpu_timed == steps.events:
        return "times as the GPU reached them"
    if steps.gpu_timed == 0:
        return "times on the host's clock (no step was timed on a GPU)"
    timed = f"{steps.gpu_timed} of {steps.events} step events"
    return f"times as the GPU reached them for {timed}, the host's clock for the rest"


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
    facts = {
        "calls": f"{gens.count} generate() calls, {seconds:.3f} s of inference (their union)",
        "it_per_param": f"IT / {params:,} params" if params else "parameter count unknown",
    }
    values = {
        "it_tokens_per_sec": throughput,
        "it_tokens_per_param_per_sec": _ratio(throughput, params),
        "generated_tokens": generated,
        "energy_per_generated_token_j": _ratio(gpu["energy_j"].value, generated),
    }
    figures = {key: _named(key, value, **facts) for key, value in values.items()}
    return _in_order("inference", {**gpu, **figures})


def _column(values: np.ndarray) -> pa.Array:
    """A float column with NaN stored as null (unknown), so Parquet/CSV readers see a gap, not a number."""
    values = np.asarray(values, dtype=np.float64)
    return from_numpy(values, pa.float64(), mask=np.isnan(values))


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
    derived = {"energy_per_token_j": aggregate["energy_j"][log_rows] / step_columns["tokens"]}
    for entry in where("windows_column"):
        if entry.key in step_columns:
            columns[entry.key] = _column(step_columns[entry.key])
        elif entry.key in aggregate:
            columns[entry.key] = _column(aggregate[entry.key][log_rows])
        else:
            columns[entry.key] = _column(derived[entry.key])
    return pa.table(columns)


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
        "job_gpu": from_numpy(np.array([key not in context.unused_gpus for _ in rows for key in keys], dtype=bool)),
    }
    for entry in where("per_gpu_column"):
        values = np.array([per_gpu[key][entry.key][at] for at in rows for key in keys], dtype=np.float64)
        columns[entry.key] = _column(values)
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


def rank_table(context: Context, steps: Steps, per_gpu: dict[GpuKey, dict], train_at: int | None) -> pa.Table:
    """Each rank: its own mean step duration (the per-rank skew), the host and GPU it trained on, and
    that GPU's train-window energy (per step too) and memory, joined by the device's UUID."""
    rows = context.ranks or [{"rank": int(rank)} for rank in steps.rank_ids]
    gpus = [(row.get("host"), row.get("gpu")) for row in rows]

    def of_gpu(key: str, scale: float = 1.0) -> pa.Array:
        values = [
            per_gpu[gpu][key][train_at] * scale if train_at is not None and gpu in per_gpu else np.nan for gpu in gpus
        ]
        return _column(np.array(values, dtype=np.float64))

    return pa.table(
        {
            "rank": from_numpy(steps.rank_ids.astype(np.int64)),
            "mean_step_s": from_numpy(steps.rank_mean_duration_s.astype(np.float64)),
            "host": to_arrow([row.get("host") for row in rows], pa.string()),
            "gpu": to_arrow([row.get("gpu") for row in rows], pa.int64()),
            "device_uuid": to_arrow([row.get("device_uuid") for row in rows], pa.string()),
            "cuda_visible_devices": to_arrow([row.get("cuda_visible_devices") for row in rows], pa.string()),
            "gpu_energy_j": of_gpu("energy_j"),
            "gpu_energy_per_step_j": of_gpu("energy_j", 1.0 / max(steps.count, 1)),
            "gpu_amu_gib": of_gpu("amu_gib"),
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
    """A note for each window whose power samples and energy counter disagree, over the span compared."""
    notes = []
    for summary in summaries.values():
        difference = summary.figures["energy_counter_diff_pct"].value
        power, counter = summary.figures["checked_energy_j"], summary.figures["checked_counter_j"]
        covered = (summary.figures["energy_j"].coverage or 0) >= 0.99
        if difference is not None and covered and abs(difference) > 100 * ENERGY_CHECK_TOLERANCE:
            notes.append(
                f"{summary.name} window: energy from power samples ({power.value:.1f} J) differs from the "
                f"energy counter ({counter.value:.1f} J) over the span between its readings by "
                f"{difference:+.2f} % (more than {100 * ENERGY_CHECK_TOLERANCE:g} %)"
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
        sampling = context.trace.meta.get("sampling") or {}
        counter_every = float(sampling.get("energy_interval_s") or COUNTER_INTERVAL_UNRECORDED_S)
        gpu = gpu_figures(aggregate, at, per_gpu, float(groups.seconds[at]), counter_every)
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
        run={**_run_info(context, steps, gens, per_gpu), "per_host": _per_host(context, per_gpu, groups)},
        summaries=summaries,
        per_gpu=per_gpu_table(context, {**per_gpu, **context.unused_gpus}, groups.names, groups.seconds),
        windows=windows,
        generate_calls=generate_table(gens),
        steps=step_table(steps),
        ranks=rank_table(context, steps, per_gpu, groups.index("train")),
        notes=notes + _energy_checks(summaries),
        alerts=[alert.as_dict() for alert in run_alerts(windows, _job_limits(context, list(per_gpu)))],
    )


def _job_limits(context: Context, gpus: list[GpuKey]) -> GpuLimits:
    return limits_of([context.gpu_info[gpu] for gpu in gpus if gpu in context.gpu_info])


def _per_host(context: Context, per_gpu: dict[GpuKey, dict], groups: WindowGroups) -> list[dict[str, Any]]:
    """One row per host of the run: its status, the job's GPUs and ranks on it, their summed power and
    energy over the headline window (training, else inference, else the job), and its clock offset."""
    at = next(groups.index(name) for name in ("train", "inference", "job") if groups.index(name) is not None)
    offsets = {offset.host: offset for offset in context.clock_offsets}
    reference = context.clock_offsets[0].reference if context.clock_offsets else None
    rows = []
    for host in context.trace.meta.get("hosts") or []:
        tag = schema.host_tag(str(host.get("hostname") or ""))
        gpus = [gpu for gpu in per_gpu if gpu[0] == tag]
        known = [per_gpu[gpu] for gpu in gpus]
        offset = offsets.get(tag)
        rows.append(
            {
                "host": tag,
                "status": host.get("status") or context.trace.status,
                "gpus": len(gpus),
                "ranks": sum(1 for rank in context.ranks if rank.get("host") == tag),
                "window": groups.names[at],
                "aec_watts": _number(np.nansum([columns["aec_watts"][at] for columns in known])) if known else None,
                "energy_j": _number(np.nansum([columns["energy_j"][at] for columns in known])) if known else None,
                "clock_offset_ms": None if offset is None else offset.offset_ns / 1e6,
                "clock_corrected": None if offset is None else offset.corrected,
                "clock_reference": tag == reference,
            }
        )
    return rows


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
        "gpus_unused": [
            {"host": key[0], "gpu": key[1], "name": info.name if info else None}
            for key, info in ((key, context.gpu_info.get(key)) for key in context.unused_gpus)
        ],
        "train_steps": steps.count,
        "last_step": int(steps.step[-1]) if steps.count else None,
        "first_step": int(steps.step[0]) if steps.count else None,
        "generate_calls": gens.count,
        "log_interval": context.settings.log_interval,
        "power_source": context.settings.power_source,
        "max_gap_s": context.max_gap_s,
        "format_version": meta.get("format_version"),
        "recorder_version": meta.get("recorder_version"),
        "unfinished": context.unfinished,
        "missing": context.missing[0],
        "gpus_missing": context.missing[1],
        "clocks": [
            {
                "host": offset.host,
                "reference": offset.reference,
                "offset_ms": offset.offset_ns / 1e6,
                "uncertainty_ms": offset.uncertainty_ns / 1e6,
                "steps": offset.steps,
                "corrected": offset.corrected,
            }
            for offset in context.clock_offsets
        ],
    }
