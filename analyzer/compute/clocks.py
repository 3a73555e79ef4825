"""How far each host's clock is from the reference host's, estimated from the ranks' step ends.

Every rank of a data-parallel job leaves an optimizer step only once the gradient all-reduce has
finished everywhere, so the ends of one step on different hosts lie within the collective's
latency and the ranks' own jitter of each other. A host whose clock runs ahead shows it as step
ends that are consistently late. For each other host, the estimate is the median over steps of
(its ranks' median end - the reference host's), and its uncertainty the standard error of that
median, from the median absolute deviation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from efftrace.recorder.format.columns import from_numpy, to_arrow, to_numpy

CORRECT_ABOVE_NS = 1_000_000
"""Offsets below 1 ms are left alone: NTP keeps the hosts of one cluster within about a millisecond,
which is below anything a step figure resolves, and correcting what is mostly noise only adds its
own error. Above it (and beyond 3 uncertainties), every time of that host is corrected."""
CONFIDENT_SIGMAS = 3.0
MIN_SHARED_STEPS = 20
"""Fewer steps seen on both hosts than this give no estimate: below it, the median absolute deviation
that the uncertainty comes from is itself too unsure (with 5 steps it can read a third of the true
spread), and a job of any length has hundreds of steps."""
_MAD_TO_SIGMA = 1.4826  # a normal distribution's standard deviation per median absolute deviation
_MEDIAN_SE = 1.2533  # the standard error of a median per (sigma / sqrt(n)), for normal noise
RESOLUTION_NS = 1_000.0
"""No uncertainty is stated below a microsecond: step ends are read from CUDA events and host clocks
no finer than that, so a spread of zero means the ends were not told apart, not a perfect estimate."""


@dataclass(frozen=True)
class ClockOffset:
    """One host's clock against the reference host's: add ``-offset_ns`` to its times to align them."""

    host: str
    reference: str
    offset_ns: float
    uncertainty_ns: float
    steps: int

    @property
    def corrected(self) -> bool:
        size = abs(self.offset_ns)
        return size > CORRECT_ABOVE_NS and size > CONFIDENT_SIGMAS * self.uncertainty_ns


def host_offsets(
    codes: np.ndarray, names: list[str], steps: np.ndarray, ends_ns: np.ndarray, reference: str
) -> list[ClockOffset]:
    """Each host's offset from ``reference``, from one row per (rank, step) event: its host (a code,
    the index of its name in ``names``), step and end.

    A host with ranks on fewer than :data:`MIN_SHARED_STEPS` of the reference's steps gets no estimate.
    """
    order = np.argsort(codes, kind="stable")  # each host's rows together: one sort, not a scan per host
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    per_host = {
        host: _median_end_per_step(steps[order[low:high]], ends_ns[order[low:high]])
        for host, low, high in zip(names, bounds[:-1], bounds[1:], strict=True)
        if high > low
    }
    if reference not in per_host:
        return []
    reference_steps, reference_ends = per_host[reference]
    found = []
    for host, (host_steps, host_ends) in sorted(per_host.items()):
        if host == reference:
            continue
        shared, at_host, at_reference = np.intersect1d(host_steps, reference_steps, return_indices=True)
        if shared.size < MIN_SHARED_STEPS:
            continue
        differences = (host_ends[at_host] - reference_ends[at_reference]).astype(np.float64)
        offset = float(np.median(differences))
        spread = _MAD_TO_SIGMA * float(np.median(np.abs(differences - offset)))
        uncertainty = max(_MEDIAN_SE * spread / np.sqrt(shared.size), RESOLUTION_NS)
        found.append(ClockOffset(str(host), reference, offset, uncertainty, int(shared.size)))
    return found


def _median_end_per_step(steps: np.ndarray, ends_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step, the median end over the host's ranks, in whole int64 nanoseconds (vectorised: the
    middle one or two of each step's sorted ends)."""
    order = np.lexsort((ends_ns, steps))
    steps, ends = steps[order], ends_ns[order].astype(np.int64)
    unique, first, counts = np.unique(steps, return_index=True, return_counts=True)
    low, high = ends[first + (counts - 1) // 2], ends[first + counts // 2]
    return unique, low + (high - low) // 2


def clock_notes(offsets: list[ClockOffset], median_step_s: float | None) -> list[str]:
    """A note per host whose clock was corrected, and a warning where the offset exceeds a median step:
    uncorrected, every step figure across those hosts would have been wrong by more than a step."""
    notes = []
    for offset in offsets:
        said = (
            f"host {offset.host}'s clock is {offset.offset_ns / 1e6:+.3f} ms ± {offset.uncertainty_ns / 1e6:.3f} ms "
            f"(1 s.e.) from host {offset.reference}'s (median over {offset.steps} step ends)"
        )
        if median_step_s is not None and abs(offset.offset_ns) > median_step_s * 1e9:
            notes.append(f"{said}: more than a median step ({median_step_s:.3g} s); its times were corrected")
        elif offset.corrected:
            notes.append(f"{said}; its times were corrected")
    return notes


def _host_codes(events: pa.Table) -> tuple[np.ndarray, list[str]]:
    """The events' host column as small integer codes and the host of each code (no per-row Python)."""
    encoded = pc.dictionary_encode(events.column("host")).combine_chunks()
    return to_numpy(encoded.indices).astype(np.int64), [str(host) for host in encoded.dictionary.to_pylist()]


def estimate(events: pa.Table) -> list[ClockOffset]:
    """Every host's offset from the host of the lowest rank, from the run's ``train_step`` events."""
    if events.num_rows == 0:
        return []
    needed = events.select(["kind", "rank", "step", "end_ns", "host"])  # filtering every column costs 4x more
    steps_only = needed.filter(pc.and_(pc.equal(needed.column("kind"), to_arrow(["train_step"], pa.string())[0]),
                                        pc.is_valid(needed.column("step"))))  # fmt: skip
    if steps_only.num_rows == 0:
        return []
    codes, names = _host_codes(steps_only)
    if len(names) < 2:
        return []
    ranks = to_numpy(steps_only.column("rank")).astype(np.int64)
    reference = names[int(codes[np.argmin(ranks)])]
    steps = to_numpy(steps_only.column("step")).astype(np.int64)
    return host_offsets(codes, names, steps, to_numpy(steps_only.column("end_ns")), reference)


def aligned_events(events: pa.Table, offsets: list[ClockOffset]) -> pa.Table:
    """The events with each corrected host's times moved onto the reference host's clock."""
    moved = [offset for offset in offsets if offset.corrected]
    if not moved or events.num_rows == 0:
        return events
    codes, names = _host_codes(events)
    shift = np.zeros(len(names), dtype=np.int64)
    for offset in moved:
        if offset.host in names:
            shift[names.index(offset.host)] = round(offset.offset_ns)
    per_row = shift[codes]
    for column in ("start_ns", "end_ns"):
        at = events.schema.get_field_index(column)
        values = to_numpy(events.column(column)).astype(np.int64) - per_row
        events = events.set_column(at, column, from_numpy(values))
    return events
