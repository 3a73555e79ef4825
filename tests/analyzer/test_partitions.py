"""Any split of a run's files into partitions gives the figures of one pass over each file.

The partitions' states (:mod:`efftrace.analyzer.compute.partial_integral`) are joined in file
order; these tests cut files at random byte sizes and compare every figure of the JSON summary
with the whole-file analysis, on synthetic traces with gaps, missing readings and a counter
reset, on samples that go back in time across a partition boundary, on damaged files, and on
every committed sample trace.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from efftrace.analyzer.compute import signals
from efftrace.analyzer.compute.partial_integral import PartialIntegral, joined
from efftrace.analyzer.read.loader import open_run
from efftrace.analyzer.read.partitions import batch_offsets, plan_partitions
from efftrace.recorder.format import schema
from helpers.figures import assert_same, document, split_engine
from helpers.runs import read_stream
from helpers.trace_builder import TraceBuilder, write_stream

SAMPLE_TRACES = sorted(Path(__file__).resolve().parents[2].glob("sample_traces/*/trace"))


def _synthetic(run_dir: Path, seed: int, back_in_time: bool = False, batch_rows: int = 97) -> Path:
    """Two GPUs at 10 Hz for 60 s with a sampler stall, NaN and sparse readings, a counter reset,
    a power buffer, and 50 steps; ``back_in_time``: the clock steps back once (samples left out)."""
    rng = np.random.default_rng(seed)
    builder = TraceBuilder(run_dir, batch_rows=batch_rows)
    polls = np.arange(600)
    for gpu in range(2):
        builder.gpu(gpu)
        seconds = polls * 0.1 + gpu * 0.002 + rng.uniform(0, 0.001, polls.size)
        seconds[400:] += 3.0  # a stall no signal bridges
        energy = np.cumsum(rng.uniform(20_000, 70_000, polls.size))
        energy[500:] -= energy[499]  # the driver reloaded: the counter restarts
        builder.gpu_samples(
            gpu,
            seconds,
            power_instant_mw=rng.uniform(100_000, 700_000, polls.size),
            power_avg_mw=rng.uniform(100_000, 700_000, polls.size),
            mem_used_bytes=rng.integers(1 << 30, 60 << 30, polls.size).astype(float),
            util_gpu_pct=rng.integers(0, 101, polls.size).astype(float),
            util_mem_pct=rng.integers(0, 101, polls.size).astype(float),
            gpm_sm_activity_pct=np.where(polls % 2 == 0, rng.uniform(0, 100, polls.size), np.nan),
            gpm_tensor_activity_pct=np.where(rng.random(polls.size) < 0.05, np.nan, rng.uniform(0, 100, polls.size)),
            temperature_c=np.where(polls % 5 == 0, rng.integers(30, 80, polls.size), np.nan),
            energy_mj=np.where(polls % 20 == 0, np.round(energy), np.nan),
        )
        buffer = np.arange(0, 60, 0.02)
        builder.power_samples(gpu, buffer, rng.uniform(100_000, 700_000, buffer.size))
    for step in range(1, 51):
        start = step * 1.1
        builder.step(0, step, start, start + 1.0, tokens=4096, samples=8, loss=1.0 / step)
    run = builder.write(end_s=70.0)
    if back_in_time:  # the rows after the 600th as written, 1.5 s earlier (the builder writes them sorted)
        path = run / schema.gpu_samples_file("node")
        table = read_stream(path)
        times = table.column("time_ns").to_numpy().copy()
        times[600:] -= 1_500_000_000
        columns = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
        write_stream(path, schema.GPU_SAMPLES_SCHEMA, {**columns, "time_ns": times}, batch_rows)
    return run


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(partition_bytes=st.integers(min_value=1, max_value=60_000), seed=st.integers(0, 3))
def test_any_split_gives_the_figures_of_one_pass(tmp_path_factory, partition_bytes, seed):
    run = _synthetic(tmp_path_factory.mktemp("run"), seed)
    expected, notes = document(run)
    got, split_notes = document(run, split_engine(partition_bytes))
    assert_same(expected, got)
    assert split_notes == notes


def test_a_split_run_has_many_partitions_and_counts_every_sample(tmp_path):
    run = _synthetic(tmp_path / "run", 0)
    partitions = plan_partitions(open_run(run), 4_000)
    assert len([partition for partition in partitions if partition.kind == "gpu"]) > 10
    assert [partition.place for partition in partitions if partition.kind == "power"][:3] == [0, 1, 2]
    expected, _ = document(run)
    assert expected["windows"]["train"]["figures"]["aec_watts"]["value"] > 0


def test_samples_back_in_time_across_a_boundary_are_integrated_as_in_one_pass(tmp_path, monkeypatch):
    """One pass sorts a chunk's samples; partitions cut through the step back cannot be joined, so the
    file is integrated again in one piece, and the figures are the one pass's."""
    run = _synthetic(tmp_path / "run", 1, back_in_time=True)
    expected, notes = document(run)
    whole_files = []
    integrate = signals.integrate_partition

    def counted(partition, *args):
        if partition.place == 0 and partition.stop is None:
            whole_files.append(partition.path.name)
        return integrate(partition, *args)

    monkeypatch.setattr(signals, "integrate_partition", counted)
    for partition_bytes in (3_000, 20_000):
        whole_files.clear()
        got, split_notes = document(run, split_engine(partition_bytes))
        assert whole_files == ["gpu-node.arrow"]  # integrated again in one piece; the power file joined
        assert_same(expected, got)
        assert split_notes == notes


