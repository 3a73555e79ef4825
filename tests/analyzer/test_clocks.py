"""Clock offsets between hosts, from the ranks' step ends: recovered within their stated
uncertainty, corrected above the threshold, and reported with a warning when beyond a step."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from efftrace.analyzer.compute.clocks import CORRECT_ABOVE_NS, MIN_SHARED_STEPS, ClockOffset, aligned_events, estimate
from efftrace.recorder.format import schema
from helpers.trace_builder import T0_NS


def events_of(hosts: dict[str, float], ranks_per_host: int, steps: int, jitter_ns: float, seed: int) -> pa.Table:
    """``train_step`` events of every rank of every host; ``hosts`` maps a host to its clock's offset (ns).

    A step ends for all ranks at the same true moment (the all-reduce), plus each rank's own jitter."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list] = {name: [] for name in (*schema.EVENTS_SCHEMA.names, "host")}
    rank = 0
    for host, offset in hosts.items():
        for _ in range(ranks_per_host):
            true_end = T0_NS + np.arange(1, steps + 1, dtype=np.int64) * 300_000_000
            ends = true_end + np.round(offset + rng.normal(0, jitter_ns, steps)).astype(np.int64)  # int64: exact ns
            for step, end in enumerate(ends, start=1):
                for name in schema.EVENTS_SCHEMA.names:
                    rows[name].append(None)
                rows["kind"][-1], rows["rank"][-1], rows["step"][-1] = "train_step", rank, step
                rows["start_ns"][-1], rows["end_ns"][-1] = int(end) - 250_000_000, int(end)
                rows["host"].append(host)
            rank += 1
    fields = [*schema.EVENTS_SCHEMA, pa.field("host", pa.string())]
    return pa.table(rows, schema=pa.schema(fields))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    offset_ms=st.floats(min_value=-5000, max_value=5000, allow_nan=False),
    jitter_us=st.floats(min_value=1, max_value=2000),
    steps=st.integers(min_value=MIN_SHARED_STEPS, max_value=400),
    ranks=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_offsets_are_recovered_within_their_stated_uncertainty(offset_ms, jitter_us, steps, ranks, seed):
    true_offset = offset_ms * 1e6
    (found,) = estimate(events_of({"a": 0.0, "b": true_offset}, ranks, steps, jitter_us * 1e3, seed))
    assert (found.host, found.reference, found.steps) == ("b", "a", steps)
    assert abs(found.offset_ns - true_offset) <= 6 * found.uncertainty_ns, found
    assert found.uncertainty_ns < 3 * jitter_us * 1e3, "the uncertainty says how well the median is known"


def test_small_offsets_are_left_alone_and_large_ones_corrected():
    assert not ClockOffset("b", "a", CORRECT_ABOVE_NS * 0.5, 1_000.0, 100).corrected, "below 1 ms: NTP's noise"
    assert not ClockOffset("b", "a", 2e6, 1e6, 100).corrected, "within 3 uncertainties: not known well enough"
    assert ClockOffset("b", "a", -3e6, 1e5, 100).corrected


def test_aligned_events_move_a_corrected_hosts_times_onto_the_reference_clock():
    events = events_of({"a": 0.0, "b": 2.0e9}, 2, 50, 50_000, 1)
    offsets = estimate(events)
    aligned = aligned_events(events, offsets)
    remaining = estimate(aligned)[0].offset_ns
    assert abs(remaining) < 50_000, "after the correction the hosts' ends agree within the jitter"
    unchanged = aligned.filter(pa.compute.equal(aligned.column("host"), "a"))
    original = events.filter(pa.compute.equal(events.column("host"), "a"))
    assert unchanged.column("end_ns").equals(original.column("end_ns")), "the reference host is not moved"


def test_one_host_or_too_few_shared_steps_give_no_estimate():
    assert estimate(events_of({"a": 0.0}, 4, 100, 1_000, 0)) == []
    assert estimate(events_of({"a": 0.0, "b": 5e6}, 1, MIN_SHARED_STEPS - 1, 1_000, 0)) == []


