"""Every figure and table column efftrace reports, declared once.

A row says what a key is (label, unit), where its value comes from (a source template, filled
with the run's own facts by :mod:`.figures`), how the job's value is made from its GPUs' (and
hosts') values, its TensorBoard tag, and which outputs show it. The console, the JSON and CSV
files, TensorBoard, the report and ``compare`` all read this table; none of them lists figure
keys of its own. Adding a figure is one row here plus its computation.

Order matters and is kept: a window's figures are listed in :data:`WINDOW_FIGURES` order (the
seed's seven first), and table columns in catalog order.
"""

from __future__ import annotations

from dataclasses import dataclass

from efftrace.analyzer.compute.combine import Combine

SEED_PREFIX = "efficientllm/"
EXTRA_PREFIX = "efficientllm/extra/"


@dataclass(frozen=True)
class Entry:
    """One reported quantity: a window figure, a table column, or both."""

    key: str
    label: str
    unit: str
    source: str = ""
    """The figure's source, a ``str.format`` template over the facts :mod:`.figures` gathers."""
    gpus: Combine | None = None
    """How the job's value is made from its GPUs' (on every host); None: not a per-GPU quantity."""
    of: str | None = None
    """The per-GPU column combined, when it is not ``key`` itself (``amu_gib_max`` is the max of ``amu_gib``)."""
    tensorboard: str | None = None
    """Its TensorBoard tag, one point per log window; None: not written."""
    console_format: str | None = None
    """How the console prints the value (the seed's own precision for its seven figures)."""
    gpu_table: tuple[str, str] | None = None
    """(column title, format) in the console's per-GPU table."""
    windows_column: bool = False
    """A column of the per-log-window table (``--windows``, ``Run.windows()``, TensorBoard)."""
    per_gpu_column: bool = False
    """A column of the per-GPU table (``Run.per_gpu()``, the JSON's ``per_gpu``)."""


def _extra(key: str) -> str:
    return EXTRA_PREFIX + key.replace("_gib", "_gb")


_MEAN_OF = "time-weighted mean, mean of {gpus}"
_EVENTS = "{events}"

