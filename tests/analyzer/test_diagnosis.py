"""Findings: the right one for each workload recorded on the H200, and each rule at its threshold."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute
import pytest

from efftrace.analyzer.compute import diagnosis
from efftrace.analyzer.compute.diagnosis import findings, window_bounds
from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.read.loader import open_run
from helpers.runs import ROOT

TRACES = ROOT / "sample_traces"


@pytest.mark.parametrize(
    ("workload", "expected"),
    [
        ("input", {"input_bound"}),  # a collator that sleeps 0.25 s a batch
        ("launch", {"host_bound"}),  # a 2-layer, 256-wide model at batch 1
        # large bf16 GEMMs, which run the H200 into its 700 W cap (NVML's reasons name it at 17 of 21 readings)
        ("compute", {"compute_bound", "power_capped"}),
        # a small model (so the host sets its pace, as in "launch") beside a tensor filling 95 % of the GPU
        ("oom", {"oom_risk", "host_bound"}),
    ],
)
def test_each_h200_workload_gets_its_finding_and_no_other(workload, expected):
    result = analyze(open_run(TRACES / f"h200-diagnosis-{workload}" / "trace"))
    found = {finding["kind"] for finding in result.diagnosis["findings"]}
    assert found == expected
    for finding in result.diagnosis["findings"]:
        assert finding["windows"] and finding["suggestion"] and finding["message"]


def test_the_compute_bound_finding_states_its_evidence():
    result = analyze(open_run(TRACES / "h200-diagnosis-compute" / "trace"))
    found = {finding["kind"]: finding for finding in result.diagnosis["findings"]}
    finding = found["compute_bound"]
    assert finding["windows"] == [2, 3, 4], "window 1 (warm-up) left out"
    assert finding["evidence"]["pcu_tensor_ratio"] == pytest.approx(0.57, abs=0.01)
    assert "tensor cores busy 57%" in finding["message"] and "window 1 left out as warm-up" in finding["message"]
    capped = found["power_capped"]
    assert capped["evidence"]["power_capped_ratio"] > 0.9
    assert capped["evidence"]["sm_clock_ratio"] == pytest.approx(capped["evidence"]["sm_clock_mhz"] / 1980)
    assert capped["evidence"]["sm_clock_ratio"] < diagnosis.CLOCK_HELD_RATIO
    assert "of its 1,980 MHz maximum" in capped["message"]


def test_no_other_h200_workload_met_the_power_cap():
    for workload in ("input", "launch", "oom"):
        windows = analyze(open_run(TRACES / f"h200-diagnosis-{workload}" / "trace")).windows
        assert np.nanmax(windows.column("power_capped_ratio").to_numpy(zero_copy_only=False)) == 0.0
        assert np.nanmax(windows.column("thermal_slowdown_ratio").to_numpy(zero_copy_only=False)) == 0.0


def _columns(**values):
    base = {"pcu_ratio": 0.9, "pcu_sm_ratio": 0.8, "pcu_tensor_ratio": 0.3, "dram_bw_ratio": 0.3}
    base |= {"sm_clock_mhz": 1980.0, "power_capped_ratio": 0.0, "thermal_slowdown_ratio": 0.0}
    base.update(values)
    return {key: np.array([value], dtype=np.float64) for key, value in base.items()}


def _fires(rule, between=0.05, max_clock=1980.0, **values):
    return bool(window_bounds(_columns(**values), np.array([between]), max_clock)[rule]["mask"][0])


@pytest.mark.parametrize(
    ("rule", "below", "above"),
    [
        ("input_bound", {"between": 0.24}, {"between": 0.26}),
        ("launch_bound", {"pcu_ratio": 0.9, "pcu_sm_ratio": 0.26}, {"pcu_ratio": 0.9, "pcu_sm_ratio": 0.24}),
        ("host_bound", {"pcu_ratio": 0.51}, {"pcu_ratio": 0.49}),
        (
            "memory_bound",
            {"dram_bw_ratio": 0.49, "pcu_tensor_ratio": 0.1},
            {"dram_bw_ratio": 0.51, "pcu_tensor_ratio": 0.1},
        ),
        ("compute_bound", {"pcu_tensor_ratio": 0.39}, {"pcu_tensor_ratio": 0.41}),
        ("power_capped", {"power_capped_ratio": 0.24, "sm_clock_mhz": 1600}, {"power_capped_ratio": 0.26,
                                                                              "sm_clock_mhz": 1600}),
        ("power_capped", {"power_capped_ratio": 0.9, "sm_clock_mhz": 1800}, {"power_capped_ratio": 0.9,
                                                                             "sm_clock_mhz": 1780}),
        ("throttling", {"thermal_slowdown_ratio": 0.09, "sm_clock_mhz": 1500}, {"thermal_slowdown_ratio": 0.11,
                                                                                "sm_clock_mhz": 1500}),
        ("throttling", {"thermal_slowdown_ratio": 0.5, "sm_clock_mhz": 1790}, {"thermal_slowdown_ratio": 0.5,
                                                                               "sm_clock_mhz": 1770}),
    ],
)  # fmt: skip
def test_each_rule_at_its_threshold(rule, below, above):
    assert not _fires(rule, **below) and _fires(rule, **above)


def test_missing_signals_meet_no_rule():
    """No GPM (an older GPU): the rules that need SM, tensor or DRAM activity say nothing."""
    nan = float("nan")
    bounds = window_bounds(_columns(pcu_sm_ratio=nan, pcu_tensor_ratio=nan, dram_bw_ratio=nan), np.array([0.05]))
    assert not any(bounds[rule]["mask"][0] for rule in ("launch_bound", "memory_bound", "compute_bound"))
    assert not window_bounds(_columns(pcu_ratio=nan), np.array([nan]))["host_bound"]["mask"][0]


@pytest.mark.parametrize(("windows", "judged"), [(2, [1, 2]), (3, [2, 3])])
def test_the_first_window_is_warm_up_when_two_follow_it(windows, judged):
    (finding,) = findings(_windows(windows, pcu_tensor_ratio=0.6), np.full(windows, 0.05), [])
    assert finding.kind == "compute_bound" and finding.windows == judged
    assert diagnosis.WARMUP_WINDOWS == 1


def test_without_the_maximum_clock_the_clock_rules_rest_on_the_reasons():
    assert _fires("power_capped", max_clock=None, power_capped_ratio=0.3, sm_clock_mhz=1975)
    assert not _fires("power_capped", max_clock=None, power_capped_ratio=0.2)


def _windows(count, **columns):
    base = {"window": list(range(1, count + 1)), "first_step": [10 * at + 1 for at in range(count)],
            "step": [10 * (at + 1) for at in range(count)], "complete": [True] * count}  # fmt: skip
    for name, value in _columns(**columns).items():
        base[name] = [float(value[0])] * count
    return pa.table(base)


def test_recorded_reasons_replace_the_inferred_throttling_alert():
    """A run with clock-event reasons is judged by them: the alert inferred from power and temperature
    is not repeated as a finding; a run recorded before them keeps the alert's finding."""
    alert = {"kind": "throttling", "window": 2, "message": "window 2 (steps 11-20): SM clock ... throttled"}
    recorded = findings(_windows(3, thermal_slowdown_ratio=0.0), np.full(3, 0.05), [alert], 1980.0)
    assert "throttling" not in {finding.kind for finding in recorded}
    older = findings(_windows(3, thermal_slowdown_ratio=float("nan"), power_capped_ratio=float("nan")),
                     np.full(3, 0.05), [alert], 1980.0)  # fmt: skip
    assert "throttling" in {finding.kind for finding in older}


