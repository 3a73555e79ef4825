"""Trace format v1: the one contract between `effrec` (writes) and `effanalyze` (reads).

A run directory holds:

* ``meta.json`` — the run manifest (:data:`META_FILE`), written when recording starts and
  finalised when it ends; ``status`` stays ``running`` if the recorder itself was killed.
* ``gpu-<host>.arrow`` — one row per GPU per poll of NVML (:data:`GPU_SAMPLES_SCHEMA`).
* ``power-<host>.arrow`` — the driver's buffered power samples, about 20 ms apart on Hopper
  (:data:`POWER_SAMPLES_SCHEMA`). They live in their own narrow file because they arrive
  in bursts at their own timestamps and would otherwise be rows of nulls in the wide file.
* ``events-<host>-r<rank>.arrow`` — training and generation events of one rank
  (:data:`EVENTS_SCHEMA`).
* ``rank-<host>-r<rank>.json`` — what one training process knows about itself (model size,
  library versions, trainer settings); ``effrec`` merges these into ``meta.json`` at the end.

Every ``.arrow`` file is an Arrow IPC *stream* written in record batches, so a killed job
leaves every flushed batch readable. Times are int64 nanoseconds since the Unix epoch
(``time.time_ns()``, CLOCK_REALTIME) in every file. Values are stored raw, in the units NVML
and torch report them; the unit is the suffix of the column name. Nothing is derived here.
"""

from __future__ import annotations

import re

import pyarrow as pa

FORMAT_VERSION = 1
"""Bumped on any change a v1 reader could misread. Readers refuse newer versions."""

META_FILE = "meta.json"
GPU_SAMPLES_PREFIX = "gpu-"
POWER_SAMPLES_PREFIX = "power-"
EVENTS_PREFIX = "events-"
RANK_INFO_PREFIX = "rank-"
HOST_MANIFEST_PREFIX = "host-"
"""``host-<host>.json``: one host's own manifest (its GPUs, clocks, sampler cost, status), written by its effrec."""
PROFILE_PREFIX = "profile-"
PROFILE_SUFFIX = ".pt.trace.json.gz"
"""``profile-<host>-r<rank>.pt.trace.json.gz``: one rank's PyTorch profiler trace of ``effrec --profile-steps``."""
RECORDER_GONE_PREFIX = "recorder-gone-"
"""``recorder-gone-<host>-r<rank>.json``: a training process saw its effrec stop before the job did."""
ARROW_SUFFIX = ".arrow"

RUN_STATUSES = ("running", "complete", "failed", "killed")

EVENT_KINDS = ("train_step", "eval", "generate", "checkpoint", "mark")
"""``train_step``: one optimizer step of one rank. ``eval``: one ``Trainer.evaluate`` call.
``generate``: one ``generate()`` call. ``mark``: a named span from the Python API."""

_HOST_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _metadata(table: str) -> dict[bytes, bytes]:
    return {b"efftrace.format_version": str(FORMAT_VERSION).encode(), b"efftrace.table": table.encode()}


GPU_SAMPLES_SCHEMA = pa.schema(
    [
        pa.field("time_ns", pa.int64(), nullable=False),
        pa.field(
            "gpu", pa.int16(), nullable=False
        ),  # NVML index (a MIG instance: 100*(parent+1)+slot); UUID in meta.json
        pa.field("power_instant_mw", pa.uint32()),  # NVML_FI_DEV_POWER_INSTANT
        pa.field("power_avg_mw", pa.uint32()),  # nvmlDeviceGetPowerUsage: 1-s moving average
        pa.field("energy_mj", pa.uint64()),  # nvmlDeviceGetTotalEnergyConsumption, rationed (meta.json)
        pa.field("mem_used_bytes", pa.uint64()),
        pa.field("mem_total_bytes", pa.uint64()),
        pa.field("util_gpu_pct", pa.uint8()),  # nvmlDeviceGetUtilizationRates().gpu
        pa.field("util_mem_pct", pa.uint8()),  # nvmlDeviceGetUtilizationRates().memory
        pa.field("sm_clock_mhz", pa.uint32()),
        pa.field("temperature_c", pa.int16()),
        # GPM metrics are averages over the interval since the previous poll, stamped at its end.
        pa.field("gpm_sm_activity_pct", pa.float32()),
        pa.field("gpm_tensor_activity_pct", pa.float32()),
        pa.field("gpm_dram_bw_pct", pa.float32()),
        # nvmlDeviceGetCurrentClocksEventReasons: why the clocks are below their maximum (a bit mask of
        # NVML's nvmlClocksEventReason* values, all of them in the low 32 bits of NVML's 64: those are
        # kept, which halves what the analyzer decodes); the maximum itself is in the host manifest
        pa.field("clock_event_reasons", pa.uint32()),
    ],
    metadata=_metadata("gpu_samples"),
)

