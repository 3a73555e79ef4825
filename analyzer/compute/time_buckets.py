"""Where the time went: every second of the job, per rank, in exactly one bucket.

The buckets come from the events each rank recorded: its train steps, its evaluation passes and
``generate()`` calls; the time between them is named by where it lies (before the rank's first
step: start-up; between its first and last step: between steps; after its last event: the idle
tail). Where spans overlap, the more specific one wins (a step over an evaluation over a checkpoint
save over a generation),
so the buckets always sum to the window's length. A step's span is what the recorder measured: from
its start to the moment the GPU finished it where CUDA events timed it, so "train step" includes
time the GPU waits inside the step, and "between steps" is the host's time from one step's end to
the next one's start (fetching the batch, logging), checkpoint saves apart (the recorder times
``Trainer._save_checkpoint``).

Everything is vectorised over the elementary segments between all span edges of a rank, and each
window's seconds come from running sums: linear in the events, whatever the number of windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from efftrace.analyzer.compute.catalog import TIME_BUCKETS
from efftrace.recorder.format.columns import to_numpy
from efftrace.recorder.format.units import NS_PER_S

BUCKETS = tuple(TIME_BUCKETS)
"""The buckets' keys, in the order a job passes through them (the catalog gives their titles)."""

_SPAN_KINDS = (
    ("train_step", "train_step"),
    ("eval", "evaluation"),
    ("checkpoint", "checkpoint"),
    ("generate", "generation"),
)
"""Event kind → bucket, most specific first: where spans overlap, the first one listed wins."""


@dataclass(frozen=True)
class Buckets:
    """Seconds per (rank, bucket) over each window: ``seconds[w, r, b]``."""

    windows: list[str]  # "job", "train", then "log 1", "log 2", ...
    ranks: list[int]
    seconds: np.ndarray  # float64 [window, rank, bucket]
    window_seconds: np.ndarray  # each window's length

    def as_dict(self) -> dict:
        """The job and train windows: their length, and per rank the seconds in each bucket. The log
        windows, which may be tens of thousands: one list per rank and bucket, a value per window."""
        whole = {
            window: {
                "seconds": float(self.window_seconds[w]),
                "ranks": {
                    str(rank): {bucket: float(self.seconds[w, r, b]) for b, bucket in enumerate(BUCKETS)}
                    for r, rank in enumerate(self.ranks)
                },
            }
            for w, window in enumerate(self.windows)
            if not window.startswith("log ")
        }
        logs = [w for w, window in enumerate(self.windows) if window.startswith("log ")]
        whole["log_windows"] = {
            "seconds": self.window_seconds[logs].tolist(),
            "ranks": {
                str(rank): {bucket: self.seconds[logs, r, b].tolist() for b, bucket in enumerate(BUCKETS)}
                for r, rank in enumerate(self.ranks)
            },
        }
        return whole


def time_buckets(events: pa.Table, names: list[str], edges: np.ndarray) -> Buckets:
    """Bucket every rank's time over each window: ``names[i]`` spans ``edges[i]`` ([start, end] in ns)."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    rank_of = to_numpy(events.column("rank")).astype(np.int64) if events.num_rows else np.zeros(0, np.int64)
    starts = to_numpy(events.column("start_ns")).astype(np.int64) if events.num_rows else rank_of
    ends = to_numpy(events.column("end_ns")).astype(np.int64) if events.num_rows else rank_of
    encoded = events.column("kind").combine_chunks().dictionary_encode()  # strings compared once, not per row
    codes = to_numpy(encoded.indices).astype(np.int64) if events.num_rows else rank_of
    names_seen = encoded.dictionary.to_pylist()
    code_of = {kind: names_seen.index(kind) if kind in names_seen else -1 for kind, _ in _SPAN_KINDS}
    spanning = np.isin(codes, [code for code in code_of.values() if code >= 0])
    ranks = sorted(set(rank_of[spanning].tolist()))
    seconds = np.zeros((len(names), len(ranks), len(BUCKETS)))
    order = np.argsort(rank_of, kind="stable")  # each rank's events together: one sort, not a scan per rank
    bounds = np.searchsorted(rank_of[order], [(rank, rank + 1) for rank in ranks])
    for r, (low, high) in enumerate(bounds):
        mine = order[low:high]
        mine = mine[ends[mine] >= starts[mine]]
        spans = {}
        for kind, bucket in _SPAN_KINDS:
            chosen = mine[codes[mine] == code_of[kind]]
            spans[bucket] = (starts[chosen], ends[chosen])
        seconds[:, r, :] = _rank_buckets(spans, edges)
    return Buckets(names, ranks, seconds, (edges[:, 1] - edges[:, 0]) / NS_PER_S)


def _rank_buckets(spans: dict[str, tuple[np.ndarray, np.ndarray]], windows: np.ndarray) -> np.ndarray:
    """One rank's seconds per (window, bucket): ``spans`` are its event spans by bucket."""
    points = [windows.ravel()] + [edge for pair in spans.values() for edge in pair]
    cuts = np.sort(np.concatenate(points), kind="stable")  # runs of sorted edges: timsort merges them in ~O(n)
    cuts = cuts[np.concatenate(([True], cuts[1:] != cuts[:-1]))]  # distinct, as np.unique, without its hashing
    left, right = cuts[:-1], cuts[1:]
    middle = left + (right - left) / 2  # each elementary segment lies wholly inside or outside every span
    label = np.full(middle.size, -1)
    for bucket, (start, end) in reversed(list(spans.items())):  # the most specific span is written last
        covered = _inside(middle, start, end)
        label = np.where(covered, BUCKETS.index(bucket), label)
    active = [pair for pair in spans.values() if pair[0].size]
    first_step = spans["train_step"][0].min() if spans["train_step"][0].size else None
    last_step = spans["train_step"][1].max() if spans["train_step"][1].size else None
    last_activity = max(int(end.max()) for _, end in active) if active else None
    gap = label < 0
    if first_step is not None and last_step is not None:
        label = np.where(gap & (middle < first_step), BUCKETS.index("startup"), label)
        label = np.where(gap & (middle > first_step) & (middle < last_step), BUCKETS.index("between_steps"), label)
    elif active:  # no train step (an inference run): before the first call is start-up
        first = min(int(start.min()) for start, _ in active)
        label = np.where(gap & (middle < first), BUCKETS.index("startup"), label)
    after = (middle > last_activity) if last_activity is not None else np.ones(middle.size, bool)
    label = np.where((label < 0) & after, BUCKETS.index("idle_tail"), label)
    label = np.where(label < 0, BUCKETS.index("between_steps"), label)  # between calls of an inference run
    lengths = (right - left) / NS_PER_S
    # Every window edge is a cut, so each window is a contiguous run of segments: per bucket, the
    # running sum of its segments' lengths gives any window's seconds by one subtraction.
    running = np.zeros((len(BUCKETS), cuts.size))
    for bucket in range(len(BUCKETS)):
        np.cumsum(np.where(label == bucket, lengths, 0.0), out=running[bucket, 1:])
    first = np.searchsorted(cuts, windows[:, 0])
    last = np.searchsorted(cuts, windows[:, 1])
    return (running[:, last] - running[:, first]).T


def _inside(times: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Whether each time lies inside any of the spans (which may overlap)."""
    if starts.size == 0:
        return np.zeros(times.size, bool)
    opened = np.searchsorted(np.sort(starts, kind="stable"), times, side="right")
    closed = np.searchsorted(np.sort(ends, kind="stable"), times, side="left")
    return opened > closed
