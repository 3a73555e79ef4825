"""The metrics on synthetic traces whose answers are known exactly (DESIGN.md's definitions)."""

from __future__ import annotations

import numpy as np
import pytest

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.compute.settings import AnalysisSettings
from efftrace.analyzer.read.loader import open_run
from helpers.trace_builder import TraceBuilder

GIB = 1 << 30


def _steps(
    builder: TraceBuilder, count: int, first_start: float, latency: float, gap: float = 0.0, rank: int = 0, **fields
) -> list[tuple[float, float]]:
    spans = []
    start = first_start
    for step in range(1, count + 1):
        builder.step(rank, step, start, start + latency, **fields)
        spans.append((start, start + latency))
        start += latency + gap
    return spans


def _analyze(run_dir, **settings):
    return analyze(open_run(run_dir), AnalysisSettings(**settings))


def _sampled(builder: TraceBuilder, gpu: int, seconds: np.ndarray, power_w, memory_gib=10.0, util=50.0, **extra):
    builder.gpu_samples(
        gpu,
        seconds,
        power_instant_mw=np.broadcast_to(np.asarray(power_w, float) * 1e3, seconds.shape).copy(),
        mem_used_bytes=np.broadcast_to(np.asarray(memory_gib, float) * GIB, seconds.shape).copy(),
        util_gpu_pct=np.broadcast_to(np.asarray(util, float), seconds.shape).copy(),
        **extra,
    )


def test_constant_signals_give_their_value_and_exact_energy(tmp_path):
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    _sampled(builder, 0, np.arange(0, 100.001, 0.1), 200.0, memory_gib=12.5, util=80)
    _steps(builder, 20, 10.03, 2.0, samples=8, tokens=1000, loss=1.5)
    result = _analyze(builder.write(end_s=100))
    train = result.train
    assert train.value("aec_watts") == pytest.approx(200.0, rel=1e-12)
    assert train.value("energy_j") == pytest.approx(200.0 * 40.0, rel=1e-12)
    assert train.value("amu_gib") == pytest.approx(12.5, rel=1e-12)
    assert train.value("pcu_ratio") == pytest.approx(0.8, rel=1e-12)
    assert train.value("al_seconds") == pytest.approx(2.0, abs=1e-9)
    assert train.value("tt_tokens_per_param_per_sec") == pytest.approx(1000 / 2.0 / 1e6, rel=1e-9)
    assert train.value("st_samples_per_param_per_sec") == pytest.approx(8 / 2.0 / 1e6, rel=1e-9)
    assert train.figures["aec_watts"].coverage == pytest.approx(1.0)
    assert result.summaries["job"].seconds == pytest.approx(100.0)
    assert train.figures["aec_watts"].source.startswith("NVML instant power")


def test_linear_ramp_is_exact_in_windows_that_cut_between_samples(tmp_path):
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    seconds = np.arange(0, 60.001, 0.1)
    _sampled(builder, 0, seconds, 100 + 2 * seconds)  # P(t) = 100 + 2t W
    spans = _steps(builder, 12, 5.037, 1.713, gap=0.291)  # edges never on a sample
    result = _analyze(builder.write(end_s=60), log_interval=5)
    a, b = spans[0][0], spans[-1][1]
    # exact up to the trace's own quantisation (whole mW, whole ns)
    assert result.train.value("energy_j") == pytest.approx(100 * (b - a) + (b * b - a * a), rel=1e-8)
    assert result.train.value("aec_watts") == pytest.approx(100 + (a + b), rel=1e-8)
    windows = result.windows.to_pylist()
    assert [row["step"] for row in windows] == [5, 10, 12]
    assert [row["complete"] for row in windows] == [True, True, False]
    for row, (first, last) in zip(windows, [(0, 4), (5, 9), (10, 11)], strict=True):
        a, b = spans[first][0], spans[last][1]
        assert row["aec_watts"] == pytest.approx(100 + (a + b), rel=1e-8)
        assert row["wall_time"] == pytest.approx(1_800_000_000 + b, abs=1e-6)


