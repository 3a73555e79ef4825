"""Window edges are exact to the nanosecond: int64 times become seconds by an integer subtraction first.

At today's epoch a float64 holds a nanosecond timestamp only to the nearest 256 ns, so an edge
converted before the origin is subtracted moves by up to 128 ns.
"""

from __future__ import annotations

import numpy as np

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.compute.settings import window_groups
from efftrace.analyzer.compute.steps import Generations, log_windows, train_steps
from efftrace.analyzer.read.loader import open_run
from helpers.trace_builder import T0_NS, TraceBuilder

ORIGIN_NS = 1_795_426_873_605_155_795  # a real step start of the H100 LoRA trace: not a multiple of 256


def _empty_generations() -> Generations:
    empty = np.zeros(0, dtype=np.int64)
    nothing = np.zeros(0, dtype=np.float64)
    return Generations(empty, empty, nothing, nothing, nothing, empty, empty)


def test_edges_in_seconds_keep_every_nanosecond():
    import pyarrow as pa

    from efftrace.recorder.format import schema

    offsets = np.array([0, 77, 1_000_000_001, 2_000_000_129])
    rows = [
        {
            "kind": "train_step",
            "rank": 0,
            "step": number + 1,
            "start_ns": ORIGIN_NS + offset,
            "end_ns": ORIGIN_NS + offset + 5,
        }
        for number, offset in enumerate(offsets)
    ]
    events = pa.table(
        {name: [row.get(name) for row in rows] for name in schema.EVENTS_SCHEMA.names}, schema.EVENTS_SCHEMA
    )
    steps = train_steps(events)
    groups = window_groups((ORIGIN_NS, None), steps, log_windows(steps, 1), _empty_generations())
    starts, ends = groups.seconds_from(ORIGIN_NS)
    logs = slice(2, 2 + offsets.size)  # the job window, the train window, then one log window per step
    assert np.array_equal(starts[logs], offsets / 1e9), "77 ns stays 77 ns"
    assert np.array_equal(ends[logs], (offsets + 5) / 1e9)
    assert ends[0] == np.inf, "the job window stays open until the last sample is known"
    float_first = (ORIGIN_NS + offsets).astype(np.float64) - ORIGIN_NS
    assert not np.array_equal(float_first, offsets), "the float64 way would have moved them"


def test_a_constant_power_integrates_to_power_times_the_exact_window(tmp_path):
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    times = np.arange(0.0, 12.0 + 1e-9, 0.1)
    builder.gpu_samples(0, times, power_instant_mw=np.full(times.size, 300_000.0))
    builder.step(0, 1, 1.000000077, 2.000000131)  # edges off the 256-ns grid of float64 at this epoch
    builder.step(0, 2, 2.000000131, 11.000000003)
    assert (T0_NS + 77) % 256 != 0
    result = analyze(open_run(builder.write(end_s=12.0)))
    seconds = (11_000_000_003 - 1_000_000_077) / 1e9
    assert result.train is not None
    assert abs(result.train.value("energy_j") - 300.0 * seconds) <= 1e-9 * 300.0 * seconds


def test_the_command_line_reports_the_exact_window_energy(tmp_path):
    import json
    import subprocess
    import sys

    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    times = np.arange(0.0, 12.0 + 1e-9, 0.1)
    builder.gpu_samples(0, times, power_instant_mw=np.full(times.size, 300_000.0))
    builder.step(0, 1, 1.000000077, 2.000000131)
    builder.step(0, 2, 2.000000131, 11.000000003)
    done = subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", str(builder.write(end_s=12.0)), "--json", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    energy = json.loads(done.stdout)["windows"]["train"]["figures"]["energy_j"]["value"]
    seconds = (11_000_000_003 - 1_000_000_077) / 1e9
    assert abs(energy - 300.0 * seconds) <= 1e-9 * 300.0 * seconds
