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
    """Seconds per (rank, bucket) over each window: ``seconds[w, r, b]``. The whole-run windows (job,
    train) come first, by name; the log windows after them are numbered from 1, not named (there may
    be tens of thousands)."""

    whole_run: list[str]  # "job", "train"
    ranks: list[int]
    seconds: np.ndarray  # float64 [window, rank, bucket]
    window_seconds: np.ndarray  # each window's length

    @property
    def log_windows(self) -> slice:
        """Where the log windows are among the windows: after the whole-run ones, to the end."""
        return slice(len(self.whole_run), self.seconds.shape[0])

    def as_dict(self) -> dict:
        """The job and train windows: their length, and per rank the seconds in each bucket. The log
        windows, which may be tens of thousands: one list per rank and bucket, a value per window."""
        logs = self.log_windows
        whole = {
            self.whole_run[w]: {
                "seconds": float(self.window_seconds[w]),
                "ranks": {
                    str(rank): {bucket: float(self.seconds[w, r, b]) for b, bucket in enumerate(BUCKETS)}
                    for r, rank in enumerate(self.ranks)
                },
            }
            for w in range(logs.start)
        }
        whole["log_windows"] = {
            "seconds": self.window_seconds[logs].tolist(),
            "ranks": {
                str(rank): {bucket: self.seconds[logs, r, b].tolist() for b, bucket in enumerate(BUCKETS)}
                for r, rank in enumerate(self.ranks)
            },
        }
        return whole


def time_buckets(events: pa.Table, whole_run: list[str], edges: np.ndarray) -> Buckets:
    """Bucket every rank's time over each window: ``whole_run[i]`` spans ``edges[i]`` ([start, end] in ns),
    and the rows of ``edges`` after them are the log windows, in order."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    rank_of = to_numpy(events.column("rank")).astype(np.int64) if events.num_rows else np.zeros(0, np.int64)
    starts = to_numpy(events.column("start_ns")).astype(np.int64) if events.num_rows else rank_of
    ends = to_numpy(events.column("end_ns")).astype(np.int64) if events.num_rows else rank_of
    encoded = events.column("kind").combine_chunks().dictionary_encode()  # strings compared once, not per row
    codes = to_numpy(encoded.indices).astype(np.int64) if events.num_rows else rank_of
    names_seen = encoded.dictionary.to_pylist()
    code_of = {kind: names_seen.index(kind) if kind in names_seen else -1 for kind, _ in _SPAN_KINDS}
    spanning = np.isin(codes, [code for code in code_of.values() if code >= 0])
    spanning_ranks = rank_of[spanning]
    if spanning_ranks.size and spanning_ranks.min() >= 0:  # ranks are small: counted, not sorted
        ranks = np.flatnonzero(np.bincount(spanning_ranks)).tolist()
    else:
        ranks = np.unique(spanning_ranks).tolist()
    seconds = np.zeros((edges.shape[0], len(ranks), len(BUCKETS)))
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
    return Buckets(whole_run, ranks, seconds, (edges[:, 1] - edges[:, 0]) / NS_PER_S)


def _rank_buckets(spans: dict[str, tuple[np.ndarray, np.ndarray]], windows: np.ndarray) -> np.ndarray:
    """One rank's seconds per (window, bucket): ``spans`` are its event spans by bucket.

    The distinct edges of the windows and spans cut time into elementary segments, each wholly
    inside or outside every span; segment k runs from cut k to cut k + 1. A span covers the segments
    from its start's cut to the one before its end's, so how many spans of a kind cover each segment
    is a running sum of +1 at starts and -1 at ends: one sort of the edges places them all, no
    search per segment.
    """
    edges = [windows.ravel()] + [edge for pair in spans.values() for edge in pair]
    joined = np.concatenate(edges)
    order = np.argsort(joined, kind="stable")  # runs of sorted edges: timsort merges them in ~O(n)
    ordered = joined[order]
    distinct = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    cuts = ordered[distinct]
    cut_of = np.empty(joined.size, np.int64)  # where each edge is among the cuts
    cut_of[order] = np.cumsum(distinct) - 1
    segments = cuts.size - 1
    label = np.full(segments, -1, np.int64)
    offset = windows.size
    placed = {}  # each bucket's spans as cut indices: where its starts and its ends were put among the cuts
    for bucket, (start, _) in spans.items():
        placed[bucket] = cut_of[offset : offset + start.size], cut_of[offset + start.size : offset + 2 * start.size]
        offset += 2 * start.size
    for bucket, (start_at, end_at) in reversed(list(placed.items())):  # the most specific span is written last
        depth = np.bincount(start_at, minlength=cuts.size) - np.bincount(end_at, minlength=cuts.size)
        label[np.cumsum(depth)[:-1] > 0] = BUCKETS.index(bucket)
    active = [at for at in placed.values() if at[0].size]
    steps_start, steps_end = placed["train_step"]
    gap = label < 0
    if steps_start.size:  # before the first step: start-up; between the first and the last: between steps
        first_step, last_step = int(steps_start.min()), int(steps_end.max())
        label[:first_step][gap[:first_step]] = BUCKETS.index("startup")
        label[first_step:last_step][gap[first_step:last_step]] = BUCKETS.index("between_steps")
    elif active:  # no train step (an inference run): before the first call is start-up
        first = min(int(start_at.min()) for start_at, _ in active)
        label[:first][gap[:first]] = BUCKETS.index("startup")
    after = max(int(end_at.max()) for _, end_at in active) if active else 0  # after the last activity: idle tail
    label[after:][label[after:] < 0] = BUCKETS.index("idle_tail")
    label[label < 0] = BUCKETS.index("between_steps")  # between calls of an inference run
    lengths = np.diff(cuts) / NS_PER_S
    # Every window edge is a cut, so each window is a contiguous run of segments: per bucket, the
    # running sum of its segments' lengths gives any window's seconds by one subtraction.
    running = np.zeros((len(BUCKETS), cuts.size))
    for bucket in np.flatnonzero(np.bincount(label, minlength=len(BUCKETS))):  # buckets that hold time
        np.cumsum(np.where(label == bucket, lengths, 0.0), out=running[bucket, 1:])
    first, last = cut_of[: windows.size : 2], cut_of[1 : windows.size : 2]
    return (running[:, last] - running[:, first]).T