def test_square_wave_sampled_at_its_edges_integrates_exactly(tmp_path):
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    edges = np.arange(0, 41, 1.0)  # 1 s high at 300 W, 1 s low at 100 W: two samples at each edge
    times = np.repeat(edges, 2)
    level = np.where((np.arange(times.size) // 2 + np.arange(times.size) % 2) % 2 == 0, 300.0, 100.0)
    builder.power_samples(0, times, level * 1e3)
    _sampled(builder, 0, np.arange(0, 40.001, 0.1), 0.0)  # instant power present but not chosen
    _steps(builder, 4, 2.5, 8.0)  # 2.5 .. 34.5: 16 high seconds, 16 low
    result = _analyze(builder.write(end_s=40))
    assert result.train.value("energy_j") == pytest.approx(16 * 300 + 16 * 100, rel=1e-12)
    assert result.per_gpu.to_pylist()[0]["power_source"] == "power_buffer"


def test_irregular_samples_of_a_linear_signal_are_exact(tmp_path):
    rng = np.random.default_rng(7)
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    seconds = np.sort(np.concatenate(([0.0, 50.0], rng.uniform(0, 50, 400))))
    _sampled(builder, 0, seconds, 50 + 3 * seconds)
    _steps(builder, 5, 3.3, 7.7)
    result = _analyze(builder.write(end_s=50), max_gap_s=10)
    a, b = 3.3, 3.3 + 5 * 7.7
    assert result.train.value("aec_watts") == pytest.approx(50 + 1.5 * (a + b), abs=5e-4)  # samples are whole mW


def test_gaps_are_not_bridged_and_lower_coverage(tmp_path):
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    seconds = np.arange(0, 100.001, 0.1)
    seconds = seconds[(seconds < 30) | (seconds > 40 - 1e-9)]  # 10 s with no samples (30 -> 40 is not bridged)
    _sampled(builder, 0, seconds, 100 + seconds)  # the mean over covered time stays exact
    _steps(builder, 8, 10.0, 10.0)  # train window 10 .. 90
    result = _analyze(builder.write(end_s=100))
    covered_span = 80 - (40 - seconds[seconds < 30][-1])
    figure = result.train.figures["aec_watts"]
    assert figure.coverage == pytest.approx(covered_span / 80, rel=1e-9)
    last_before = seconds[seconds < 30][-1]
    energy = (100 * (last_before - 10) + (last_before**2 - 100) / 2) + (100 * 50 + (90**2 - 40**2) / 2)
    assert result.train.value("energy_j") == pytest.approx(energy, rel=1e-9)
    assert figure.value == pytest.approx(energy / covered_span, rel=1e-9)


def test_multi_gpu_multi_rank_with_skewed_ranks(tmp_path):
    builder = TraceBuilder(tmp_path / "run")
    builder.meta["world_size"] = 2
    for gpu, (power, memory, util) in enumerate([(300.0, 20.0, 90.0), (100.0, 30.0, 30.0)]):
        builder.gpu(gpu)
        _sampled(builder, gpu, np.arange(0, 50.001, 0.1), power, memory_gib=memory, util=util)
    for step in range(1, 11):
        start = 5.0 + 3 * (step - 1)
        builder.step(0, step, start, start + 2.0, samples=4, tokens=400, micro_batches=2)
        builder.step(1, step, start + 0.1, start + 2.5, samples=4, tokens=600, micro_batches=2)  # rank 1 lags
    result = _analyze(builder.write(end_s=50))
    train = result.train
    assert train.value("al_seconds") == pytest.approx(2.5, abs=1e-9)  # latest end - earliest start
    assert train.value("rank_end_skew_seconds") == pytest.approx(0.5, abs=1e-9)
    assert train.value("tokens_per_sec") == pytest.approx(1000 / 2.5, rel=1e-9)  # summed over ranks
    assert train.value("samples_per_sec") == pytest.approx(8 / 2.5, rel=1e-9)
    assert train.value("aec_watts") == pytest.approx(400.0)  # AEC is the job's total draw
    assert train.figures["aec_watts"].source.endswith("(per GPU 200 W)")
    assert train.value("amu_gib") == pytest.approx(25.0)  # AMU is the mean over GPUs
    assert train.value("pcu_ratio") == pytest.approx(0.6)
    assert result.windows.column("amu_gib_max").to_pylist()[0] == pytest.approx(30.0)
    rows = [row for row in result.per_gpu.to_pylist() if row["window"] == "train"]
    assert [row["aec_watts"] for row in rows] == pytest.approx([300.0, 100.0])
    assert "slowest rank on average: 1" in train.figures["rank_end_skew_seconds"].source


def test_gpm_activities_are_held_back_to_the_previous_poll(tmp_path):
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    seconds = np.arange(0, 20.001, 1.0)
    activity = np.where(seconds % 2 == 0, 80.0, 20.0)  # each value is the average of the second before it
    _sampled(builder, 0, seconds, 100.0, gpm_sm_activity_pct=activity, gpm_tensor_activity_pct=activity / 2)
    _steps(builder, 2, 2.0, 8.0)  # 2 .. 18: eight seconds at 80 %, eight at 20 %
    result = _analyze(builder.write(end_s=20))
    assert result.train.value("pcu_sm_ratio") == pytest.approx(0.5, rel=1e-12)
    assert result.train.value("pcu_tensor_ratio") == pytest.approx(0.25, rel=1e-12)


def test_fields_read_every_few_polls_integrate_on_their_own_grid(tmp_path):
    """GPM every 2nd poll and temperature every 5th (nulls between, one NaN reading) give the exact answer."""
    seconds = np.arange(0, 20.001, 0.1)
    poll = np.arange(seconds.size)
    # each GPM read averages the 0.2 s before it: 80 % up to t = 10 s, 20 % after
    gpm = np.where(poll % 2 == 0, np.where(seconds <= 10.0 + 1e-9, 80.0, 20.0), np.nan)
    gpm[0] = np.nan  # the first GPM sample has nothing to compare with
    temperature = np.where(poll % 5 == 0, 40.0 + seconds, np.nan)  # a linear rise, read every 0.5 s
    temperature[50] = np.nan  # a lost reading is a missing sample, not a zero
    results = []
    for sparse in (True, False):
        builder = TraceBuilder(tmp_path / f"run-{sparse}", batch_rows=37)  # batches cut the grids anywhere
        builder.gpu(0)
        dense_gpm = np.where(seconds <= 10.0 + 1e-9, 80.0, 20.0)
        dense_gpm[0] = np.nan
        _sampled(
            builder,
            0,
            seconds,
            100.0,
            gpm_sm_activity_pct=gpm if sparse else dense_gpm,
            temperature_c=temperature if sparse else 40.0 + seconds,
        )
        _steps(builder, 2, 4.0, 6.0)  # 4 .. 16: six seconds at 80 %, six at 20 %
        results.append(_analyze(builder.write(end_s=20)))
    sparse = results[0].train
    assert sparse.value("pcu_sm_ratio") == pytest.approx(0.5, rel=1e-12)
    assert sparse.figures["pcu_sm_ratio"].coverage == pytest.approx(1.0)
    sparse_gpu, dense_gpu = (
        next(row for row in result.per_gpu.to_pylist() if row["window"] == "train") for result in results
    )
    assert sparse_gpu["temperature_c"] == pytest.approx(50.0, rel=1e-12)  # the mean of 44 .. 56 °C
    for column in ("pcu_sm_ratio", "temperature_c", "coverage_gpm", "aec_watts"):
        assert sparse_gpu[column] == pytest.approx(dense_gpu[column], rel=1e-12), column


def test_energy_counter_cross_check_and_flag(tmp_path):
    for drift, flagged in [(1.0, False), (1.05, True)]:
        builder = TraceBuilder(tmp_path / f"run{drift}")
        builder.gpu(0)
        seconds = np.arange(0, 30.001, 0.1)
        counter = np.where(
            np.isclose(seconds % 1.0, 0) | np.isclose(seconds % 1.0, 1), 250.0 * seconds * 1e3 * drift, np.nan
        )
        _sampled(builder, 0, seconds, 250.0, energy_mj=counter)
        _steps(builder, 5, 2.0, 5.0)
        result = _analyze(builder.write(end_s=30))
        assert result.train.value("energy_counter_j") == pytest.approx(250 * 25 * drift, rel=1e-9)
        difference = result.train.value("energy_counter_diff_pct")
        assert difference == pytest.approx(100 * (1 / drift - 1), abs=1e-6)
        assert any("energy counter" in note for note in result.notes) == flagged


def test_energy_cross_check_reads_the_counter_only_where_it_was_read(tmp_path):
    """A power ramp between two counter readings must not show as a power-versus-counter difference.

    The counter (read every 2 s) is the exact integral of the power samples; training starts at
    t = 3 s, when power jumps from 100 W to 600 W, between the readings at 2 s and 4 s. Interpolating
    the counter along a straight line across that bracket made the check read +1.4 %.
    """
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    seconds = np.arange(0, 40.001, 0.02)
    watts = np.where(seconds < 3.0, 100.0, 600.0)
    builder.power_samples(0, seconds, watts * 1e3)
    energy_j = np.concatenate(([0.0], np.cumsum(0.5 * (watts[1:] + watts[:-1]) * np.diff(seconds))))
    polls = np.arange(0, 40.001, 0.1)
    counter = np.interp(polls, seconds, energy_j) * 1e3  # mJ
    counter[np.round(polls / 0.1).astype(int) % 20 != 0] = np.nan  # read every 2 s
    _sampled(builder, 0, polls, 600.0, energy_mj=counter)
    _steps(builder, 10, 3.0, 3.0)  # 3 .. 33 s
    result = _analyze(builder.write(end_s=40))
    train = result.train
    assert train.value("energy_j") == pytest.approx(600 * 30, rel=1e-9)
    assert train.value("energy_counter_diff_pct") == pytest.approx(0.0, abs=1e-9)
    difference = train.figures["energy_counter_diff_pct"].source
    assert "(28 s)" in difference and "16,800.0 J against 16,800.0 J" in difference  # readings at 4 .. 32 s
    assert train.value("checked_energy_j") == pytest.approx(600 * 28, rel=1e-9), "the two energies compared are shown"
    assert train.value("checked_counter_j") == pytest.approx(600 * 28, rel=1e-9)
    counter = train.figures["energy_counter_j"]
    assert counter.label == "Energy counter, edges interpolated (J)"
    assert counter.coverage == pytest.approx(28 / 30), "its true coverage: the share of the window between its readings"
    assert not any("energy counter" in note for note in result.notes)


def test_gradient_accumulation_tokens_and_loss_per_log_window(tmp_path):
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    _sampled(builder, 0, np.arange(0, 40.001, 0.1), 100.0)
    for step in range(1, 21):
        loss = 3.0 - step / 10 if step % 5 == 0 else None
        builder.step(0, step, step * 1.5, step * 1.5 + 1.0, micro_batches=4, samples=16, tokens=step * 100, loss=loss)
    result = _analyze(builder.write(end_s=40), log_interval=10)
    windows = result.windows.to_pylist()
    assert [row["tokens"] for row in windows] == [sum(range(1, 11)) * 100, sum(range(11, 21)) * 100]
    assert [row["loss"] for row in windows] == pytest.approx([2.0, 1.0])
    assert result.train.value("loss") == pytest.approx(1.0)
    assert [row["tt_tokens_per_param_per_sec"] for row in windows] == pytest.approx([550 / 1e6, 1550 / 1e6])


def test_mfu_from_peak_override(tmp_path):
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0, name="Unknown Accelerator")
    builder.meta["model"] = {
        "total_params": 1_000_000,
        "trainable_params": 1_000,
        "num_hidden_layers": 2,
        "hidden_size": 64,
    }
    _sampled(builder, 0, np.arange(0, 20.001, 0.1), 100.0)
    _steps(builder, 4, 1.0, 2.0, samples=4, tokens=2048)  # 512 tokens a sample
    run_dir = builder.write(end_s=20)
    assert _analyze(run_dir).train.value("mfu") is None
    result = _analyze(run_dir, peak_tflops=1.0)
    per_token = 4 * 1_000_000 + 2 * 1_000 + 12 * 2 * 64 * 512
    assert result.train.value("mfu") == pytest.approx(1024 * per_token / 1e12, rel=1e-9)


def test_inference_window_is_the_union_of_generate_calls(tmp_path):
    builder = TraceBuilder(tmp_path / "run")
    builder.gpu(0)
    _sampled(builder, 0, np.arange(0, 30.001, 0.1), 150.0)
    builder.generate(0, 2.0, 6.0, generated_tokens=400)
    builder.generate(1, 4.0, 8.0, generated_tokens=400)  # overlaps rank 0's call: 2 .. 8 is 6 s
    builder.generate(0, 20.0, 22.0, generated_tokens=200)
    result = _analyze(builder.write(end_s=30))
    assert result.train is None
    inference = result.inference
    assert inference.value("it_tokens_per_sec") == pytest.approx(1000 / 8.0)
    assert inference.value("energy_j") == pytest.approx(150.0 * 8.0, rel=1e-9)
    assert inference.value("it_tokens_per_param_per_sec") == pytest.approx(1000 / 8.0 / 1e6)


def test_the_cross_check_as_the_command_line_shows_it():
    """Console and JSON give the two energies of the compared span beside their difference, and the
    whole-window counter its true coverage (the H100 LoRA trace: the counter read every second)."""
    import json
    import subprocess
    import sys

    from helpers.runs import ROOT

    lora = ROOT / "sample_traces" / "h100-lora-sft" / "trace"

    def effanalyze(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "efftrace.analyzer.cli", str(lora), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    figures = json.loads(effanalyze("--json", "-"))["windows"]["train"]["figures"]
    span, counter = figures["checked_energy_j"]["value"], figures["checked_counter_j"]["value"]
    assert figures["energy_counter_diff_pct"]["value"] == pytest.approx(100 * (span - counter) / counter)
    assert f"{span:,.1f} J against {counter:,.1f} J" in figures["energy_counter_diff_pct"]["source"]
    assert figures["energy_counter_j"]["label"] == "Energy counter, edges interpolated (J)"
    assert 0.9 < figures["energy_counter_j"]["coverage"] < 1.0, "not 100 %: the edges lie between its readings"
    console = effanalyze()
    assert "Energy, compared span (J):" in console and "Counter, compared span (J):" in console
