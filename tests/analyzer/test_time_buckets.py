"""Where the time went: each rank's buckets sum to every window, and land where the events put them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.compute.time_buckets import BUCKETS, time_buckets
from efftrace.analyzer.read.loader import open_run
from efftrace.recorder.format.units import NS_PER_S
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


_KIND_OF_BUCKET = {
    "train_step": "train_step",
    "evaluation": "eval",
    "checkpoint": "checkpoint",
    "generation": "generate",
}  # bucket -> event kind, most specific first


def _bucket_of_each_nanosecond(spans: dict[str, list[tuple[int, int]]], end: int) -> list[str]:
    """The bucket of each nanosecond [t, t + 1) up to ``end``, by the module's rules, one at a time."""
    active = [pair for bucket in _KIND_OF_BUCKET for pair in spans[bucket]]
    steps = spans["train_step"]
    labels = []
    for t in range(end):
        inside = [bucket for bucket in _KIND_OF_BUCKET if any(s <= t and t + 1 <= e for s, e in spans[bucket])]
        if inside:
            labels.append(inside[0])
        elif steps and t + 1 <= min(s for s, _ in steps):
            labels.append("startup")
        elif steps and min(s for s, _ in steps) <= t and t + 1 <= max(e for _, e in steps):
            labels.append("between_steps")
        elif not steps and active and t + 1 <= min(s for s, _ in active):
            labels.append("startup")
        elif t >= max((e for _, e in active), default=0):
            labels.append("idle_tail")
        else:
            labels.append("between_steps")
    return labels


_spans = st.lists(st.tuples(st.integers(0, 60), st.integers(0, 12)).map(lambda p: (p[0], p[0] + p[1])), max_size=6)


@settings(max_examples=150, deadline=None)
@given(
    spans=st.fixed_dictionaries({bucket: _spans for bucket in _KIND_OF_BUCKET}),
    windows=st.lists(st.tuples(st.integers(0, 80), st.integers(0, 80)).map(sorted), min_size=1, max_size=5),
)
def test_buckets_match_a_nanosecond_by_nanosecond_count(spans, windows):
    """Overlapping, touching and empty spans of every kind, and windows anywhere: each window's seconds
    per bucket equal a count of its nanoseconds labelled one at a time by the rules."""
    rows = [(0, start, end, _KIND_OF_BUCKET[bucket]) for bucket, pairs in spans.items() for start, end in pairs]
    events = pa.table(
        {
            "rank": pa.array([row[0] for row in rows], pa.int32()),
            "start_ns": pa.array([row[1] for row in rows], pa.int64()),
            "end_ns": pa.array([row[2] for row in rows], pa.int64()),
            "kind": pa.array([row[3] for row in rows], pa.string()),
        }
    )
    result = time_buckets(events, [f"w{at}" for at in range(len(windows))], np.array(windows))
    if not rows:
        assert result.ranks == []
        return
    labels = _bucket_of_each_nanosecond(spans, 81)
    for at, (start, end) in enumerate(windows):
        expected = [labels[start:end].count(bucket) / NS_PER_S for bucket in BUCKETS]
        assert result.seconds[at, 0].tolist() == pytest.approx(expected, abs=1e-15), (at, start, end)
