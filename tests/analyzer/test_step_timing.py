"""Each rank's steps on the GPU beside the host: synthetic events with known answers, and the H200 traces."""

from __future__ import annotations

import pyarrow as pa
import pytest

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.compute.step_timing import step_timing
from efftrace.analyzer.read.loader import open_run
from efftrace.recorder.format import schema
from helpers.runs import ROOT

MS = 1_000_000


def _events(rows: list[dict]) -> pa.Table:
    full = [{name: row.get(name) for name in schema.EVENTS_SCHEMA.names} for row in rows]
    return pa.Table.from_pylist(full, schema=schema.EVENTS_SCHEMA)


def _step(rank: int, step: int, host: tuple[int, int], gpu: tuple[int, int], synced: bool = True) -> dict:
    return {"kind": "train_step", "rank": rank, "pid": 1, "step": step, "start_ns": gpu[0], "end_ns": gpu[1],
            "host_start_ns": host[0], "host_end_ns": host[1], "synced": synced}  # fmt: skip


def test_a_gpu_that_trails_the_host_and_one_that_waits_on_it():
    """Rank 0: the host queues each 100-ms step in 90 ms and spends 10 ms between steps, all of it while
    the GPU still finishes (GPU idle 0). Rank 1: the GPU finishes 0.1 ms after the host and idles the
    30 ms the host spends between steps."""
    rows = []
    for step in range(3):
        begin = step * 100 * MS
        rows.append(_step(0, step + 1, (begin, begin + 90 * MS), (begin, begin + 100 * MS)))
        begin = step * 80 * MS
        rows.append(_step(1, step + 1, (begin, begin + 50 * MS), (begin, begin + 50 * MS + MS // 10)))
    rows.append({"kind": "eval", "rank": 0, "pid": 1, "start_ns": 0, "end_ns": 5})  # not a step: left out
    timing = step_timing(_events(rows), 0, 10**12)
    assert timing["0"] == pytest.approx({"steps": 3, "gpu_step_s": 0.1, "host_step_s": 0.09, "gpu_between_s": 0.0,
                                         "host_between_s": 0.01, "gpu_after_host_s": 0.01})  # fmt: skip
    assert timing["1"]["gpu_between_s"] == pytest.approx(0.0299)
    assert timing["1"]["host_between_s"] == pytest.approx(0.03)
    assert timing["1"]["gpu_after_host_s"] == pytest.approx(0.0001)


def test_only_steps_with_both_views_inside_the_train_window_count():
    rows = [_step(0, 1, (0, 10), (0, 12)), _step(0, 2, (20, 30), (20, 30), synced=False)]
    rows.append({**_step(0, 3, (40, 50), (40, 52)), "host_end_ns": None})
    rows.append(_step(1, 1, (0, 10), (0, 12)))
    timing = step_timing(_events(rows), 0, 1000)
    assert timing["0"]["steps"] == 1 and timing["0"]["gpu_between_s"] is None, "one step: no gap to measure"
    assert step_timing(_events(rows), 5, 1000) == {}, "a step starting before the window is not in it"


def test_the_h200_traces_tell_a_gpu_bound_job_from_host_bound_ones():
    """Compute-bound: the host spends ~6.5 ms between steps but the GPU idles ~1 ms of it, and finishes
    ~5 ms after the host queued the step's end. Launch- and input-bound: the GPU finishes within 0.2 ms
    of the host, and idles all of the host's time between steps."""
    traces = ROOT / "sample_traces"
    compute = analyze(open_run(traces / "h200-diagnosis-compute" / "trace")).diagnosis["step_timing"]["0"]
    assert compute["steps"] == 40
    assert compute["gpu_between_s"] < 0.25 * compute["host_between_s"]
    assert compute["gpu_after_host_s"] > 0.003
    for workload in ("launch", "input"):
        timing = analyze(open_run(traces / f"h200-diagnosis-{workload}" / "trace")).diagnosis["step_timing"]["0"]
        assert timing["gpu_after_host_s"] < 0.0002
        assert timing["gpu_between_s"] == pytest.approx(timing["host_between_s"], rel=0.02)