ENTRIES: tuple[Entry, ...] = (
    # Train-step quantities (from the events), in the per-log-window table's order.
    Entry(
        "loss",
        "Loss",
        "",
        "Trainer log, last logged loss (step {last_logged})",
        tensorboard=_extra("loss"),
        console_format="{:.6f}",
        windows_column=True,
    ),
    Entry(
        "al_seconds",
        "AL (Seconds)",
        "s",
        "mean step latency (latest end - earliest start over ranks), {events}, {timing}",
        tensorboard=SEED_PREFIX + "al_seconds",
        console_format="{:.4f}",
        windows_column=True,
    ),
    Entry(
        "tt_tokens_per_param_per_sec",
        "TT (Tokens/Param/Sec)",
        "tokens/param/s",
        "non-padding tokens summed over ranks and micro-batches {per_param}",
        tensorboard=SEED_PREFIX + "tt_tokens_per_param_per_sec",
        console_format="{:.2e}",
        windows_column=True,
    ),
    Entry(
        "st_samples_per_param_per_sec",
        "ST (Samples/Param/Sec)",
        "samples/param/s",
        "samples summed over ranks {per_param}",
        tensorboard=SEED_PREFIX + "st_samples_per_param_per_sec",
        console_format="{:.2e}",
        windows_column=True,
    ),
    Entry(
        "mfu",
        "MFU (Ratio)",
        "ratio",
        "model FLOPs/s (PaLM: 6N, or 4N + 2N_trainable for adapters, plus attention) / {peak_source}",
        tensorboard=_extra("mfu"),
        windows_column=True,
    ),
    Entry(
        "tokens_per_sec",
        "Tokens/s",
        "tokens/s",
        "tokens / sum of step latencies",
        tensorboard=_extra("tokens_per_sec"),
        windows_column=True,
    ),
    Entry(
        "samples_per_sec",
        "Samples/s",
        "samples/s",
        "samples / sum of step latencies",
        tensorboard=_extra("samples_per_sec"),
        windows_column=True,
    ),
    Entry("tokens", "Tokens", "tokens", windows_column=True),
    Entry("samples", "Samples", "samples", windows_column=True),
    Entry("latency_s_sum", "Sum of step latencies", "s", windows_column=True),
    Entry("end_skew_s", "Rank end skew", "s", windows_column=True),
    Entry(
        "torch_allocated_gib",
        "Torch allocated (GiB)",
        "GiB",
        "torch.cuda.memory_allocated() at step ends, mean over steps and ranks",
        tensorboard=_extra("torch_allocated_gib"),
        windows_column=True,
    ),
    Entry(
        "torch_reserved_gib",
        "Torch reserved (GiB)",
        "GiB",
        "torch.cuda.memory_reserved() at step ends, mean over steps and ranks",
        tensorboard=_extra("torch_reserved_gib"),
        windows_column=True,
    ),
    Entry(
        "torch_peak_gib",
        "Torch peak (GiB)",
        "GiB",
        "torch.cuda.max_memory_allocated(), max over ranks",
        tensorboard=_extra("torch_peak_gib"),
        windows_column=True,
    ),
    # GPU quantities (from the samples), per GPU and combined over the job's GPUs.
    Entry(
        "amu_gib",
        "AMU (GB)",
        "GiB",
        "{memory_source}, " + _MEAN_OF + " (max {amu_gib_max} GiB)",
        gpus="mean",
        tensorboard=SEED_PREFIX + "amu_gb",
        console_format="{:.2f}",
        gpu_table=("AMU GiB", "{:.2f}"),
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry(
        "amu_gib_max",
        "AMU, max over GPUs",
        "GiB",
        gpus="max",
        of="amu_gib",
        tensorboard=_extra("amu_gib_max"),
        windows_column=True,
    ),
    Entry(
        "pcu_ratio",
        "PCU (Ratio)",
        "ratio",
        "{util_source}, " + _MEAN_OF + " (max {pcu_ratio_max})",
        gpus="mean",
        tensorboard=SEED_PREFIX + "pcu_ratio",
        console_format="{:.3f}",
        gpu_table=("PCU", "{:.3f}"),
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry(
        "pcu_ratio_max",
        "PCU, max over GPUs",
        "ratio",
        gpus="max",
        of="pcu_ratio",
        tensorboard=_extra("pcu_ratio_max"),
        windows_column=True,
    ),
    Entry(
        "pcu_sm_ratio",
        "PCU-SM (Ratio)",
        "ratio",
        "{sm_source}, " + _MEAN_OF,
        gpus="mean",
        tensorboard=_extra("pcu_sm_ratio"),
        gpu_table=("PCU-SM", "{:.3f}"),
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry(
        "pcu_tensor_ratio",
        "PCU-tensor (Ratio)",
        "ratio",
        "{tensor_source}, " + _MEAN_OF,
        gpus="mean",
        tensorboard=_extra("pcu_tensor_ratio"),
        gpu_table=("PCU-tensor", "{:.3f}"),
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry(
        "dram_bw_ratio",
        "DRAM bandwidth (Ratio)",
        "ratio",
        "{dram_source}, " + _MEAN_OF,
        gpus="mean",
        tensorboard=_extra("dram_bw_ratio"),
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry("util_memory_ratio", "NVML memory utilisation", "ratio", per_gpu_column=True),
    Entry(
        "aec_watts",
        "AEC (Watts)",
        "W",
        "{power_source}, time-weighted mean, sum of {gpus} (per GPU {aec_watts_per_gpu} W)",
        gpus="sum",
        tensorboard=SEED_PREFIX + "aec_watts",
        console_format="{:.1f}",
        gpu_table=("AEC W", "{:.1f}"),
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry(
        "aec_watts_per_gpu",
        "AEC, mean per GPU",
        "W",
        gpus="mean",
        of="aec_watts",
        tensorboard=_extra("aec_watts_per_gpu"),
        windows_column=True,
    ),
    Entry(
        "energy_j",
        "Energy (J)",
        "J",
        "trapezoid integral of {power_source}, sum of {gpus}",
        gpus="sum",
        tensorboard=_extra("energy_j"),
        gpu_table=("energy J", "{:.0f}"),
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry(
        "energy_counter_j",
        "Energy counter, edges interpolated (J)",
        "J",
        "increase of the {counter_source} over the whole window, its readings (every {counter_every} s) "
        "interpolated to the window's edges; sum of {gpus} (coverage: the share of the window between "
        "its own readings)",
        gpus="sum",
        tensorboard=_extra("energy_counter_j"),
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry(
        "checked_energy_j",
        "Energy, compared span (J)",
        "J",
        "trapezoid integral of {power_source} between the counter's first and last reading inside the window "
        "({checked_seconds} s), sum of {gpus}",
        gpus="sum",
        gpu_table=("span energy J", "{:.0f}"),
        per_gpu_column=True,
    ),
    Entry(
        "checked_counter_j",
        "Counter, compared span (J)",
        "J",
        "increase of the {counter_source} between its first and last reading inside the window "
        "({checked_seconds} s), sum of {gpus}",
        gpus="sum",
        gpu_table=("span counter J", "{:.0f}"),
        per_gpu_column=True,
    ),
    Entry("checked_seconds", "Seconds compared with the counter", "s", gpus="min", per_gpu_column=True),
    Entry(
        "energy_counter_diff",
        "Energy vs counter",
        "ratio",
        gpu_table=("diff %", "{:+.2%}"),
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry("power_buffer_watts", "Driver-buffer power", "W", per_gpu_column=True),
    Entry("power_instant_watts", "Instant power", "W", per_gpu_column=True),
    Entry("power_average_watts", "Averaged power", "W", per_gpu_column=True),
    Entry("sm_clock_mhz", "SM clock", "MHz", gpus="mean", windows_column=True, per_gpu_column=True),
    Entry("temperature_c", "Temperature", "°C", gpus="max", windows_column=True, per_gpu_column=True),
    # The share of the window the clocks were held down, by NVML's clock-event reasons; the job's value
    # is its worst GPU's, since one throttled GPU holds back every rank that waits for it.
    Entry(
        "power_capped_ratio",
        "Clocks held by the power cap",
        "ratio",
        gpus="max",
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry(
        "thermal_slowdown_ratio",
        "Clocks cut by heat or hardware slowdown",
        "ratio",
        gpus="max",
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry(
        "coverage_memory", "Coverage of memory samples", "ratio", gpus="min", windows_column=True, per_gpu_column=True
    ),
    Entry(
        "coverage_util",
        "Coverage of utilisation samples",
        "ratio",
        gpus="min",
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry("coverage_gpm", "Coverage of GPM samples", "ratio", gpus="min", windows_column=True, per_gpu_column=True),
    Entry(
        "coverage_power",
        "Coverage of power samples",
        "ratio",
        gpus="min",
        gpu_table=("coverage", "{:.1%}"),
        windows_column=True,
        per_gpu_column=True,
    ),
    Entry(
        "coverage_counter",
        "Coverage of counter readings",
        "ratio",
        gpus="min",
        windows_column=True,
        per_gpu_column=True,
    ),
    # Figures derived from both, and the train window's latency distribution.
    Entry(
        "energy_per_token_j",
        "Energy/token (J)",
        "J/token",
        "train-window energy / tokens",
        tensorboard=_extra("energy_per_token_j"),
        windows_column=True,
    ),
    Entry(
        "energy_per_sample_j",
        "Energy/sample (J)",
        "J/sample",
        "train-window energy / samples",
    ),
    Entry(
        "energy_counter_diff_pct",
        "Energy vs counter (%)",
        "%",
        "(energy - counter) / counter over the compared span: {checked_energy_j} J against {checked_counter_j} J, "
        "between the counter's first and last reading inside the window ({checked_seconds} s)",
    ),
    Entry("al_p50_seconds", "AL p50 (Seconds)", "s", _EVENTS),
    Entry("al_p90_seconds", "AL p90 (Seconds)", "s", _EVENTS),
    Entry("al_p99_seconds", "AL p99 (Seconds)", "s", _EVENTS),
    Entry("al_max_seconds", "AL max (Seconds)", "s", _EVENTS),
    Entry(
        "rank_end_skew_seconds",
        "Rank end skew (Seconds)",
        "s",
        "mean over steps of (latest - earliest rank end); slowest rank on average: {slowest_rank}",
    ),
    # The inference window's own figures.
    Entry(
        "it_tokens_per_sec",
        "IT (Tokens/Sec)",
        "tokens/s",
        "new tokens (padding excluded) / inference window; {calls}",
    ),
    Entry("it_tokens_per_param_per_sec", "IT (Tokens/Param/Sec)", "tokens/param/s", "{it_per_param}"),
    Entry("generated_tokens", "Generated tokens", "tokens", "{calls}"),
    Entry(
        "energy_per_generated_token_j",
        "Energy/generated token (J)",
        "J/token",
        "inference-window energy / generated tokens",
    ),
)

CATALOG: dict[str, Entry] = {entry.key: entry for entry in ENTRIES}

_GPU_FIGURES = (
    "amu_gib",
    "pcu_ratio",
    "aec_watts",
    "pcu_sm_ratio",
    "pcu_tensor_ratio",
    "dram_bw_ratio",
    "energy_j",
    "energy_counter_j",
    "checked_energy_j",
    "checked_counter_j",
    "energy_counter_diff_pct",
)
SEED_FIGURES = (
    "loss",
    "amu_gib",
    "pcu_ratio",
    "al_seconds",
    "tt_tokens_per_param_per_sec",
    "st_samples_per_param_per_sec",
    "aec_watts",
)
"""The seed's ``[EfficientLLM Metrics]`` block, in its order."""
WINDOW_FIGURES: dict[str, tuple[str, ...]] = {
    "train": (
        *SEED_FIGURES,
        "pcu_sm_ratio",
        "pcu_tensor_ratio",
        "mfu",
        "tokens_per_sec",
        "samples_per_sec",
        "al_p50_seconds",
        "al_p90_seconds",
        "al_p99_seconds",
        "al_max_seconds",
        "rank_end_skew_seconds",
        "energy_j",
        "energy_counter_j",
        "checked_energy_j",
        "checked_counter_j",
        "energy_counter_diff_pct",
        "energy_per_token_j",
        "energy_per_sample_j",
        "torch_allocated_gib",
        "torch_reserved_gib",
        "torch_peak_gib",
        "dram_bw_ratio",
    ),
    "inference": (
        "it_tokens_per_sec",
        "it_tokens_per_param_per_sec",
        "generated_tokens",
        *(key for key in _GPU_FIGURES if key != "dram_bw_ratio"),
        "energy_per_generated_token_j",
    ),
    "job": _GPU_FIGURES,
}
"""Which figures each summary window has, in the order every output lists them."""
IT_TAG = SEED_PREFIX + "it_tokens_per_sec"
"""IT is written per generate() call, not per log window (see the TensorBoard output)."""

TIME_BUCKETS: dict[str, str] = {
    "startup": "start-up",
    "train_step": "train step",
    "between_steps": "between steps",
    "evaluation": "evaluation",
    "checkpoint": "checkpoint",
    "generation": "generation",
    "idle_tail": "idle tail",
}
"""Where the time went (:mod:`efftrace.analyzer.compute.time_buckets`): each bucket's key, in the order a
job passes through them, and its title in every output."""

CARDS = ("al_seconds", "amu_gib", "pcu_ratio", "pcu_tensor_ratio", "aec_watts", "energy_j", "tokens_per_sec", "mfu")
"""The report's summary cards, from the run's headline window (training, else inference); IT last."""
COMPARED: tuple[tuple[str, str], ...] = (
    ("train", "al_seconds"),
    ("train", "tt_tokens_per_param_per_sec"),
    ("train", "st_samples_per_param_per_sec"),
    ("train", "tokens_per_sec"),
    ("train", "samples_per_sec"),
    ("train", "amu_gib"),
    ("train", "torch_peak_gib"),
    ("train", "pcu_ratio"),
    ("train", "pcu_sm_ratio"),
    ("train", "pcu_tensor_ratio"),
    ("train", "mfu"),
    ("train", "aec_watts"),
    ("train", "energy_j"),
    ("train", "energy_per_token_j"),
    ("train", "energy_per_sample_j"),
    ("train", "loss"),
    ("inference", "it_tokens_per_sec"),
    ("inference", "energy_per_generated_token_j"),
)
"""The rows of ``effanalyze compare``, as (window, figure): the EfficientLLM paper's table."""


def where(flag: str) -> tuple[Entry, ...]:
    """The entries with ``flag`` set (``windows_column``, ``per_gpu_column``, ``gpu_table``...), in catalog order."""
    return tuple(entry for entry in ENTRIES if getattr(entry, flag))


def combined() -> tuple[Entry, ...]:
    """The per-GPU quantities the job has a value of, with how it is made from its GPUs'."""
    return tuple(entry for entry in ENTRIES if entry.gpus is not None)
