"""From per-rank events to per-step rows and the windows of DESIGN.md (train, log, inference).

A step's latency is (latest end - earliest start) over the ranks that ran it; its tokens and
samples are summed over ranks. Everything here is grouping with numpy over the events table,
which holds one row per step and rank, so it is small next to the GPU samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from efftrace.recorder.format.columns import from_numpy, to_arrow, to_numpy

NS = 1e9


def _column(table: pa.Table, name: str, dtype: type = np.float64) -> np.ndarray:
    """A column as numpy, nulls as NaN (for float) so sums can tell 'unknown' from zero."""
    return to_numpy(table.column(name)).astype(dtype)


@dataclass(frozen=True)
class Steps:
    """One row per optimizer step, all ranks merged; arrays are aligned and sorted by step."""

    step: np.ndarray  # int64
    start_ns: np.ndarray  # earliest start over ranks
    end_ns: np.ndarray  # latest end over ranks
    ranks: np.ndarray  # how many ranks reported the step
    samples: np.ndarray  # float64, NaN where no rank said
    tokens: np.ndarray
    loss: np.ndarray  # as the Trainer logged it; NaN on steps it did not log
    end_skew_s: np.ndarray  # latest end - earliest end over ranks: how long the others waited
    allocated_bytes: np.ndarray  # torch allocator, mean over ranks
    reserved_bytes: np.ndarray
    peak_bytes: np.ndarray  # max over ranks
    rank_ids: np.ndarray  # the ranks seen, sorted
    rank_mean_duration_s: np.ndarray  # each rank's own mean step duration
    repeated: int  # (rank, step) pairs seen more than once, e.g. two Trainer.train() calls
    backwards: int = 0  # events left out because they end before they start (the wall clock stepped back)
    gpu_timed: int = 0  # step events whose times the GPU's own (CUDA) events gave, not the host's clock
    events: int = 0  # step events merged into these steps

    @property
    def count(self) -> int:
        return int(self.step.size)

    @property
    def latency_s(self) -> np.ndarray:
        return (self.end_ns - self.start_ns) / NS


def _group_reduce(ufunc: np.ufunc, values: np.ndarray, first: np.ndarray) -> np.ndarray:
    return ufunc.reduceat(values, first) if values.size else values


def _nan_sum_groups(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    known = ~np.isnan(values)
    sums = _group_reduce(np.add, np.where(known, values, 0.0), first)
    counts = _group_reduce(np.add, known.astype(np.int64), first)
    return np.where(counts > 0, sums, np.nan)


def _nan_mean_groups(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    known = ~np.isnan(values)
    counts = _group_reduce(np.add, known.astype(np.int64), first)
    sums = _group_reduce(np.add, np.where(known, values, 0.0), first)
    return np.divide(sums, counts, out=np.full(sums.size, np.nan), where=counts > 0)


def kind_is(events: pa.Table, kind: str) -> pa.ChunkedArray:
    """Rows of one event kind (the kind as an Arrow scalar: a Python str would make pyarrow import pandas)."""
    return pc.equal(events.column("kind"), to_arrow([kind], pa.string())[0])


def _rows_where(table: pa.Table, keep: pa.ChunkedArray | pa.Array) -> pa.Table:
    """``table.filter(keep)``, or the table itself when every row is kept: a filter copies every
    column, and a run's events are commonly all train steps, all numbered, already in order."""
    return table if pc.all(keep, skip_nulls=False).as_py() is True else table.filter(keep)


def train_step_events(events: pa.Table) -> pa.Table:
    """The ``train_step`` events that carry a step number, of every rank, as recorded."""
    table = _rows_where(events, kind_is(events, "train_step"))
    return _rows_where(table, pc.is_valid(table.column("step")))