def test_windows_slowed_by_the_profiler_are_left_out():
    """Steps 21-22 profiled: window 3 (steps 21-30) is left out; steps 19-20 end window 2, and the trace is
    written before step 21 starts, in window 3's time: both are left out. The others are judged."""
    (finding,) = findings(_windows(5, pcu_tensor_ratio=0.6), np.full(5, 0.05), [], 1980.0, profiled=(21, 22))
    assert finding.windows == [2, 4, 5] and "3 as profiled" in finding.message
    (finding,) = findings(_windows(5, pcu_tensor_ratio=0.6), np.full(5, 0.05), [], 1980.0, profiled=(19, 20))
    assert finding.windows == [4, 5]


def test_the_power_cap_share_is_the_time_its_reason_was_set():
    """Per log window, the share is the time-weighted mean of the reasons' 0/1 signal, interpolated
    linearly between the readings (every 0.5 s) and cut at the window's edges: worked out here
    directly from the samples, it agrees to 1e-6 (the analyzer counts seconds from the job's start)."""
    run = open_run(TRACES / "h200-diagnosis-compute" / "trace")
    result = analyze(run)
    samples = run.gpu_samples(["time_ns", "clock_event_reasons"])
    read = samples.filter(pa.compute.is_valid(samples.column("clock_event_reasons")))
    times = read.column("time_ns").to_numpy() / 1e9
    capped = ((read.column("clock_event_reasons").to_numpy() & 0x4) != 0).astype(float)
    assert np.median(np.diff(times)) == pytest.approx(0.5, abs=0.01)
    for window in result.windows.to_pylist():
        start, end = window["start_ns"] / 1e9, window["end_ns"] / 1e9
        inside = (times > start) & (times < end)
        at = np.concatenate(([start], times[inside], [end]))
        values = np.interp(at, times, capped)
        expected = np.sum((values[1:] + values[:-1]) / 2 * np.diff(at)) / (end - start)
        assert window["power_capped_ratio"] == pytest.approx(expected, abs=1e-6), window["window"]


def test_a_finding_names_its_windows_in_runs_and_counts_the_rest_past_eight():
    assert diagnosis._ranges([1, 2, 3, 5]) == "1-3, 5"
    assert diagnosis._ranges([]) == ""
    assert diagnosis._ranges([1, 3, 5, 7, 9, 11, 13, 15]) == "1, 3, 5, 7, 9, 11, 13, 15"  # eight: all written
    every_other = [*range(1, 100, 2), 100, 101]
    assert diagnosis._ranges(every_other) == "1, 3, 5, 7, 9, 11, 13, ..., 99-101 (50 runs)"
