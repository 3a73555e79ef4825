"""The profiled steps' report, from the PyTorch profiler traces recorded on the H200 with --profile-steps."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from efftrace.analyzer.compute import profiled_steps
from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.present.console import render
from efftrace.analyzer.read.loader import open_run
from helpers.runs import ROOT

TRACES = ROOT / "sample_traces"
pytest.importorskip("hta")


def _profile(workload: str) -> dict:
    result = analyze(open_run(TRACES / f"h200-profile-{workload}" / "trace"))
    return result.diagnosis["profile"]


def test_the_host_bound_job_profile_shows_a_gpu_waiting_for_the_host():
    profile = _profile("launch")
    assert profile["steps"] == [200, 201]
    rank = profile["ranks"]["0"]
    assert rank["profiled_steps"] == 2 and rank["gpu_side"]
    assert rank["gpu_idle_share"] > 0.9
    assert rank["idle_causes"]["host_wait"] > 0.9
    assert 0 < rank["gpu_busy_s"] < 0.1 * rank["span_s"]


def test_the_compute_bound_job_profile_shows_gemms_filling_the_gpu():
    rank = _profile("compute")["ranks"]["0"]
    assert rank["gpu_idle_share"] < 0.1
    assert rank["kernel_types"]["computation"] > 0.9
    top = rank["top_kernels"]
    assert len(top) == profiled_steps.TOP_KERNELS and top[0]["name"].startswith("nvjet_sm90")  # cuBLAS GEMMs
    assert [kernel["seconds"] for kernel in top] == sorted((kernel["seconds"] for kernel in top), reverse=True)
    assert 0.2 < sum(kernel["share"] for kernel in top) <= 1


def test_the_console_shows_the_profile_after_the_findings():
    text = render(analyze(open_run(TRACES / "h200-profile-launch" / "trace")))
    block = text[text.index("Profiled steps 200-201") :]
    assert "waiting for the host" in block and "top kernels by GPU time:" in block
    assert text.index("Findings") < text.index("Profiled steps")
    assert "20-21 as profiled" in text, "the windows the profiler slowed are not judged"


def test_without_the_extra_the_profile_is_a_note(monkeypatch):
    monkeypatch.setitem(sys.modules, "hta.trace_analysis", None)  # what an import of a missing package meets
    result = analyze(open_run(TRACES / "h200-profile-launch" / "trace"))
    assert "profile" not in result.diagnosis
    assert any("pip install 'efftrace[profile]'" in note for note in result.notes)


def test_a_damaged_profile_is_a_note_not_a_failure(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(TRACES / "h200-profile-launch" / "trace", run)
    (profile,) = run.glob("profile-*")
    profile.write_bytes(profile.read_bytes()[:5000])
    result = analyze(open_run(run))
    assert "profile" not in result.diagnosis
    assert any("could not be read" in note and profile.name in note for note in result.notes)
    assert result.train is not None, "the rest of the analysis stands"


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 50)), min_size=1, max_size=40))
def test_merged_length_is_the_union_of_the_intervals(intervals):
    starts = np.array([start for start, _ in intervals], dtype=np.float64)
    ends = starts + np.array([length for _, length in intervals], dtype=np.float64)
    covered = np.zeros(1100, bool)
    for start, end in zip(starts.astype(int), ends.astype(int), strict=True):
        covered[start:end] = True
    from hta.utils.utils import merge_kernel_intervals

    assert profiled_steps._merged_length(starts, ends, merge_kernel_intervals) == covered.sum()
