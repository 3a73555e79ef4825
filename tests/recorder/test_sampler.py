"""The sampler's logic against an in-process fake NVML."""

from __future__ import annotations

import itertools
import socket
import time

import pytest

from efftrace.recorder.config import (
    CLOCK_REASONS_INTERVAL_S,
    ENERGY_INTERVAL_S,
    GPM_INTERVAL_S,
    TEMPERATURE_INTERVAL_S,
    polls_per,
)
from efftrace.recorder.format import schema
from efftrace.recorder.sampling.gpus import visible_devices
from efftrace.recorder.sampling.host import HostSampling
from efftrace.recorder.sampling.sampler import GpuSampler, WatchedGpu
from helpers.fake_nvml import NVML_ERROR_LIBRARY_NOT_FOUND, NVML_ERROR_UNKNOWN, FakeGpu, FakeMig, FakeNvml
from helpers.runs import TESTS, read_stream


def sample(tmp_path, nvml, seconds=0.6, interval=0.05, visible=None):
    warnings: list[str] = []
    sampling = HostSampling(tmp_path, interval, 1000, visible, nvml=nvml, warn=warnings.append)
    host = sampling.start()
    time.sleep(seconds)
    stats = sampling.stop()
    return host, stats, warnings


def gpu_table(tmp_path):
    return read_stream(tmp_path / schema.gpu_samples_file(socket.gethostname()))


def power_table(tmp_path):
    return read_stream(tmp_path / schema.power_samples_file(socket.gethostname()))


def test_rows_per_poll_and_values_are_raw(tmp_path):
    nvml = FakeNvml([FakeGpu("GPU-aaaa"), FakeGpu("GPU-bbbb", power_mw=100_000)])
    host, stats, warnings = sample(tmp_path, nvml)
    table = gpu_table(tmp_path)
    assert table.schema.equals(schema.GPU_SAMPLES_SCHEMA)
    assert stats["polls"] >= 5 and table.num_rows == 2 * stats["polls"]
    rows = table.to_pylist()
    first = next(row for row in rows if row["gpu"] == 0)
    assert first["power_instant_mw"] == 300_007 and first["power_avg_mw"] == 300_000
    assert first["mem_used_bytes"] == 10 << 30 and first["mem_total_bytes"] == 80 << 30
    assert (first["util_gpu_pct"], first["util_mem_pct"], first["sm_clock_mhz"]) == (90, 40, 1980)
    assert {gpu["uuid"] for gpu in host["gpus"]} == {"GPU-aaaa", "GPU-bbbb"}
    assert all(gpu["gpm_supported"] for gpu in host["gpus"])
    assert warnings == []
    times = table["time_ns"].to_pylist()
    assert abs(times[0] - time.time_ns()) < 5e9


def test_gpm_and_temperature_fill_every_nth_row_on_one_grid(tmp_path):
    """GPM every GPM_INTERVAL_S and temperature every TEMPERATURE_INTERVAL_S, counted in polls."""
    interval = 0.05
    nvml = FakeNvml([FakeGpu("GPU-a")])
    sample(tmp_path, nvml, seconds=1.2, interval=interval)
    rows = gpu_table(tmp_path).to_pylist()
    gpm_every = polls_per(GPM_INTERVAL_S, interval)
    temperature_every = polls_per(TEMPERATURE_INTERVAL_S, interval)
    assert (gpm_every, temperature_every) == (4, 10)
    assert rows[0]["gpm_sm_activity_pct"] is None  # a GPM metric needs two samples
    for poll, row in enumerate(rows[1:], start=1):
        gpm = (row["gpm_sm_activity_pct"], row["gpm_tensor_activity_pct"], row["gpm_dram_bw_pct"])
        assert gpm == ((80.0, 60.0, 30.0) if poll % gpm_every == 0 else (None, None, None)), poll
    temperatures = [row["temperature_c"] for row in rows]
    assert all((value is not None) == (poll % temperature_every == 0) for poll, value in enumerate(temperatures))
    assert nvml.calls["nvmlGpmSampleGet"] == len(range(0, len(rows), gpm_every))