@pytest.mark.parametrize("reference_rank_host", ["a", "b"])
def test_the_reference_is_the_host_of_the_lowest_rank(reference_rank_host):
    hosts = {"a": 0.0, "b": 7e6} if reference_rank_host == "a" else {"b": 7e6, "a": 0.0}
    (found,) = estimate(events_of(hosts, 1, 20, 1_000, 0))
    assert found.reference == reference_rank_host


def two_host_run(run_dir, clock_ahead_s: float):
    """Host a (rank 0) and host b (rank 1, its clock ``clock_ahead_s`` ahead) of one job: 1-s steps
    ending together, both GPUs drawing 100 W until t = 10 s and 300 W after, as each host's clock says."""
    import json

    from helpers.trace_builder import TraceBuilder

    builders = {"a": (TraceBuilder(run_dir, host="a"), 0.0), "b": (TraceBuilder(run_dir, host="b"), clock_ahead_s)}
    rng = np.random.default_rng(3)
    for rank, (builder, ahead) in enumerate(builders.values()):
        builder.gpu(0)
        times = np.arange(0.0, 40.0, 0.1)
        builder.gpu_samples(0, times + ahead, power_instant_mw=np.where(times < 10, 100e3, 300e3))
        for step in range(1, 31):
            end = 5.0 + step + rng.normal(0, 0.002)
            builder.step(rank, step, end - 0.9 + ahead, end + ahead, samples=4, tokens=400)
        builder.write(end_s=40.0 + clock_ahead_s)
    meta = json.loads((run_dir / "meta.json").read_text())
    meta["hosts"] = [builders["a"][0].meta["hosts"][0], builders["b"][0].meta["hosts"][0]]
    (run_dir / "meta.json").write_text(json.dumps(meta))
    return run_dir


def test_a_host_two_seconds_ahead_is_corrected_and_warned_about(tmp_path):
    from efftrace.analyzer.compute.metrics import analyze
    from efftrace.analyzer.read.loader import open_run

    result = analyze(open_run(two_host_run(tmp_path / "run", clock_ahead_s=2.0)))
    (clock,) = result.run["clocks"]
    assert clock["host"] == "b" and clock["corrected"]
    assert clock["offset_ms"] == pytest.approx(2000.0, abs=5 * clock["uncertainty_ms"] + 0.01)
    assert result.train.value("al_seconds") == pytest.approx(0.9, abs=0.01), "latency across hosts, on one clock"
    assert any("more than a median step" in note and "host b" in note for note in result.notes)
    hosts = {row["host"]: row for row in result.run["per_host"]}
    assert hosts["a"]["clock_reference"] and hosts["b"]["clock_corrected"]
    assert hosts["a"]["gpus"] == hosts["b"]["gpus"] == 1 and hosts["a"]["window"] == "train"
    assert hosts["a"]["aec_watts"] + hosts["b"]["aec_watts"] == pytest.approx(result.train.value("aec_watts"))
    # both GPUs switch from 100 to 300 W at the same true moment (10 s) once host b's samples are moved
    start, end = ((edge - T0_NS) / 1e9 for edge in (result.train.start_ns, result.train.end_ns))
    ramp = 0.1 * (300 - 100) / 2  # the samples' linear interpolation from 9.9 s (100 W) to 10 s (300 W)
    per_gpu = (100 * (10 - start) + 300 * (end - 10) + ramp) / (end - start)
    assert result.train.value("aec_watts") == pytest.approx(2 * per_gpu, rel=1e-3)
    uncorrected = (100 * (12 - start) + 300 * (end - 12) + ramp) / (end - start) + per_gpu
    assert abs(result.train.value("aec_watts") - uncorrected) > 10, "without the correction it would read otherwise"


def test_a_host_within_a_millisecond_is_left_as_it_is(tmp_path):
    from efftrace.analyzer.compute.metrics import analyze
    from efftrace.analyzer.read.loader import open_run

    result = analyze(open_run(two_host_run(tmp_path / "run", clock_ahead_s=0.0002)))
    (clock,) = result.run["clocks"]
    assert not clock["corrected"] and not any("clock" in note for note in result.notes)
