"""What every value a user gives may be, and the one check both halves run on it.

A setting arrives as a command-line option (``--interval``), a seed variable
(``EFFICIENTLLM_COLLECTION_INTERVAL``) or a Python keyword (``load_run(log_interval=...)``); all
three are checked here against the same range and refused in the same words, naming the setting,
the value and what it accepts. NaN, infinities, zero or negative counts and numbers beyond any
sane setting are refused rather than carried into a trace or a division.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Accepted:
    """A number of ``kind`` (int or float) from ``low`` to ``high``; ``low`` itself only if not ``low_open``."""

    kind: type
    low: float
    high: float
    unit: str
    low_open: bool = False

    def describe(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        low = f"greater than {self.low:g}" if self.low_open else f"from {_number(self.low)}"
        return f"{noun} {low} {'and at most' if self.low_open else 'to'} {_number(self.high)} ({self.unit})"

    def check(self, name: str, raw: object) -> int | float:
        """``raw`` (a string from a command line or the environment, or a Python number) as a checked
        value; raises ValueError naming ``name``, the value and the accepted range."""
        value = self._parse(raw)
        if value is None or not self._inside(value):
            raise ValueError(f"{name}={_shown(raw)} is not accepted: give {self.describe()}")
        return value

    def _parse(self, raw: object) -> int | float | None:
        if isinstance(raw, bool):
            return None
        if isinstance(raw, str):
            text = raw.strip()
            try:
                return int(text) if self.kind is int else float(text)
            except ValueError:
                return None
        if isinstance(raw, int):
            return raw if self.kind is int else float(raw)
        if isinstance(raw, float) and self.kind is float:
            return raw
        if isinstance(raw, float) and raw.is_integer() and math.isfinite(raw):
            return int(raw)  # 10.0 for an integer setting is 10
        return None

    def _inside(self, value: float) -> bool:
        if not math.isfinite(value) or value > self.high:
            return False
        return value > self.low if self.low_open else value >= self.low


def _shown(raw: object) -> str:
    text = str(raw)
    return text if text and not any(character.isspace() for character in text) else repr(text)


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


POLL_INTERVAL_S = Accepted(float, 0.001, 3600.0, "seconds between NVML polls")
LOG_INTERVAL = Accepted(int, 1, 1_000_000_000, "train steps per log window")
HISTORY_SIZE = Accepted(int, 1, 1_000_000_000, "the seed's history size, kept for compatibility")
MAX_GAP_S = Accepted(float, 0.0, 1e6, "seconds between samples bridged as one interval", low_open=True)
PEAK_TFLOPS = Accepted(float, 0.0, 1e6, "dense TFLOP/s per GPU", low_open=True)
WORKERS = Accepted(int, 1, 4096, "worker processes of a local Dask cluster")

TRUE_SPELLINGS = frozenset({"1", "true", "yes", "on", "y", "t"})
FALSE_SPELLINGS = frozenset({"0", "false", "no", "off", "n", "f"})


def parse_switch(raw: str) -> bool | None:
    """``EFFICIENTLLM_METRICS_ENABLED``-style on/off text, any case; None when it is neither."""
    text = raw.strip().lower()
    if text in TRUE_SPELLINGS:
        return True
    if text in FALSE_SPELLINGS:
        return False
    return None


PROFILED_STEPS_MAX = 20
"""The most steps ``--profile-steps`` profiles: a profile grows by megabytes a step and slows every step
it covers, and a few steps already show the kernels and gaps that repeat."""


def parse_step_range(name: str, raw: str) -> tuple[int, int]:
    """``A-B`` (or ``A``: one step) as the first and last optimizer step, 1-based and inclusive;
    raises ValueError naming ``name``, the value and what it accepts."""
    text = raw.strip()
    first_text, dash, last_text = text.partition("-")
    try:
        first = int(first_text)
        last = int(last_text) if dash else first
    except ValueError:
        first = last = 0
    if not 1 <= first <= last or last - first + 1 > PROFILED_STEPS_MAX or last > 1_000_000_000:
        raise ValueError(
            f"{name}={_shown(raw)} is not accepted: give steps A-B, 1 <= A <= B, "
            f"at most {PROFILED_STEPS_MAX} steps (the Trainer's global steps, counted from 1)"
        )
    return first, last
