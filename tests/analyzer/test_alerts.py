"""Each alert fires just past its threshold and not just before it, on the figures a window has."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from efftrace.analyzer.compute import alerts
from efftrace.analyzer.compute.alerts import GpuLimits, History, run_alerts, window_alerts
from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.read.loader import open_run
from efftrace.recorder.format.units import GIB
from helpers.trace_builder import TraceBuilder

LIMITS = GpuLimits(memory_total_bytes=80 * GIB, power_limit_w=700.0)
_SCHEMA = pa.schema([(key, pa.bool_() if key == "complete" else pa.float64()) for key in alerts._KEYS])


def window(number: int = 1, **figures):
    row = {"window": number, "first_step": 10 * number - 9, "step": 10 * number, "end_ns": number, "complete": True}
    row.update(al_seconds=1.0, tokens_per_sec=1000.0, coverage_power=1.0, sm_clock_mhz=1980.0)
    row.update(figures)
    return row


def kinds(row, earlier=(), limits=LIMITS):
    history = History()
    for old in earlier:
        history.add(old.get("tokens_per_sec", float("nan")), old.get("sm_clock_mhz", float("nan")), old["complete"])
    return [alert.kind for alert in window_alerts(row, history, limits)]


@pytest.mark.parametrize(("share_used", "fires"), [(0.91, False), (0.93, True)])
def test_memory_headroom(share_used, fires):
    assert ("oom_risk" in kinds(window(amu_gib_max=80 * share_used))) is fires
    assert ("oom_risk" in kinds(window(torch_peak_gib=80 * share_used, amu_gib_max=10.0))) is fires
    assert "oom_risk" not in kinds(window(amu_gib_max=80 * share_used), limits=GpuLimits(None, 700.0))


@pytest.mark.parametrize(("ratio", "fires"), [(0.71, False), (0.69, True)])
def test_throughput_drop_against_the_earlier_windows_median(ratio, fires):
    earlier = [window(n, tokens_per_sec=speed) for n, speed in ((1, 900.0), (2, 1000.0), (3, 5000.0))]
    row = window(4, tokens_per_sec=1000.0 * ratio)
    assert ("throughput_drop" in kinds(row, earlier)) is fires
    assert "throughput_drop" not in kinds(row, earlier[:2]), "fewer than three earlier windows: no median yet"


@pytest.mark.parametrize(("skew", "fires"), [(0.19, False), (0.21, True)])
def test_straggler(skew, fires):
    assert ("straggler" in kinds(window(end_skew_s=skew))) is fires


@pytest.mark.parametrize(
    ("clock", "power", "temperature", "fires"),
    [
        (1700.0, 690.0, 60.0, False),  # 86 % of the best clock: within the allowed drop
        (1650.0, 690.0, 60.0, True),  # 83 %, at 99 % of the power limit
        (1650.0, 650.0, 60.0, False),  # a lower clock, but nothing shows throttling
        (1650.0, 300.0, 86.0, True),  # hot
        (1650.0, 300.0, 84.0, False),
    ],
)
def test_throttling_needs_a_clock_drop_and_its_cause(clock, power, temperature, fires):
    row = window(2, sm_clock_mhz=clock, aec_watts_per_gpu=power, temperature_c=temperature)
    assert ("throttling" in kinds(row, [window(1)])) is fires


@pytest.mark.parametrize(("coverage", "fires"), [(0.91, False), (0.89, True)])
def test_sampling_gap(coverage, fires):
    assert ("sampling_gap" in kinds(window(coverage_power=coverage))) is fires


def test_thresholds_are_the_named_constants():
    assert alerts.MEMORY_HEADROOM_MIN == 0.08 and alerts.DEGRADATION_RATIO == 0.7 and alerts.COVERAGE_MIN == 0.9
    rows = [window(1), window(2, coverage_power=0.5)]
    table = pa.table({key: [row.get(key) for row in rows] for key in alerts._KEYS}, schema=_SCHEMA)
    assert [alert.window for alert in run_alerts(table, LIMITS)] == [2]


def test_a_run_filling_its_gpu_gets_an_oom_alert_in_its_result(tmp_path):
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    times = np.arange(0.0, 40.0 + 1e-9, 0.1)
    memory = np.where(times < 10.5, 40.0, 76.0) * GIB  # from window 2 on: 95 % of 80 GiB
    builder.gpu_samples(0, times, power_instant_mw=np.full(times.size, 300e3), mem_used_bytes=memory)
    for step in range(1, 31):
        builder.step(0, step, float(step), step + 0.9, samples=2, tokens=200)
    result = analyze(open_run(builder.write(end_s=40.0)))
    assert [(alert["kind"], alert["window"]) for alert in result.alerts] == [("oom_risk", 2), ("oom_risk", 3)]
    assert "headroom 5.0% (76.0 of 80.0 GiB in use)" in result.alerts[1]["message"]


def test_alerts_file_gets_one_json_line_per_alert_and_grows(tmp_path):
    import json
    import subprocess
    import sys

    from helpers.runs import ROOT

    trace = ROOT / "sample_traces" / "h200-diagnosis-oom" / "trace"
    log = tmp_path / "alerts.jsonl"
    for _ in range(2):  # a second analysis appends: the file is a log, never replaced
        command = [sys.executable, "-m", "efftrace.analyzer", str(trace), "-q", "--alerts", str(log)]
        assert subprocess.run(command, capture_output=True, timeout=120).returncode == 0
    lines = log.read_text().splitlines()
    result = analyze(open_run(trace))
    assert len(lines) == 2 * len(result.alerts)
    assert sum(alert["kind"] == "oom_risk" for alert in result.alerts) == 20, "every window near out of memory"
    windows = result.windows.to_pylist()
    ends = {row["window"]: row["end_ns"] for row in windows}
    for line in lines:
        alert = json.loads(line)
        assert alert["time_ns"] == ends[alert["window"]], "exact nanoseconds"
