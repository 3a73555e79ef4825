"""Step times from CUDA events: exact against a simulated GPU that runs behind the CPU.

The fake GPU keeps its own timeline: queued work runs back to back, an event is reached when the
work queued before it is done, and only a wait (``synchronize``) moves the host's clock up to it.
So a test can check that the recorded times are the GPU's, that nothing waits per step, and that
steps are written in order once the GPU has passed them.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from efftrace.recorder.in_training import gpu_clock, hf_callback, torch_probe

SYNC_LATENCY_NS = 7_000  # a wait returns this long after the GPU reached the event


class FakeHost:
    """The host's clocks, moved only by the test (CPU work) and by waits for the GPU."""

    def __init__(self) -> None:
        self.now_ns = 1_700_000_000_000_000_000
        self.waits = 0

    def time_ns(self) -> int:
        return self.now_ns

    def monotonic(self) -> float:
        return self.now_ns / 1e9


class FakeCuda:
    def __init__(self, host: FakeHost) -> None:
        self.host = host
        self.busy_until_ns = host.now_ns
        gpu = self

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                assert enable_timing, "elapsed_time needs timing events"
                self.at_ns: int | None = None

            def record(self) -> None:
                self.at_ns = max(gpu.busy_until_ns, gpu.host.now_ns)

            def query(self) -> bool:
                return gpu.host.now_ns >= self.at_ns

            def synchronize(self) -> None:
                if gpu.host.now_ns < self.at_ns:
                    gpu.host.now_ns = self.at_ns + SYNC_LATENCY_NS
                    gpu.host.waits += 1

            def elapsed_time(self, end: Event) -> float:
                assert self.query() and end.query(), "CUDA refuses elapsed_time on events not yet reached"
                return (end.at_ns - self.at_ns) / 1e6

        self.Event = Event

    def queue(self, work_ns: int) -> None:
        """Kernels launched now: they run after the work already queued."""
        self.busy_until_ns = max(self.busy_until_ns, self.host.now_ns) + work_ns


@pytest.fixture
def gpu(monkeypatch):
    host = FakeHost()
    monkeypatch.setattr(gpu_clock, "time", host)
    cuda = FakeCuda(host)
    return cuda


def test_marks_read_the_gpus_time_without_waiting(gpu):
    clock = gpu_clock.GpuClock(gpu)
    first = clock.mark()  # the first mark takes an anchor: one wait
    waits = gpu.host.waits
    gpu.queue(250_000_000)
    second = clock.mark()
    gpu.host.now_ns += 1_000_000  # the CPU goes on; the GPU is still busy
    assert gpu.host.waits == waits
    assert clock.passed(first) and not clock.passed(second)
    gpu.host.now_ns += 300_000_000
    assert clock.passed(second)
    assert clock.wall_ns(second) - clock.wall_ns(first) == 250_000_000
    assert clock.wall_ns(second) == second.event.at_ns  # the anchor was taken on an idle GPU: no wait


def test_reading_an_unreached_mark_waits_for_it(gpu):
    clock = gpu_clock.GpuClock(gpu)
    start = clock.mark()
    gpu.queue(40_000_000)
    end = clock.mark()
    assert clock.wall_ns(end) - clock.wall_ns(start) == 40_000_000
    assert gpu.host.now_ns == end.event.at_ns + SYNC_LATENCY_NS


def test_a_new_anchor_every_interval_and_old_marks_keep_theirs(gpu):
    clock = gpu_clock.GpuClock(gpu, anchor_interval_s=30.0)
    early = clock.mark()
    gpu.host.now_ns += 31_000_000_000
    gpu.queue(5_000_000)  # busy: the new anchor must wait for this work
    waits = gpu.host.waits
    late = clock.mark()
    assert gpu.host.waits == waits + 1
    assert late.anchor is not early.anchor
    # The anchor's wall time includes the wait's return latency: every later mark is read that late.
    assert clock.wall_ns(late) - late.event.at_ns == SYNC_LATENCY_NS
    assert clock.wall_ns(early) == early.event.at_ns


def trainer_state(step: int) -> SimpleNamespace:
    return SimpleNamespace(global_step=step, num_input_tokens_seen=step * 1000)


class ListLog:
    rank = 0

    def __init__(self) -> None:
        self.rows: list[tuple[str, int, int, dict]] = []

    def write(self, kind: str, start_ns: int, end_ns: int, **fields) -> None:
        self.rows.append((kind, start_ns, end_ns, fields))

    def flush(self) -> None:
        pass


def test_callback_writes_gpu_step_times_in_order_once_the_gpu_passed_them(gpu, monkeypatch):
    monkeypatch.setattr(torch_probe, "gpu_clock", lambda: gpu_clock.GpuClock(gpu))
    log = ListLog()
    callback = hf_callback.EffTraceCallback(event_log=log, cuda_sync=True)
    work_ns = [200_000_000, 250_000_000, 180_000_000, 220_000_000, 210_000_000]
    cpu_ns = [5_000_000, 5_000_000, 600_000_000, 5_000_000, 5_000_000]  # step 3's CPU waits on data
    written_before, expected = [], []
    for step, (work, cpu) in enumerate(zip(work_ns, cpu_ns, strict=True), start=1):
        callback.on_step_begin(None, trainer_state(step - 1), None)
        written_before.append(len(log.rows))
        begin_on_gpu = max(gpu.busy_until_ns, gpu.host.now_ns)
        gpu.host.now_ns += cpu
        gpu.queue(work)
        expected.append((begin_on_gpu, gpu.busy_until_ns))
        callback.on_step_end(None, trainer_state(step), None)
    assert gpu.host.waits == 0, "recording steps must never wait for the GPU"
    # Steps are held until the GPU passed them: none before step 3's long CPU wait, two after.
    assert written_before == [0, 0, 0, 2, 2]
    callback.on_train_end(None, trainer_state(5), None)
    assert [fields["step"] for _, _, _, fields in log.rows] == [1, 2, 3, 4, 5]
    assert all(fields["synced"] for _, _, _, fields in log.rows)
    assert [(start, end) for _, start, end, _ in log.rows] == expected
    latencies = [end - start for _, start, end, _ in log.rows]
    # A busy GPU's steps last exactly their work; step 1 and step 3 began on an idle GPU, so they
    # also hold the GPU's wait for the CPU (its first launch; step 3's data).
    assert latencies[1] == work_ns[1] and latencies[3:] == work_ns[3:]
    assert latencies[0] == cpu_ns[0] + work_ns[0] and latencies[2] > work_ns[2] + 100_000_000
    assert [fields["tokens"] for _, _, _, fields in log.rows] == [1000] * 5


def test_without_a_gpu_or_with_no_sync_steps_use_the_hosts_clock(monkeypatch):
    monkeypatch.setattr(torch_probe, "gpu_clock", lambda: pytest.fail("--no-sync must not touch the GPU clock"))
    log = ListLog()
    callback = hf_callback.EffTraceCallback(event_log=log, cuda_sync=False)
    callback.on_step_begin(None, trainer_state(0), None)
    callback.on_step_end(None, trainer_state(1), None)
    callback.on_train_end(None, trainer_state(1), None)
    ((kind, start, end, fields),) = log.rows
    assert kind == "train_step" and fields["synced"] is False and end >= start