def train_steps(events: pa.Table) -> Steps:
    """Merge the ``train_step`` events of every rank into one row per step.

    The rows are chosen and ordered as numpy indices and each column is read once through them: a
    table filter and take would copy every column (strings too), which on 256 ranks' events cost
    more than the rest of this together.
    """
    numbered = pc.and_(kind_is(events, "train_step"), pc.is_valid(events.column("step")))
    rows = np.flatnonzero(to_numpy(numbered).astype(bool)) if events.num_rows else np.zeros(0, np.int64)
    start_all, end_all = _column(events, "start_ns", np.int64), _column(events, "end_ns", np.int64)
    forwards = end_all[rows] >= start_all[rows]
    backwards = int(forwards.size - np.count_nonzero(forwards))
    rows = rows[forwards]
    step_all = _column(events, "step", np.float64)  # nulls as NaN, never among the chosen rows
    rank_all = _column(events, "rank", np.int64)
    rows = rows[np.lexsort((rank_all[rows], step_all[rows]))]

    def column(name: str, dtype: type = np.float64) -> np.ndarray:
        return _column(events, name, dtype)[rows]

    step = step_all[rows].astype(np.int64)
    rank = rank_all[rows]
    start = start_all[rows]
    end = end_all[rows]
    first = np.flatnonzero(np.concatenate(([True], step[1:] != step[:-1])))[: step.size]
    same_rank_again = (step[1:] == step[:-1]) & (rank[1:] == rank[:-1])

    duration = (end - start) / NS
    # ranks are small integers, counted directly (no sort) where a table of them is no larger than the
    # rows; a damaged or odd rank (2^31) would make that table gigabytes, so those are sorted instead
    if rank.size and rank.min() >= 0 and rank.max() < rank.size:
        per_rank_count = np.bincount(rank)
        ranks_seen = np.flatnonzero(per_rank_count)
        per_rank_total = np.bincount(rank, weights=duration)[ranks_seen]
        per_rank_count = per_rank_count[ranks_seen]
    else:
        ranks_seen, rank_of_row = np.unique(rank, return_inverse=True)
        per_rank_total = np.bincount(rank_of_row, weights=duration, minlength=ranks_seen.size)
        per_rank_count = np.bincount(rank_of_row, minlength=ranks_seen.size)
    distinct_rank = np.concatenate(([True], ~same_rank_again))[: rank.size].astype(np.int64)
    return Steps(
        step=step[first],
        start_ns=_group_reduce(np.minimum, start, first),
        end_ns=_group_reduce(np.maximum, end, first),
        ranks=_group_reduce(np.add, distinct_rank, first),
        samples=_nan_sum_groups(column("samples"), first),
        tokens=_nan_sum_groups(column("tokens"), first),
        loss=_nan_mean_groups(column("loss"), first),
        end_skew_s=(_group_reduce(np.maximum, end, first) - _group_reduce(np.minimum, end, first)) / NS,
        allocated_bytes=_nan_mean_groups(column("mem_allocated_bytes"), first),
        reserved_bytes=_nan_mean_groups(column("mem_reserved_bytes"), first),
        peak_bytes=_group_reduce(np.fmax, column("mem_peak_bytes"), first),
        rank_ids=ranks_seen,
        rank_mean_duration_s=np.divide(per_rank_total, np.maximum(per_rank_count, 1)),
        repeated=int(np.count_nonzero(same_rank_again)),
        backwards=backwards,
        gpu_timed=int(np.count_nonzero(column("synced") == 1.0)),
        events=int(step.size),
    )


@dataclass(frozen=True)
class LogWindows:
    """Consecutive groups of L steps: window k runs from the start of step (k-1)L+1 to the end of kL."""

    first: np.ndarray  # index into Steps of each window's first step
    last_step: np.ndarray  # the step the window is reported at
    complete: np.ndarray  # bool: the window holds its L-th step (a trailing partial one does not)
    start_ns: np.ndarray
    end_ns: np.ndarray

    @property
    def count(self) -> int:
        return int(self.first.size)


def log_windows(steps: Steps, interval: int) -> LogWindows:
    if steps.count == 0:
        empty = np.zeros(0, dtype=np.int64)
        return LogWindows(empty, empty, empty.astype(bool), empty, empty)
    number = (np.maximum(steps.step, 1) - 1) // interval
    first = np.flatnonzero(np.concatenate(([True], number[1:] != number[:-1])))
    last = np.concatenate((first[1:], [steps.count])) - 1
    return LogWindows(
        first=first,
        last_step=steps.step[last],
        complete=(steps.step[last] % interval) == 0,
        start_ns=np.minimum.reduceat(steps.start_ns, first),
        end_ns=np.maximum.reduceat(steps.end_ns, first),
    )


@dataclass(frozen=True)
class Generations:
    """The ``generate`` events, and the inference window: the union of their spans."""

    start_ns: np.ndarray
    end_ns: np.ndarray
    generated_tokens: np.ndarray  # float64, NaN where unknown
    prompt_tokens: np.ndarray
    samples: np.ndarray
    union_start_ns: np.ndarray  # disjoint, sorted spans covering every generate call
    union_end_ns: np.ndarray

    @property
    def count(self) -> int:
        return int(self.start_ns.size)

    @property
    def union_seconds(self) -> float:
        return float(np.sum(self.union_end_ns - self.union_start_ns) / NS)


def generations(events: pa.Table) -> Generations:
    table = events.filter(kind_is(events, "generate"))
    table = table.take(from_numpy(np.argsort(_column(table, "start_ns", np.int64), kind="stable")))
    start = _column(table, "start_ns", np.int64)
    end = _column(table, "end_ns", np.int64)
    union_start, union_end = merge_spans(start, end)
    return Generations(
        start_ns=start,
        end_ns=end,
        generated_tokens=_column(table, "generated_tokens"),
        prompt_tokens=_column(table, "tokens"),
        samples=_column(table, "samples"),
        union_start_ns=union_start,
        union_end_ns=union_end,
    )


def merge_spans(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of spans sorted by start, as disjoint spans (overlapping calls on several ranks merge)."""
    if start.size == 0:
        return start, end
    reach = np.maximum.accumulate(end)
    opens = np.concatenate(([True], start[1:] > reach[:-1]))
    first = np.flatnonzero(opens)
    return start[first], np.maximum.reduceat(end, first)
