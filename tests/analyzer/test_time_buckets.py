"""Where the time went: each rank's buckets sum to every window, and land where the events put them."""

from __future__ import annotations

import numpy as np
import pytest

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.compute.time_buckets import BUCKETS
from efftrace.analyzer.read.loader import open_run
from helpers.runs import ROOT
from helpers.trace_builder import TraceBuilder, ns

TRACES = sorted((ROOT / "sample_traces").glob("*/trace"))


@pytest.mark.parametrize("run", TRACES, ids=lambda path: path.parent.name)
def test_buckets_sum_to_every_window_on_every_committed_trace(run):
    buckets = analyze(open_run(run)).diagnosis["time_buckets"]
    assert {"job"} <= set(buckets) and all(window["ranks"] for window in buckets.values())
    logs = buckets.pop("log_windows")
    for name, window in buckets.items():
        for rank, seconds in window["ranks"].items():
            assert set(seconds) == set(BUCKETS)
            assert sum(seconds.values()) == pytest.approx(window["seconds"], rel=1e-9, abs=1e-6), (name, rank)
            assert min(seconds.values()) >= 0
    for rank, per_bucket in logs["ranks"].items():
        totals = np.sum([per_bucket[bucket] for bucket in BUCKETS], axis=0)
        assert totals == pytest.approx(np.array(logs["seconds"]), rel=1e-9, abs=1e-6), rank


def _known_layout(run_dir):
    """Rank 0: start-up 0-5 s; steps 1-10 of 0.9 s, one a second from 5 s; an evaluation 15-17 s;
    steps 11-20 from 17.5 s, the last ending at 27.4 s; idle to the job's end at 40 s. Rank 1 does the
    same 1 s later, without the evaluation."""
    builder = TraceBuilder(run_dir)
    for rank, delay in ((0, 0.0), (1, 1.0)):
        for step in range(1, 21):
            start = 4.0 + step + delay + (2.5 if step > 10 else 0.0)
            builder.step(rank, step, start, start + 0.9, samples=1, tokens=10)
    builder.events[0].append(
        {"kind": "eval", "rank": 0, "pid": 100, "start_ns": int(ns(15.0)), "end_ns": int(ns(17.0))}
    )
    return builder


def test_each_second_lands_in_the_bucket_its_events_give(tmp_path):
    builder = _known_layout(tmp_path / "run")
    builder.gpu(0)
    times = np.arange(0.0, 40.0 + 1e-9, 0.1)
    builder.gpu_samples(0, times, power_instant_mw=np.full(times.size, 100e3))
    result = analyze(open_run(builder.write(end_s=40.0)))
    job = result.diagnosis["time_buckets"]["job"]
    assert job["seconds"] == pytest.approx(40.0)
    rank0, rank1 = job["ranks"]["0"], job["ranks"]["1"]
    assert rank0["startup"] == pytest.approx(5.0)
    assert rank0["train_step"] == pytest.approx(20 * 0.9)
    assert rank0["evaluation"] == pytest.approx(2.0)
    # 0.1 s after each of 18 steps inside the two runs of ten, and 14.9-15.0 and 17.0-17.5 around the evaluation
    assert rank0["between_steps"] == pytest.approx(18 * 0.1 + (15.0 - 14.9) + (17.5 - 17.0))
    assert rank0["idle_tail"] == pytest.approx(40.0 - 27.4)
    assert rank1["startup"] == pytest.approx(6.0) and rank1["evaluation"] == 0.0
    assert rank1["between_steps"] == pytest.approx(18 * 0.1 + (18.5 - 15.9))
    assert rank1["idle_tail"] == pytest.approx(40.0 - 28.4)
    logs = result.diagnosis["time_buckets"]["log_windows"]  # window 2, steps 11-20: only steps and gaps
    assert logs["ranks"]["0"]["evaluation"][1] == 0.0 and logs["ranks"]["0"]["startup"][1] == 0.0
    assert logs["ranks"]["0"]["train_step"][1] == pytest.approx(10 * 0.9)
