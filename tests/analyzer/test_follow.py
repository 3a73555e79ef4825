"""``--follow``'s windows, computed while the run is written, against the analysis after it."""

from __future__ import annotations

import math
import time

import pytest

from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.compute.settings import AnalysisSettings
from efftrace.analyzer.follow import Follower
from efftrace.analyzer.read.loader import open_run
from helpers.live_runs import LiveRun

COUNTER_KEYS = ("energy_counter_j", "energy_counter_diff", "coverage_counter")
"""A live window is shown before the energy counter's next reading (every 2 s in effrec); only these differ."""


def follow(run_dir, settings, poll_s=0.05):
    follower = Follower(open_run(run_dir), settings)
    shown = []
    while True:
        ended = follower.finished()
        shown += follower.poll()
        if ended:
            break
        time.sleep(poll_s)
    follower.close()
    return shown


def test_each_live_window_has_the_figures_of_the_analysis_after_the_run(tmp_path):
    writer = LiveRun(tmp_path / "run", steps=30)
    settings = AnalysisSettings(log_interval=5)
    writer.start()
    shown = follow(tmp_path / "run", settings)
    writer.join()
    final_result = analyze(open_run(tmp_path / "run"), settings)
    after = final_result.windows.to_pylist()
    assert [window.number for window in shown] == [1, 2, 3, 4, 5, 6]
    for window in shown:
        (live,) = window.result.windows.to_pylist()
        final = after[window.number - 1]
        assert live["step"] == final["step"] == 5 * window.number
        for key, value in final.items():
            if key in ("window", *COUNTER_KEYS) or not isinstance(value, float) or math.isnan(value):
                continue
            assert live[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert all(window.latency_s < 3.0 for window in shown), [window.latency_s for window in shown]
    live_alerts = [(alert.window, alert.kind, alert.message) for window in shown for alert in window.alerts]
    assert live_alerts == [(alert["window"], alert["kind"], alert["message"]) for alert in final_result.alerts]
    assert {kind for _, kind, _ in live_alerts} == {"oom_risk"}, "memory fills up; nothing else is wrong"


def test_follow_holds_only_the_window_being_recorded(tmp_path):
    """Memory stays bounded: after each window, what came before it (and its margin) is let go."""
    writer = LiveRun(tmp_path / "run", steps=30)
    follower = Follower(open_run(tmp_path / "run"), AnalysisSettings(log_interval=5))
    follower.hold_ns = 0  # as if the next window needed nothing before its own start
    writer.start()
    most_held = 0
    while not follower.finished():
        follower.poll()
        held = sum(held.batch.num_rows for batches in follower.tail.held.values() for held in batches)
        most_held = max(most_held, held)
        time.sleep(0.05)
    writer.join()
    follower.close()
    total = open_run(tmp_path / "run").gpu_samples().num_rows
    assert most_held < total / 3, (most_held, total)  # six windows: at most about two held at once