@pytest.mark.parametrize("cut", ["tail", "middle"])
def test_a_damaged_file_gives_the_same_note_and_figures_split_or_whole(tmp_path, cut):
    run = _synthetic(tmp_path / "run", 2)
    path = run / "gpu-node.arrow"
    data = bytearray(path.read_bytes())
    if cut == "tail":
        del data[len(data) * 2 // 3 :]  # the job killed while writing
    else:
        offsets = batch_offsets(path)
        at = offsets[len(offsets) // 2]
        data[at + 8 : at + 72] = b"\x5a" * 64  # the header of a batch in the middle overwritten
    path.write_bytes(bytes(data))
    expected, notes = document(run)
    assert any("gpu-node.arrow: a record batch was cut off or damaged" in note for note in notes)
    got, split_notes = document(run, split_engine(2_000))
    assert_same(expected, got)
    assert split_notes == notes


@pytest.mark.parametrize("trace", SAMPLE_TRACES, ids=lambda path: path.parent.name)
def test_every_sample_trace_gives_its_figures_in_partitions(trace):
    expected, notes = document(trace)
    got, split_notes = document(trace, split_engine(8_000))
    assert_same(expected, got)
    assert split_notes == notes


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 199), min_size=1, max_size=6, unique=True),
    interpolation=st.sampled_from(["linear", "backward", "increase"]),
    gap=st.sampled_from([0.15, 10.0]),
)
def test_joining_states_is_the_one_pass_result(cuts, interpolation, gap):
    """The states of consecutive slices of one signal, joined, against one RunningIntegral over all
    of it: every edge's integral and covered time, and the totals (any grouping: associative)."""
    from efftrace.analyzer.compute.integrate import RunningIntegral

    rng = np.random.default_rng(len(cuts))
    times = np.cumsum(rng.uniform(0.01, 0.2, 200))
    values = np.cumsum(rng.uniform(-1, 3, 200)) if interpolation == "increase" else rng.uniform(0, 10, 200)
    edges = np.sort(rng.uniform(-1, times[-1] + 1, 50))
    whole = RunningIntegral(edges, gap, interpolation)
    whole.add(times, values)
    at, covered = whole.finish()
    states = []
    for piece_times, piece_values in zip(np.split(times, sorted(cuts)), np.split(values, sorted(cuts)), strict=True):
        part = RunningIntegral(edges, gap, interpolation)
        part.add(piece_times, piece_values)
        states.append(part.partial())
    everything = np.arange(edges.size)
    for grouping in (states, [joined(states[:1], edges), joined(states[1:], edges)]):
        state = joined(grouping, edges)
        assert isinstance(state, PartialIntegral)
        got, got_covered = state.at(everything)
        np.testing.assert_allclose(got, at, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(got_covered, covered, rtol=1e-12, atol=1e-9)
        assert state.resets == whole.resets
