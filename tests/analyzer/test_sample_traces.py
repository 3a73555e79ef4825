"""The committed H100 traces: readable, complete, and holding what real NVML gave."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.read.loader import open_run
from efftrace.recorder.format import schema
from helpers.runs import ROOT, read_stream

TRACES = sorted((ROOT / "sample_traces").glob("h100-*/trace"))


def only(run: Path, prefix: str):
    (path,) = run.glob(f"{prefix}*.arrow")
    return read_stream(path)


def test_there_are_sample_traces():
    assert {path.parent.name for path in TRACES} >= {"h100-lora-sft", "h100-full-sft", "h100-predict"}


@pytest.mark.parametrize("run", TRACES, ids=lambda path: path.parent.name)
def test_sample_trace_holds_real_nvml_data(run):
    meta = json.loads((run / schema.META_FILE).read_text())
    assert meta["status"] == "complete" and meta["format_version"] == schema.FORMAT_VERSION
    assert meta["hosts"][0]["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3"

    gpu = only(run, schema.GPU_SAMPLES_PREFIX)
    recorded_then = [field for field in schema.GPU_SAMPLES_SCHEMA if field.name not in schema.ADDED_COLUMNS]
    assert gpu.schema.equals(pa.schema(recorded_then, metadata=schema.GPU_SAMPLES_SCHEMA.metadata))
    times = gpu["time_ns"].to_numpy()
    assert np.all(np.diff(times) > 0)
    assert np.median(np.diff(times)) == pytest.approx(0.1e9, rel=0.05), "polls at the 0.1 s interval"
    for column in ("gpm_sm_activity_pct", "gpm_tensor_activity_pct", "gpm_dram_bw_pct"):
        assert gpu[column].null_count == 1, "GPM filled on every poll but the first"
    assert gpu["power_instant_mw"].null_count == 0 and gpu["mem_used_bytes"].null_count == 0
    energy_times = gpu.filter(pc.is_valid(gpu["energy_mj"]))["time_ns"].to_numpy()
    energy_interval_ns = meta["sampling"]["energy_interval_s"] * 1e9
    assert np.median(np.diff(energy_times)) == pytest.approx(energy_interval_ns, rel=0.15), "counter as rationed"
    energy = gpu.filter(pc.is_valid(gpu["energy_mj"]))["energy_mj"].to_numpy()
    assert np.all(np.diff(energy.astype(np.int64)) >= 0)

    power = only(run, schema.POWER_SAMPLES_PREFIX)
    power_times = power["time_ns"].to_numpy()
    assert np.all(np.diff(power_times) > 0), "driver buffer deduplicated"
    assert np.median(np.diff(power_times)) == pytest.approx(20e6, rel=0.05), "the driver's 20 ms samples"
    assert power.num_rows > 4 * gpu.num_rows

    events = only(run, schema.EVENTS_PREFIX)
    kinds = set(events["kind"].to_pylist())
    if "predict" in run.parent.name:
        assert kinds == {"generate"} and events.num_rows == 8
        assert all(row["generated_tokens"] > 0 for row in events.to_pylist())
    else:
        assert kinds == {"train_step"} and events["step"].to_pylist() == list(range(1, 201))
        assert all(row["synced"] for row in events.to_pylist())
    assert meta["model"]["total_params"] > 1_000_000_000


@pytest.mark.parametrize("run", TRACES, ids=lambda path: path.parent.name)
def test_sample_trace_analysis_is_consistent_with_the_energy_counter(run):
    """The H100 power integral agrees with the hardware counter within 1 % on every measured window."""
    result = analyze(open_run(run))
    windows = [summary for summary in (result.train, result.inference) if summary is not None]
    assert windows
    for summary in windows:
        assert abs(summary.value("energy_counter_diff_pct")) < 1.0, summary.name
        assert summary.figures["aec_watts"].coverage > 0.99
        assert 0 < summary.value("pcu_tensor_ratio") <= summary.value("pcu_sm_ratio") <= 1
    if result.train is not None:
        assert result.windows.num_rows == 20 and result.windows.column("complete").to_pylist() == [True] * 20


def test_a_trace_recorded_before_the_added_columns_reads_them_as_not_recorded():
    """The H100 traces predate the clock-event reasons and the host's step times: the loader gives
    nulls for them, and the figures made of them are missing (NaN), not zero."""
    run = open_run(TRACES[0])
    samples = run.gpu_samples(["time_ns", "clock_event_reasons"])
    assert samples.column("clock_event_reasons").null_count == samples.num_rows > 0
    events = run.events()
    assert events.column("host_end_ns").null_count == events.num_rows
    result = analyze(run)
    assert np.isnan(result.windows.column("power_capped_ratio").to_numpy(zero_copy_only=False)).all()
    assert result.diagnosis["step_timing"] == {}