POWER_SAMPLES_SCHEMA = pa.schema(
    [
        pa.field("time_ns", pa.int64(), nullable=False),  # driver timestamp (us) * 1000
        pa.field("gpu", pa.int16(), nullable=False),
        pa.field("power_mw", pa.uint32(), nullable=False),  # nvmlDeviceGetSamples(TOTAL_POWER)
    ],
    metadata=_metadata("power_samples"),
)

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string(), nullable=False),  # one of EVENT_KINDS
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("pid", pa.int32(), nullable=False),
        pa.field("step", pa.int64()),  # optimizer step (Trainer global_step) for train_step
        pa.field("name", pa.string()),  # label of a `mark` event
        pa.field("start_ns", pa.int64(), nullable=False),
        pa.field("end_ns", pa.int64(), nullable=False),
        pa.field("synced", pa.bool_()),  # times are when the GPU got there (CUDA events or a synchronize)
        pa.field("micro_batches", pa.int32()),
        pa.field("samples", pa.int64()),
        pa.field("tokens", pa.int64()),  # non-padding input tokens (prompt tokens for generate)
        pa.field("generated_tokens", pa.int64()),  # new tokens, padding excluded
        pa.field("loss", pa.float64()),  # as logged by the Trainer at this step
        pa.field("learning_rate", pa.float64()),
        pa.field("grad_norm", pa.float64()),
        pa.field("mem_allocated_bytes", pa.int64()),  # torch.cuda.memory_allocated()
        pa.field("mem_reserved_bytes", pa.int64()),  # torch.cuda.memory_reserved()
        pa.field("mem_peak_bytes", pa.int64()),  # torch.cuda.max_memory_allocated(), cumulative
        # the host's clock at the step's hooks; start_ns/end_ns are the GPU's where ``synced``
        pa.field("host_start_ns", pa.int64()),
        pa.field("host_end_ns", pa.int64()),
    ],
    metadata=_metadata("events"),
)


ADDED_COLUMNS = frozenset({"clock_event_reasons", "host_start_ns", "host_end_ns"})
"""Columns added to v1 after its first traces were recorded. They are additive (a reader of the first
v1 ignores them), so the version stays 1; a reader fills them with nulls where a file lacks them."""


def host_tag(hostname: str) -> str:
    """The host as it appears in file names: only characters safe on every filesystem."""
    return _HOST_UNSAFE.sub("_", hostname) or "host"


def gpu_samples_file(host: str) -> str:
    return f"{GPU_SAMPLES_PREFIX}{host_tag(host)}{ARROW_SUFFIX}"


def power_samples_file(host: str) -> str:
    return f"{POWER_SAMPLES_PREFIX}{host_tag(host)}{ARROW_SUFFIX}"


def events_file(host: str, rank: int) -> str:
    return f"{EVENTS_PREFIX}{host_tag(host)}-r{rank}{ARROW_SUFFIX}"


def rank_info_file(host: str, rank: int) -> str:
    return f"{RANK_INFO_PREFIX}{host_tag(host)}-r{rank}.json"


def host_manifest_file(host: str) -> str:
    return f"{HOST_MANIFEST_PREFIX}{host_tag(host)}.json"


def profile_file(host: str, rank: int) -> str:
    return f"{PROFILE_PREFIX}{host_tag(host)}-r{rank}{PROFILE_SUFFIX}"


def recorder_gone_file(host: str, rank: int) -> str:
    return f"{RECORDER_GONE_PREFIX}{host_tag(host)}-r{rank}.json"
