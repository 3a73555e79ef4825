"""Settings from the environment: the seed's ``EFFICIENTLLM_*`` variables and our own hand-off.

``effrec`` passes what every training process needs through ``EFFTRACE_*`` variables, because
the processes it starts (torchrun workers, dataloader workers) only share an environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from efftrace.recorder.format.ranges import (
    HISTORY_SIZE,
    LOG_INTERVAL,
    POLL_INTERVAL_S,
    Accepted,
    parse_step_range,
    parse_switch,
)
from efftrace.recorder.format.units import DEFAULT_LOG_INTERVAL, ENV_LOG_INTERVAL
from efftrace.recorder.log import warn

# The seed integration's variables (their names and meaning are kept).
ENV_ENABLED = "EFFICIENTLLM_METRICS_ENABLED"
ENV_INTERVAL = "EFFICIENTLLM_COLLECTION_INTERVAL"
ENV_HISTORY_SIZE = "EFFICIENTLLM_HISTORY_SIZE"

# effrec -> training processes.
ENV_RUN_DIR = "EFFTRACE_RUN_DIR"
ENV_CUDA_SYNC = "EFFTRACE_CUDA_SYNC"
ENV_RECORDER_PID = "EFFTRACE_RECORDER_PID"
"""effrec's own process id, so that a training process can tell when effrec is gone."""
ENV_PROFILE_STEPS = "EFFTRACE_PROFILE_STEPS"
"""``effrec --profile-steps A-B``: the steps every rank runs under the PyTorch profiler."""

DEFAULT_INTERVAL_S = 0.1
DEFAULT_HISTORY_SIZE = 1000
FLUSH_INTERVAL_S = 2.0
"""No recorded row waits longer than this in memory, so a killed job loses at most this much."""
ENERGY_INTERVAL_S = 2.0
"""nvmlDeviceGetTotalEnergyConsumption costs ~4.4 ms of CPU a call on H100, more than the other nine
reads of ten polls together; it only cross-checks the power integral, so every 2 s is enough (measured
with bench/gpu/poll_profile.py: 12.2 ms of sampler CPU a second at 1 s and 0.5 s below, 9.4 at 2 s)."""
POWER_BUFFER_INTERVAL_S = 1.0
"""The driver keeps ~2.4 s of 20-ms power samples on H100: harvest each second (0.64 ms of CPU a call)."""
POWER_FLUSH_INTERVAL_S = POWER_BUFFER_INTERVAL_S
"""The power-buffer file is flushed as often as the buffer is harvested, so a harvest never waits a
second flush interval on disk: a reader following the run (``effanalyze --follow``) then finds the
samples past a window's end at most ~2 s after it, as it finds the other streams' (2.5 s with its look)."""
GPM_INTERVAL_S = 0.2
"""A GPM sample costs ~300 us of CPU at a 0.1-s spacing on H100, a third of a poll (bench/gpu/
sampler_cost_under_load.sh). Its metrics are exact averages over the interval between two samples,
so sampling every 0.2 s loses no activity, only time resolution below 0.2 s."""
TEMPERATURE_INTERVAL_S = 0.5
"""Temperature moves over seconds; reading it every 0.5 s saves ~60 us a poll and stays well inside
the analyzer's default gap bound of 1 s."""
CLOCK_REASONS_INTERVAL_S = TEMPERATURE_INTERVAL_S
"""NVML's clock-event reasons (67 us of CPU a call on the H200) are a state at the instant of the poll; the
analyzer wants the share of each log window they held, which readings every 0.5 s estimate without bias
(20 in a 10-s window), at a fifth of the sampler's cost of reading them every poll. Read on the
temperature's polls, they share its sample grid in the analyzer. There they cost the 24-h benchmark's
analysis about 5-10 % more CPU, as they did read every poll: that cost is per log window, not per reading."""


def polls_per(seconds: float, interval_s: float) -> int:
    """How many polls of ``interval_s`` make ``seconds`` (at least one): a rationed read's cadence."""
    return max(1, round(seconds / interval_s))


def _setting(env: Mapping[str, str], name: str, accepted: Accepted, default: float, strict: bool) -> float:
    """The variable's value, checked; unset or empty: ``default``. A bad value raises (``strict``,
    effrec before it starts anything) or is warned about and replaced by ``default`` (inside a
    training process, which must never fail because of the recorder)."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return accepted.check(name, raw)
    except ValueError as error:
        if strict:
            raise
        warn(f"{error}; using {default}")
        return default


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = parse_switch(raw)
    if value is None:
        spellings = "1/0, true/false, yes/no, on/off"
        warn(f"{name}={raw!r} is neither true nor false ({spellings}); taken as {str(default).lower()}")
        return default
    return value


@dataclass(frozen=True)
class RecorderSettings:
    """What the seed's variables say, with our defaults where they are unset."""

    enabled: bool
    interval_s: float
    history_size: int
    log_interval: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, strict: bool = False) -> RecorderSettings:
        """The seed's variables; ``strict`` raises ValueError on a bad one instead of warning."""
        env = os.environ if env is None else env
        return cls(
            enabled=_switch(env, ENV_ENABLED, True),
            interval_s=float(_setting(env, ENV_INTERVAL, POLL_INTERVAL_S, DEFAULT_INTERVAL_S, strict)),
            history_size=int(_setting(env, ENV_HISTORY_SIZE, HISTORY_SIZE, DEFAULT_HISTORY_SIZE, strict)),
            log_interval=int(_setting(env, ENV_LOG_INTERVAL, LOG_INTERVAL, DEFAULT_LOG_INTERVAL, strict)),
        )


def cuda_sync_enabled(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return parse_switch(env.get(ENV_CUDA_SYNC, "1")) is not False


def profiled_steps(env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """The steps to profile (``--profile-steps``), or None; a bad value is warned about and ignored
    (inside a training process, which must never fail because of the recorder)."""
    env = os.environ if env is None else env
    raw = env.get(ENV_PROFILE_STEPS, "")
    if not raw.strip():
        return None
    try:
        return parse_step_range(ENV_PROFILE_STEPS, raw)
    except ValueError as error:
        warn(f"{error}; no steps are profiled")
        return None