def test_energy_counter_read_at_most_once_per_energy_interval(tmp_path):
    nvml = FakeNvml([FakeGpu("GPU-a")])
    _, stats, _ = sample(tmp_path, nvml, seconds=1.3 * ENERGY_INTERVAL_S, interval=0.02)
    energy = [row["energy_mj"] for row in gpu_table(tmp_path).to_pylist()]
    assert ENERGY_INTERVAL_S >= 1.0, "the counter costs ~4 ms a call: never more than once a second"
    assert stats["polls"] > 30 * ENERGY_INTERVAL_S
    assert nvml.calls["nvmlDeviceGetTotalEnergyConsumption"] == 2
    assert sum(value is not None for value in energy) == 2


def test_power_buffer_is_harvested_without_duplicates(tmp_path):
    gpu = FakeGpu("GPU-a")
    now_us = time.time_ns() // 1000
    gpu.buffer = [(now_us - 2_000_000 + 20_000 * i, 250_000 + i) for i in range(100)]  # 2 s at 50 Hz
    sample(tmp_path, FakeNvml([gpu]), seconds=1.2, interval=0.05)
    table = power_table(tmp_path)
    times = table["time_ns"].to_pylist()
    assert table.num_rows == 100, "every buffered sample once, however often the buffer was read"
    assert times == sorted(times) and len(set(times)) == 100
    assert times[0] == gpu.buffer[0][0] * 1000
    assert table["power_mw"].to_pylist() == [mw for _, mw in gpu.buffer]


def test_unsupported_field_is_null_and_warned_once(tmp_path):
    gpu = FakeGpu("GPU-a", unsupported={"nvmlDeviceGetFieldValues"}, gpm=False)
    _, _, warnings = sample(tmp_path, FakeNvml([gpu]))
    rows = gpu_table(tmp_path).to_pylist()
    assert all(row["power_instant_mw"] is None for row in rows)
    assert all(row["power_avg_mw"] == 300_000 for row in rows)
    assert all(row["gpm_sm_activity_pct"] is None for row in rows)
    assert len([w for w in warnings if "power_instant" in w]) == 1


def test_transient_failure_recovers(tmp_path):
    gpu = FakeGpu("GPU-a")
    nvml = FakeNvml([gpu])
    gpu.failing["nvmlDeviceGetMemoryInfo"] = NVML_ERROR_UNKNOWN
    warnings: list[str] = []
    sampler_dir = tmp_path
    sampling = HostSampling(sampler_dir, 0.02, 1000, None, nvml=nvml, warn=warnings.append)
    sampling.start()
    time.sleep(0.2)
    gpu.failing.clear()
    time.sleep(0.2)
    sampling.stop()
    used = [row["mem_used_bytes"] for row in gpu_table(tmp_path).to_pylist()]
    assert used[0] is None and used[-1] == 10 << 30
    assert len(warnings) == 1


def test_lost_gpu_stops_its_rows_not_the_others(tmp_path):
    gpus = [FakeGpu("GPU-a"), FakeGpu("GPU-b")]
    nvml = FakeNvml(gpus)
    warnings: list[str] = []
    sampling = HostSampling(tmp_path, 0.02, 1000, None, nvml=nvml, warn=warnings.append)
    sampling.start()
    time.sleep(0.2)
    gpus[1].lost = True
    time.sleep(0.2)
    stats = sampling.stop()
    table = gpu_table(tmp_path).to_pylist()
    per_gpu = [sum(row["gpu"] == index for row in table) for index in (0, 1)]
    assert per_gpu[0] == stats["polls"] and 0 < per_gpu[1] < per_gpu[0]
    assert len([w for w in warnings if "lost" in w]) == 1


def test_no_nvml_means_events_only_with_a_warning(tmp_path):
    host, stats, warnings = sample(tmp_path, FakeNvml([], init_error=NVML_ERROR_LIBRARY_NOT_FOUND), seconds=0.05)
    assert host["gpus"] == [] and "nvml_error" in host
    assert "polls" not in stats
    assert len(warnings) == 1 and "events only" in warnings[0]
    assert not list(tmp_path.glob("*.arrow"))


def test_sampler_thread_failure_is_contained(tmp_path):
    class Exploding(FakeNvml):
        def nvmlDeviceGetTemperature(self, handle, sensor):
            raise RuntimeError("boom")

    _, stats, warnings = sample(tmp_path, Exploding([FakeGpu("GPU-a")]), seconds=0.1)
    assert stats["error"] == "RuntimeError: boom"
    assert any("sampler stopped" in warning for warning in warnings)


