"""Findings: the right one for each workload recorded on the H200, and each rule at its threshold."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
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
        ("compute", {"compute_bound"}),  # large bf16 GEMMs
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
    (finding,) = result.diagnosis["findings"]
    assert finding["windows"] == [2, 3, 4], "window 1 (warm-up) left out"
    assert finding["evidence"]["pcu_tensor_ratio"] == pytest.approx(0.58, abs=0.01)
    assert "tensor cores busy 58%" in finding["message"] and "window 1 left out as warm-up" in finding["message"]


def _columns(**values):
    base = {"pcu_ratio": 0.9, "pcu_sm_ratio": 0.8, "pcu_tensor_ratio": 0.3, "dram_bw_ratio": 0.3}
    base.update(values)
    return {key: np.array([value], dtype=np.float64) for key, value in base.items()}


def _fires(rule, between=0.05, **values):
    return bool(window_bounds(_columns(**values), np.array([between]))[rule]["mask"][0])


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
    ],
)
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
    table = pa.table(
        {"window": list(range(1, windows + 1)), "complete": [True] * windows, "pcu_ratio": [0.9] * windows,
         "pcu_sm_ratio": [0.8] * windows, "pcu_tensor_ratio": [0.6] * windows, "dram_bw_ratio": [0.3] * windows}
    )  # fmt: skip
    (finding,) = findings(table, np.full(windows, 0.05), [])
    assert finding.kind == "compute_bound" and finding.windows == judged
    assert diagnosis.WARMUP_WINDOWS == 1
