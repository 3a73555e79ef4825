"""The EfficientLLM metrics of DESIGN.md as functions of a loaded trace: one :class:`RunMetrics`.

Windows are built from the events (train, log windows, inference, job), every GPU signal is
integrated over all of them in one streamed pass (:mod:`efftrace.analyzer.compute.signals`), and the figures
are ratios of those integrals and of the step sums. Nothing here prints or writes.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

from efftrace.analyzer.compute.catalog import combined
from efftrace.analyzer.compute.clocks import aligned_events, clock_notes, estimate
from efftrace.analyzer.compute.combine import Combine, combine_gpus
from efftrace.analyzer.compute.completeness import missing_pieces, unfinished
from efftrace.analyzer.compute.counter_spans import (
    CounterReadings,
    CounterWindows,
    counter_windows,
    partition_counter_readings,
)
from efftrace.analyzer.compute.devices import device_notes, one_per_owner, power_owners
from efftrace.analyzer.compute.diagnosis import findings
from efftrace.analyzer.compute.engine import Engine, LocalEngine
from efftrace.analyzer.compute.figures import Context, build_result
from efftrace.analyzer.compute.peaks import flops_per_token, peak_bf16_tflops
from efftrace.analyzer.compute.placement import job_gpus, rank_gpus, rank_rows, unused_note
from efftrace.analyzer.compute.profiled_steps import ProfileUnavailable, profiled_steps
from efftrace.analyzer.compute.settings import AnalysisSettings, PowerSource, WindowGroups, window_groups
from efftrace.analyzer.compute.signals import Edges, GpuKey, SignalIntegrals, integrate_signals, used_partitions
from efftrace.analyzer.compute.step_timing import step_timing
from efftrace.analyzer.compute.steps import Generations, Steps, generations, log_windows, train_steps
from efftrace.analyzer.compute.time_buckets import BUCKETS, Buckets, time_buckets
from efftrace.analyzer.errors import TraceError
from efftrace.analyzer.read.loader import RecordedGpu, Trace
from efftrace.analyzer.read.locations import is_local
from efftrace.analyzer.read.partitions import Partition, plan_partitions
from efftrace.analyzer.result import RunMetrics
from efftrace.recorder.format.units import GIB, NS_PER_S

_POWER_SIGNALS = {"buffer": "power_buffer", "instant": "power_instant", "average": "power_average"}


class _GpuTotals:
    """Per GPU and window group: a signal's integral and covered seconds, summed over the group's spans.

    The integrals hold the groups' spans, then, for the signals checked against the energy counter,
    the same spans narrowed to the readings of the GPU's host inside them
    (:mod:`efftrace.analyzer.compute.counter_spans`).
    """

    def __init__(self, integrals: SignalIntegrals, groups: WindowGroups, counter_hosts: list[str]) -> None:
        self.integrals = integrals
        self.groups = groups
        self.counter_hosts = counter_hosts

    def totals(self, gpu: GpuKey, signal: str, narrowed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Over the groups' spans, or (``narrowed``) between the counter readings of the GPU's host inside them."""
        size = len(self.groups.names)
        spans = self.groups.starts_ns.size
        if not self.integrals.has(gpu, signal) or (narrowed and gpu[0] not in self.counter_hosts):
            return np.zeros(size), np.zeros(size)
        part = 1 if narrowed else 0  # the checked signals' integrals hold their own host's narrowed spans second
        taken = slice(part * spans, (part + 1) * spans)
        first = self.groups.first_span
        return (
            np.add.reduceat(self.integrals.integral[gpu][signal][taken], first),
            np.add.reduceat(self.integrals.covered[gpu][signal][taken], first),
        )

    def mean(self, gpu: GpuKey, signal: str, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Time-weighted mean over the covered time, and coverage (covered / window length)."""
        integral, covered = self.totals(gpu, signal)
        mean = np.divide(integral, covered, out=np.full(covered.size, np.nan), where=covered > 0) * scale
        return mean, self.coverage(covered)

    def coverage(self, covered: np.ndarray) -> np.ndarray:
        """Covered seconds as a share of each window group's length."""
        seconds = self.groups.seconds
        return np.minimum(np.divide(covered, seconds, out=np.zeros(covered.size), where=seconds > 0), 1.0)


def _power_signal(integrals: SignalIntegrals, gpu: GpuKey, source: PowerSource) -> str:
    if source != "auto":
        return _POWER_SIGNALS[source]
    for name in ("power_buffer", "power_instant", "power_average"):
        if integrals.has(gpu, name):
            return name
    return "power_instant"


def _gpu_columns(totals: _GpuTotals, settings: AnalysisSettings) -> dict[GpuKey, dict]:
    """Per GPU: every per-window quantity (arrays over window groups)."""
    per_gpu: dict[GpuKey, dict[str, Any]] = {}
    for gpu in totals.integrals.gpus:
        power = _power_signal(totals.integrals, gpu, settings.power_source)
        columns: dict[str, Any] = {"power_signal": power}
        columns["amu_gib"], columns["coverage_memory"] = totals.mean(gpu, "memory", 1 / GIB)
        columns["pcu_ratio"], columns["coverage_util"] = totals.mean(gpu, "util_gpu", 0.01)
        columns["util_memory_ratio"], _ = totals.mean(gpu, "util_memory", 0.01)
        columns["pcu_sm_ratio"], columns["coverage_gpm"] = totals.mean(gpu, "gpm_sm", 0.01)
        columns["pcu_tensor_ratio"], _ = totals.mean(gpu, "gpm_tensor", 0.01)
        columns["dram_bw_ratio"], _ = totals.mean(gpu, "gpm_dram", 0.01)
        columns["sm_clock_mhz"], _ = totals.mean(gpu, "sm_clock")
        columns["temperature_c"], _ = totals.mean(gpu, "temperature")
        columns["power_capped_ratio"], _ = totals.mean(gpu, "power_capped")
        columns["thermal_slowdown_ratio"], _ = totals.mean(gpu, "thermal_slowdown")
        for name in ("power_buffer", "power_instant", "power_average"):
            columns[f"{name}_watts"], _ = totals.mean(gpu, name, 1e-3)
        columns["aec_watts"], columns["coverage_power"] = totals.mean(gpu, power, 1e-3)
        energy, _ = totals.totals(gpu, power)
        counter, counter_covered = totals.totals(gpu, "energy_counter")
        columns["energy_j"] = np.where(columns["coverage_power"] > 0, energy / 1e3, np.nan)
        columns["energy_counter_j"] = np.where(counter_covered > 0, counter / 1e3, np.nan)
        columns["coverage_counter"] = totals.coverage(counter_covered)
        checked_energy, checked_seconds = totals.totals(gpu, power, narrowed=True)
        checked_counter, _ = totals.totals(gpu, "energy_counter", narrowed=True)
        columns["checked_energy_j"] = checked_energy / 1e3
        columns["checked_counter_j"] = checked_counter / 1e3
        columns["checked_seconds"] = checked_seconds
        columns["energy_counter_diff"] = _relative_difference(checked_energy, checked_counter)
        per_gpu[gpu] = columns
    return per_gpu


def _relative_difference(value: np.ndarray, reference: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(reference > 0, (value - reference) / reference, np.nan)


def _across_gpus(per_gpu: dict[GpuKey, dict], gpus: list[GpuKey], key: str, how: Combine, size: int) -> np.ndarray:
    if not gpus:
        return np.full(size, np.nan)
    return combine_gpus(np.vstack([per_gpu[gpu][key] for gpu in gpus]), how)


def _aggregate(per_gpu: dict[GpuKey, dict], owners: dict[GpuKey, str], size: int) -> dict[str, np.ndarray]:
    """The job's value of every per-GPU quantity per window, combined as the catalog says (memory and
    utilisation averaged over GPUs, power and energy summed once per physical GPU, coverage the least
    covered GPU's)."""
    every = list(per_gpu)
    summed = one_per_owner(every, owners)  # sums are of power and energy: a MIG parent's counts once
    columns = {}
    for entry in combined():
        how = entry.gpus or "mean"
        if not per_gpu and entry.key.startswith("coverage_"):
            columns[entry.key] = np.zeros(size)  # no GPU sampled: nothing of the window is covered
        else:
            gpus = summed if how == "sum" else every
            columns[entry.key] = _across_gpus(per_gpu, gpus, entry.of or entry.key, how, size)
    columns["energy_counter_diff"] = _relative_difference(columns["checked_energy_j"], columns["checked_counter_j"])
    return columns


def _step_columns(steps: Steps, first: np.ndarray, model: dict[str, Any], peak_flops: float | None) -> dict:
    """Per group of consecutive steps starting at ``first``: AL, TT, ST, MFU, loss, allocator memory."""
    latency = steps.latency_s
    count = np.diff(np.concatenate((first, [steps.count])))
    latency_sum = np.add.reduceat(latency, first)
    params = float(model.get("total_params") or 0) or np.nan

    def per_known(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        known = ~np.isnan(values)
        total = np.add.reduceat(np.where(known, values, 0.0), first)
        seconds = np.add.reduceat(np.where(known, latency, 0.0), first)
        return np.where(seconds > 0, total, np.nan), seconds

    tokens, token_seconds = per_known(steps.tokens)
    samples, sample_seconds = per_known(steps.samples)
    with np.errstate(divide="ignore", invalid="ignore"):
        tokens_per_sec = tokens / token_seconds
        samples_per_sec = samples / sample_seconds
        logged = np.where(~np.isnan(steps.loss), np.arange(steps.count), -1)
        last_logged = np.maximum.reduceat(logged, first)
        columns = {
            "steps": count,
            "first_step": steps.step[first],
            "last_step": steps.step[np.concatenate((first[1:], [steps.count])) - 1],
            "latency_s_sum": latency_sum,
            "al_seconds": latency_sum / count,
            "tokens": tokens,
            "samples": samples,
            "tokens_per_sec": tokens_per_sec,
            "samples_per_sec": samples_per_sec,
            "tt_tokens_per_param_per_sec": tokens_per_sec / params,
            "st_samples_per_param_per_sec": samples_per_sec / params,
            "loss": np.where(last_logged >= 0, steps.loss[np.maximum(last_logged, 0)], np.nan),
            "end_skew_s": np.add.reduceat(steps.end_skew_s, first) / count,
            "torch_allocated_gib": np.add.reduceat(np.nan_to_num(steps.allocated_bytes), first) / count / GIB,
            "torch_reserved_gib": np.add.reduceat(np.nan_to_num(steps.reserved_bytes), first) / count / GIB,
            "torch_peak_gib": np.fmax.reduceat(steps.peak_bytes, first) / GIB,
        }
        if np.isnan(steps.allocated_bytes).all():
            for key in ("torch_allocated_gib", "torch_reserved_gib"):
                columns[key] = np.full(first.size, np.nan)
        sequence = tokens / samples
        per_token = flops_per_token(
            int(model.get("total_params") or 0),
            model.get("trainable_params"),
            model.get("num_hidden_layers"),
            model.get("hidden_size"),
            np.nan_to_num(sequence),
        )
        columns["mfu"] = (
            tokens_per_sec * per_token / peak_flops if peak_flops and not np.isnan(params) else tokens * np.nan
        )
    return columns


def _job_span(trace: Trace, steps: Steps, gens: Generations) -> tuple[int, int | None]:
    """The job window's start, and its end where the manifest was finalised (None: not known yet)."""
    meta = trace.meta
    times = [int(meta["started_ns"])] if isinstance(meta.get("started_ns"), int) else []
    if steps.count:
        times.append(int(steps.start_ns.min()))
    if gens.count:
        times.append(int(gens.start_ns.min()))
    ended = meta.get("ended_ns")
    return min(times), ended if isinstance(ended, int) else None


def _narrowed(
    found: list[CounterReadings], partitions: list[Partition], groups: WindowGroups, origin_ns: int
) -> CounterWindows:
    """The groups' spans narrowed to the counter's readings, from the partitions' (those a damaged
    batch did not put after the end of their file's reading)."""
    used = used_partitions(list(zip(partitions, found, strict=True)))
    return counter_windows([part for _, part in used], groups.starts_ns, groups.ends_ns, origin_ns)


def analyze(trace: Trace, settings: AnalysisSettings | None = None, engine: Engine | None = None) -> RunMetrics:
    """Compute every figure of the run; raises :class:`TraceError` when it has nothing to measure.

    ``engine`` runs the work on the samples, partition by partition: in this process by default,
    or on a cluster (:mod:`efftrace.analyzer.cluster`), with the same figures.
    """
    settings = settings or AnalysisSettings.from_env()
    engine = engine or LocalEngine(trace.progress)
    # With several hosts, the events come first: their step ends give each host's clock offset, which
    # every sample read afterwards is corrected by where it is large enough (efftrace.analyzer.compute.clocks)
    events = trace.events()
    offsets = estimate(events) if len({stream.host for stream in trace.event_files}) > 1 else []
    trace.clock_offsets_ns = {offset.host: round(offset.offset_ns) for offset in offsets if offset.corrected}
    events = aligned_events(events, offsets)
    steps = train_steps(events)
    gens = generations(events)
    if steps.count == 0 and gens.count == 0:
        where = trace.event_files[0].path if trace.event_files else trace.run_dir
        raise TraceError(where, "no train steps or generate calls were recorded; nothing to measure")
    logs = log_windows(steps, settings.log_interval)
    job_start, job_end = _job_span(trace, steps, gens)
    groups = window_groups((job_start, job_end), steps, logs, gens)

    max_gap, counter_gap = settings.gaps_s(trace.meta.get("sampling") or {})
    origin = job_start
    partitions = plan_partitions(trace, engine.partition_bytes)
    sampled = [partition for partition in partitions if partition.kind == "gpu"]
    # the counter's readings are found (only two columns decoded) beside the integration of the signals
    # not compared with it; the compared ones wait for them (efftrace.analyzer.compute.counter_spans)
    narrowed = engine.map_later(
        partition_counter_readings,
        sampled,
        groups.starts_ns,
        groups.ends_ns,
        then=lambda found: _narrowed(found, sampled, groups, origin),
    )
    starts_s, ends_s = groups.seconds_from(origin)
    edges = Edges(starts_s, ends_s, max_gap, counter_gap)
    # where each rank's time went needs only the events: worked out here while the samples are integrated
    # (on a cluster the driver would otherwise wait idle for its workers)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="efftrace-buckets") as pool:
        buckets_later = pool.submit(_buckets, events, groups)
        integrals, reading_notes = integrate_signals(partitions, engine, edges, narrowed, origin)
        buckets = buckets_later.result()
    for note in reading_notes:
        trace.note(note)
    counter_hosts = narrowed.result().hosts
    if job_end is None:
        last = integrals.last_sample_s
        last_event = max([int(a.max()) for a in (steps.end_ns, gens.end_ns) if a.size] or [origin])
        groups.close_job(max(origin + round((last or 0.0) * NS_PER_S), last_event))

    totals = _GpuTotals(integrals, groups, counter_hosts)
    every_gpu = _gpu_columns(totals, settings)
    placed = rank_gpus(trace)
    theirs, unused = job_gpus(placed, list(every_gpu))
    per_gpu = {gpu: every_gpu[gpu] for gpu in theirs}  # the job's: what every figure is made of
    recorded = {(gpu.host, gpu.index): gpu for gpu in trace.gpus}
    owners = power_owners(recorded, list(every_gpu))
    for gpu, columns in every_gpu.items():
        columns["shared_power"] = bool(gpu in recorded and recorded[gpu].parent_uuid)
        columns["energy_scope"] = recorded[gpu].energy_scope if gpu in recorded else "gpu"
    aggregate = _aggregate(per_gpu, owners, len(groups.names))
    model = trace.meta.get("model") or {}
    names = {key: gpu.name for key, gpu in recorded.items()}
    peak, peak_source = _peak_flops(names, list(per_gpu), settings)
    step_columns = {}
    if steps.count:
        step_columns["train"] = _step_columns(steps, np.zeros(1, dtype=np.int64), model, peak)
        step_columns["log"] = _step_columns(steps, logs.first, model, peak)
    notes = list(trace.notes)
    notes += unused_note(unused, names)
    without_counter = [gpu for gpu in per_gpu if not integrals.has(gpu, "energy_counter")]
    notes += device_notes(recorded, list(per_gpu), without_counter)
    if integrals.dropped:
        notes.append(f"{integrals.dropped} samples went back in time (a clock step?) and were left out")
    if steps.backwards:
        notes.append(
            f"{steps.backwards} train_step events end before they start (the wall clock stepped back?); left out"
        )
    if integrals.invalid:
        notes.append(f"{integrals.invalid} readings were NaN or negative, which no GPU reports; read as missing")
    if integrals.counter_resets:
        notes.append(
            f"the energy counter went back {integrals.counter_resets} times (a driver reload?); "
            "those intervals add nothing to its increase"
        )
    notes += clock_notes(offsets, float(np.median(steps.latency_s)) if steps.count else None)
    if steps.repeated:
        notes.append(f"{steps.repeated} (rank, step) pairs were recorded twice (several Trainer.train() calls?)")
    context = Context(
        trace=trace,
        settings=settings,
        max_gap_s=max_gap,
        peak_flops=peak,
        peak_source=peak_source,
        gpu_info=recorded,
        unfinished=unfinished(trace, steps, logs, job_start, int(groups.ends_ns[0])),
        missing=missing_pieces(trace, set(every_gpu)),
        clock_offsets=offsets,
        unused_gpus={gpu: every_gpu[gpu] for gpu in unused},
        ranks=rank_rows(trace, placed, [int(rank) for rank in steps.rank_ids]),
    )
    result = build_result(context, steps, logs, gens, groups, per_gpu, aggregate, step_columns, notes)
    return _with_diagnosis(result, trace, events, groups, buckets, list(recorded.values()))


def _with_diagnosis(
    result: RunMetrics, trace: Trace, events: pa.Table, groups: WindowGroups, buckets: Buckets, gpus: list[RecordedGpu]
) -> RunMetrics:
    """The result with where the time went, the step timing, the findings and the profiled steps."""
    clocks = [gpu.max_sm_clock_mhz for gpu in gpus if gpu.max_sm_clock_mhz]
    profiled = _step_range((trace.meta.get("sampling") or {}).get("profile_steps"))
    found = findings(result.windows, _between_shares(buckets), result.alerts, min(clocks) if clocks else None, profiled)
    train = groups.index("train")
    timing = {}
    if train is not None:
        span = groups.first_span[train]
        timing = step_timing(events, int(groups.starts_ns[span]), int(groups.ends_ns[span]))
    diagnosis = {
        "time_buckets": buckets.as_dict(),
        "step_timing": timing,
        "findings": [finding.as_dict() for finding in found],
    }
    profile = _profiled(trace, profiled)
    if isinstance(profile, str):
        result = dataclasses.replace(result, notes=[*result.notes, profile])
    elif profile:
        diagnosis["profile"] = profile
    return dataclasses.replace(result, diagnosis=diagnosis)


def _step_range(given: Any) -> tuple[int, int] | None:
    """``meta.json``'s ``sampling.profile_steps``, [first, last], as a pair; None if absent or malformed."""
    if isinstance(given, list) and len(given) == 2 and all(type(step) is int for step in given):
        return given[0], given[1]
    return None


def _profiled(trace: Trace, steps: tuple[int, int] | None) -> dict[str, Any] | str | None:
    """The profiled steps' kernels and idle time (``effrec --profile-steps``), or why they cannot be read."""
    files = trace.profile_files
    if not files:
        return None
    if not is_local(trace.run_dir):
        return "the run's profiler traces are read only from a local run directory; copy it here to report them"
    try:
        return profiled_steps(files, steps)
    except ProfileUnavailable as error:
        return str(error)


def _between_shares(buckets: Buckets) -> np.ndarray:
    """Per log window: the share of it its ranks spent between steps, on average over ranks (NaN
    where no rank has events)."""
    logs = buckets.log_windows
    seconds = buckets.window_seconds[logs]
    if not buckets.ranks:
        return np.full(seconds.size, np.nan)
    between = buckets.seconds[logs, :, BUCKETS.index("between_steps")].mean(axis=1)
    return np.divide(between, seconds, out=np.full(seconds.size, np.nan), where=seconds > 0)


def _buckets(events: pa.Table, groups: WindowGroups) -> Buckets:
    """Where each rank's time went over the job, the train window and each log window."""
    names = np.array(groups.names, dtype=object)
    first = groups.first_span
    chosen = np.flatnonzero(np.isin(names, ["job", "train"]))
    logs = np.flatnonzero(names == "log")
    order = np.concatenate((chosen, logs))
    edges = np.column_stack((groups.starts_ns[first[order]], groups.ends_ns[first[order]]))
    return time_buckets(events, [str(name) for name in names[chosen]], edges)


def _peak_flops(names: dict[GpuKey, str], gpus: list[GpuKey], settings: AnalysisSettings) -> tuple[float | None, str]:
    """Peak dense bf16 FLOP/s of all the job's GPUs together (``names``: each GPU's NVML name), and
    where it came from."""
    if not gpus:
        return None, "no GPU sampled"
    if settings.peak_tflops:
        return settings.peak_tflops * 1e12 * len(gpus), f"--peak-tflops {settings.peak_tflops:g} x {len(gpus)} GPU"
    peaks = [peak_bf16_tflops(names.get(gpu, "")) for gpu in gpus]
    if any(peak is None for peak in peaks):
        unknown = sorted({names.get(gpu, "unknown GPU") for gpu, peak in zip(gpus, peaks, strict=True) if peak is None})
        return None, f"no peak known for {', '.join(unknown)} (give --peak-tflops)"
    described = ", ".join(sorted({f"{names[gpu]} {peak:g} TFLOP/s" for gpu, peak in zip(gpus, peaks, strict=True)}))
    return sum(peaks) * 1e12, f"dense bf16 peak: {described}, x {len(gpus)} GPU"