@pytest.mark.parametrize(
    ("visible", "expected"),
    [
        (None, [0, 1, 2, 3]),
        ("2,0", [2, 0]),
        ("GPU-cc", [2]),
        ("GPU-dddd,1", [3, 1]),
        ("1,7,2", [1]),  # CUDA stops at the first invalid entry
        ("", []),
        ("-1", []),
        ("GPU-", []),  # ambiguous prefix
    ],
)
def test_cuda_visible_devices_maps_to_physical_gpus(visible, expected):
    nvml = FakeNvml([FakeGpu(f"GPU-{letter * 4}") for letter in "abcd"])
    assert [device.number for device in visible_devices(nvml, visible)] == expected


def test_sampler_only_polls_visible_gpus(tmp_path):
    nvml = FakeNvml([FakeGpu("GPU-a"), FakeGpu("GPU-b"), FakeGpu("GPU-c")])
    host, _, _ = sample(tmp_path, nvml, seconds=0.1, visible="2")
    assert [gpu["index"] for gpu in host["gpus"]] == [2]
    assert set(gpu_table(tmp_path)["gpu"].to_pylist()) == {2}


def test_poll_spacing_follows_the_interval(tmp_path):
    nvml = FakeNvml([FakeGpu("GPU-a")])
    sample(tmp_path, nvml, seconds=1.0, interval=0.1)
    times = gpu_table(tmp_path)["time_ns"].to_pylist()
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(times)]
    assert 8 <= len(times) <= 13
    assert sorted(gaps)[len(gaps) // 2] == pytest.approx(0.1, abs=0.02)


def test_gpm_request_reuses_two_samples_in_time_order():
    nvml = FakeNvml([FakeGpu("GPU-a")])

    class Sink:
        def append(self, row):
            self.last = row

        def extend(self, columns):
            pass

    sink = Sink()
    sampler = GpuSampler(nvml, [WatchedGpu(0, 0, 0, gpm_supported=True)], sink, sink, 0.01)
    for _ in range(4 * sampler.gpm_every + 1):
        sampler.poll_once()
        time.sleep(0.001)
    assert sink.last[-4:-1] == (80.0, 60.0, 30.0)  # the fake asserts sample1 precedes sample2


def test_recording_never_imports_pandas(tmp_path):
    """pa.array() would import pandas when installed; the recorder builds arrays from numpy buffers."""
    import subprocess
    import sys

    script = f"""
import sys, time
sys.path.insert(0, {str(TESTS)!r})
from helpers.fake_nvml import FakeGpu, FakeNvml
import efftrace.recorder.cli, efftrace.recorder.in_training.events
from efftrace.recorder.sampling.host import HostSampling
from efftrace.recorder.in_training.events import EventLog
sampling = HostSampling({str(tmp_path)!r}, 0.02, 5, None, nvml=FakeNvml([FakeGpu("GPU-a")]))
sampling.start()
log = EventLog({str(tmp_path)!r}, 0, 5)
for step in range(12):
    log.write("train_step", step, step + 1, step=step, name=None, loss=1.0, synced=True)
time.sleep(0.3)
sampling.stop()
log.close()
assert "pandas" not in sys.modules, "pandas was imported"
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr


def _mig_host() -> FakeNvml:
    """GPU 0 whole; GPU 1 split into MIG instances in slots 0 and 2 (slot 1 empty)."""
    split = FakeGpu(
        "GPU-bbbb",
        power_mw=400_000,
        mig=[FakeMig("MIG-b0", gpu_instance_id=1), None, FakeMig("MIG-b2", gpu_instance_id=5, sm_activity=20.0)],
    )
    return FakeNvml([FakeGpu("GPU-aaaa"), split])


@pytest.mark.parametrize(
    ("visible", "expected"),
    [("MIG-b2", [202]), ("MIG-b0,MIG-b2", [200, 202]), ("MIG-b9", []), ("0,MIG-b0", [0, 200]), (None, [0, 1])],
)
def test_cuda_visible_devices_maps_mig_uuids_to_instances_of_their_gpu(visible, expected):
    assert [device.number for device in visible_devices(_mig_host(), visible)] == expected


def test_mig_instance_is_sampled_with_its_parents_power_and_its_own_memory_and_activity(tmp_path):
    host, _, warnings = sample(tmp_path, _mig_host(), seconds=0.5, interval=0.02, visible="MIG-b2")
    (gpu,) = host["gpus"]
    assert gpu["index"] == 202 and gpu["uuid"] == "MIG-b2" and gpu["memory_total_bytes"] == 40 << 30
    assert gpu["mig"] == {"parent_index": 1, "parent_uuid": "GPU-bbbb", "slot": 2, "gpu_instance_id": 5}
    assert gpu["gpm_supported"] and gpu["power_limit_mw"] == 700_000
    table = gpu_table(tmp_path)
    assert set(table["gpu"].to_pylist()) == {202}
    assert set(table["power_avg_mw"].to_pylist()) == {400_000}, "the parent GPU's power"
    assert set(table["mem_used_bytes"].to_pylist()) == {4 << 30}, "the instance's memory"
    assert table["util_gpu_pct"].null_count == table.num_rows, "NVML gives no utilisation for an instance"
    assert {value for value in table["gpm_sm_activity_pct"].to_pylist() if value is not None} == {20.0}
    assert any("utilization" in warning and "not supported" in warning for warning in warnings)


@pytest.mark.parametrize(("module_mw", "module_power", "scope"), [(None, False, "gpu"), (900_000, True, "module")])
def test_power_scope_is_recorded_per_gpu(tmp_path, module_mw, module_power, scope):
    host, _, _ = sample(tmp_path, FakeNvml([FakeGpu("GPU-a", module_power_mw=module_mw)]), seconds=0.1)
    (gpu,) = host["gpus"]
    assert (gpu["module_power"], gpu["energy_scope"], gpu["mig"]) == (module_power, scope, None)


def test_clock_event_reasons_on_the_temperature_polls_and_the_maximum_clock_once(tmp_path):
    """The reasons are NVML's mask as given (here the software power cap, 0x4), read every
    CLOCK_REASONS_INTERVAL_S on the temperature's polls; the maximum SM clock is a fact of the GPU,
    in the host manifest."""
    capped, plain = FakeGpu("GPU-a", clock_event_reasons=0x4), FakeGpu("GPU-b")
    host, _stats, warnings = sample(tmp_path, FakeNvml([capped, plain]), seconds=1.2)
    rows = gpu_table(tmp_path).to_pylist()
    assert CLOCK_REASONS_INTERVAL_S == TEMPERATURE_INTERVAL_S
    for row in rows:
        assert (row["clock_event_reasons"] is None) == (row["temperature_c"] is None)
    assert {row["clock_event_reasons"] for row in rows if row["gpu"] == 0} == {0x4, None}
    assert {row["clock_event_reasons"] for row in rows if row["gpu"] == 1} == {0, None}
    assert [gpu["max_sm_clock_mhz"] for gpu in host["gpus"]] == [1980, 1980]
    assert warnings == []


def test_older_bindings_are_asked_for_throttle_reasons_and_a_gpu_without_them_records_null(tmp_path):
    class OlderNvml(FakeNvml):
        """Bindings before NVML 12.4: the same call under its old name."""

        def __getattribute__(self, name):
            if name == "nvmlDeviceGetCurrentClocksEventReasons":
                raise AttributeError(name)
            return super().__getattribute__(name)

        def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle):
            return 0x20

    (tmp_path / "older").mkdir()
    (tmp_path / "none").mkdir()
    sample(tmp_path / "older", OlderNvml([FakeGpu("GPU-a")]))
    older = read_stream(tmp_path / "older" / schema.gpu_samples_file(socket.gethostname()))
    assert set(older["clock_event_reasons"].to_pylist()) == {0x20, None}
    gpu = FakeGpu("GPU-a", unsupported={"nvmlDeviceGetCurrentClocksEventReasons"})
    _, _, warnings = sample(tmp_path / "none", FakeNvml([gpu]))
    rows = read_stream(tmp_path / "none" / schema.gpu_samples_file(socket.gethostname())).to_pylist()
    assert all(row["clock_event_reasons"] is None for row in rows) and rows[0]["power_avg_mw"] == 300_000
    assert len([w for w in warnings if "clock_event_reasons" in w]) == 1


def test_clock_event_reasons_keep_the_low_32_bits(tmp_path):
    """Every reason NVML defines is below 0x800; a bit above the 32 kept would not fit the column."""
    sample(tmp_path, FakeNvml([FakeGpu("GPU-a", clock_event_reasons=(1 << 40) | 0x4)]), seconds=0.3)
    assert set(gpu_table(tmp_path)["clock_event_reasons"].to_pylist()) <= {0x4, None}
