"""Log windows: consecutive groups of L steps, window k from step (k-1)L+1's start to step kL's end."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from efftrace.analyzer.compute.steps import log_windows, train_steps
from efftrace.recorder.format import schema


def _events(steps: list[int], seconds_per_step: float = 1.0, ranks: int = 1) -> pa.Table:
    rows = [
        {
            "kind": "train_step",
            "rank": rank,
            "step": step,
            "start_ns": int((step - 1) * seconds_per_step * 1e9) + rank * 1_000,
            "end_ns": int((step - 0.1) * seconds_per_step * 1e9) + rank * 2_000,
        }
        for step in steps
        for rank in range(ranks)
    ]
    columns = {name: [row.get(name) for row in rows] for name in schema.EVENTS_SCHEMA.names}
    return pa.table(columns, schema=schema.EVENTS_SCHEMA)


def test_steps_group_by_the_interval_and_report_at_the_last_step():
    windows = log_windows(train_steps(_events(list(range(1, 26)))), 10)
    assert windows.count == 3
    assert windows.last_step.tolist() == [10, 20, 25]
    assert windows.complete.tolist() == [True, True, False], "a trailing partial window is marked"
    assert windows.first.tolist() == [0, 10, 20]
    assert windows.start_ns[1] == int(10 * 1e9) and windows.end_ns[1] == int(19.9 * 1e9)


def test_windows_follow_step_numbers_not_positions():
    """A resumed run starting at step 31 fills windows 31-40, 41-50 (not 31-40 by position only)."""
    windows = log_windows(train_steps(_events(list(range(31, 46)))), 10)
    assert windows.last_step.tolist() == [40, 45]
    assert windows.first.tolist() == [0, 10]


def test_a_window_spans_every_rank():
    windows = log_windows(train_steps(_events([1, 2, 3, 4], ranks=3)), 2)
    assert windows.count == 2
    assert windows.start_ns[0] == 0, "the earliest rank's start"
    assert windows.end_ns[0] == int(1.9 * 1e9) + 2 * 2_000, "the latest rank's end"


def test_an_interval_of_one_is_one_window_per_step():
    windows = log_windows(train_steps(_events([1, 2, 3])), 1)
    assert windows.last_step.tolist() == [1, 2, 3] and windows.complete.all()


def test_no_steps_no_windows():
    windows = log_windows(train_steps(_events([])), 10)
    assert windows.count == 0 and np.asarray(windows.first).size == 0


def test_a_rank_number_far_beyond_the_rows_is_merged_without_a_table_that_large():
    """Ranks are counted through a dense table only when it is no larger than the rows: a damaged
    rank of 2^31 - 1 would otherwise allocate 16 GiB."""
    events = _events([1, 2, 3], ranks=1)
    ranks = np.array(events.column("rank").to_pylist())
    ranks[-1] = np.iinfo(np.int32).max
    events = events.set_column(events.schema.get_field_index("rank"), "rank", pa.array(ranks, pa.int32()))
    steps = train_steps(events)
    assert steps.rank_ids.tolist() == [0, np.iinfo(np.int32).max]
    assert steps.rank_mean_duration_s.tolist() == [0.9, 0.9]
