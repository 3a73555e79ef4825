"""Every value a user gives, through the real command lines and the Python API: refused in one line
naming the setting, the value and the accepted range, exit code 2, before anything is created."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from efftrace import load_run
from efftrace.analyzer.compute.settings import AnalysisSettings
from efftrace.recorder.config import RecorderSettings
from efftrace.recorder.format.ranges import LOG_INTERVAL, MAX_GAP_S, PEAK_TFLOPS, POLL_INTERVAL_S
from helpers.runs import ROOT

LORA = ROOT / "sample_traces" / "h100-lora-sft" / "trace"
BAD_NUMBERS = ["nan", "NaN", "inf", "-inf", "0", "-1", "1e400", "1e30", "abc", "", " ", "0x10", "1,5"]


def effanalyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def effrec(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "efftrace.recorder", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def one_error_line(result: subprocess.CompletedProcess, program: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{program}: error: "), lines
    return lines[0]


OPTION_VALUES = [
    (option, accepted, value)
    for option, accepted in (("--log-interval", LOG_INTERVAL), ("--max-gap", MAX_GAP_S), ("--peak-tflops", PEAK_TFLOPS))
    for value in ["nan", "inf", "0", "-3", "1e9999", "2000000000", "abc"] + (["2.5"] if accepted.kind is int else [])
]


@pytest.mark.parametrize(("option", "accepted", "value"), OPTION_VALUES)
def test_effanalyze_refuses_an_option_value_in_one_line(option, accepted, value):
    line = one_error_line(effanalyze(str(LORA), option, value), "effanalyze")
    assert f"{option}={value}" in line and accepted.describe() in line


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "1e12"])
def test_effanalyze_refuses_a_bad_log_interval_variable_unless_the_option_overrides_it(value):
    line = one_error_line(effanalyze(str(LORA), "-q", env={"EFFICIENTLLM_LOG_INTERVAL": value}), "effanalyze")
    assert f"EFFICIENTLLM_LOG_INTERVAL={value}" in line
    overridden = effanalyze(str(LORA), "-q", "--log-interval", "5", env={"EFFICIENTLLM_LOG_INTERVAL": value})
    assert overridden.returncode == 0, overridden.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-0.5", "0.0001", "1e9", "fast"])
def test_effrec_refuses_a_bad_interval_before_creating_anything(tmp_path, value):
    line = one_error_line(effrec("--out", "runs", "--interval", value, "--", "true", cwd=tmp_path), "effrec")
    assert f"--interval={value}" in line and POLL_INTERVAL_S.describe() in line
    assert not (tmp_path / "runs").exists(), "no run directory before the values are checked"


@pytest.mark.parametrize(
    "variable", ["EFFICIENTLLM_COLLECTION_INTERVAL", "EFFICIENTLLM_HISTORY_SIZE", "EFFICIENTLLM_LOG_INTERVAL"]
)
@pytest.mark.parametrize("value", ["nan", "0", "-2", "1e400", "many"])
def test_effrec_refuses_a_bad_seed_variable_before_the_command_starts(tmp_path, variable, value):
    marker = tmp_path / "started"
    result = effrec("--out", "runs", "--", "touch", str(marker), cwd=tmp_path, env={variable: value})
    line = one_error_line(result, "effrec")
    assert f"{variable}={value}" in line
    assert not marker.exists() and not (tmp_path / "runs").exists(), "training never started"


SPELLINGS = [("0", False), ("False", False), ("off", False), ("NO", False), ("1", True), ("yes", True), ("On", True)]


@pytest.mark.parametrize(("spelling", "enabled"), SPELLINGS)
def test_metrics_enabled_takes_the_usual_spellings(spelling, enabled, caplog):
    assert RecorderSettings.from_env({"EFFICIENTLLM_METRICS_ENABLED": spelling}).enabled is enabled
    assert not caplog.records


def test_metrics_enabled_warns_on_anything_else_and_records(caplog):
    assert RecorderSettings.from_env({"EFFICIENTLLM_METRICS_ENABLED": "maybe"}).enabled is True
    assert "EFFICIENTLLM_METRICS_ENABLED='maybe' is neither true nor false" in caplog.text


def test_effrec_with_metrics_disabled_runs_the_command_untouched(tmp_path):
    result = effrec("--out", "runs", "--", "true", cwd=tmp_path, env={"EFFICIENTLLM_METRICS_ENABLED": "off"})
    assert result.returncode == 0 and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("keyword", "value"),
    [("log_interval", 0), ("log_interval", math.nan), ("log_interval", 10**12), ("log_interval", "ten"),
     ("max_gap_s", -1.0), ("max_gap_s", math.inf), ("peak_tflops", 0), ("peak_tflops", math.nan),
     ("power_source", "mains")],
)  # fmt: skip
def test_the_api_raises_value_error_in_the_same_words(keyword, value):
    with pytest.raises(ValueError) as raised:
        load_run(LORA, **{keyword: value})
    assert str(raised.value).startswith(f"{keyword}=")
    cli_option = {"log_interval": "--log-interval", "max_gap_s": "--max-gap", "peak_tflops": "--peak-tflops"}
    if keyword in cli_option and isinstance(value, (int, float)) and not isinstance(value, bool):
        words = str(raised.value).split(" is not accepted", 1)[1]
        assert words in one_error_line(effanalyze(str(LORA), cli_option[keyword], str(value)), "effanalyze")


def test_the_recorder_api_refuses_a_bad_interval(tmp_path):
    from efftrace.recorder import Recorder

    with pytest.raises(ValueError, match=r"interval_s=0 is not accepted"):
        Recorder(out=tmp_path, interval_s=0)
    assert not any(tmp_path.iterdir())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(10**20), max_value=10**20),
        st.text(max_size=8),
        st.sampled_from(BAD_NUMBERS),
    )
)
def test_any_value_either_checks_or_is_refused_in_words(value):
    """Whatever is given, the settings are valid or a ValueError names the setting: never anything else."""
    for keyword in ("log_interval", "max_gap_s", "peak_tflops"):
        try:
            made = AnalysisSettings(**{keyword: value})
        except ValueError as error:
            assert str(error).startswith(f"{keyword}=") and "give " in str(error)
        else:
            checked = getattr(made, keyword)
            assert math.isfinite(checked) and checked > 0


def test_meta_json_is_standard_json_even_with_non_finite_values(tmp_path):
    from efftrace.recorder import meta

    path = tmp_path / "meta.json"
    meta.write_json_atomically(path, {"a": math.nan, "b": [math.inf, 1.0], "c": {"d": -math.inf}})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [None, 1.0], "c": {"d": None}}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    option=st.sampled_from(["--log-interval", "--max-gap", "--peak-tflops", "EFFICIENTLLM_LOG_INTERVAL"]),
    value=st.one_of(
        st.sampled_from(BAD_NUMBERS),
        st.text(alphabet="0123456789.-+eEinfatINFA ", min_size=1, max_size=8),
        st.integers(min_value=-(10**12), max_value=10**12).map(str),
    ),
)
def test_any_argument_or_variable_value_is_analysed_or_refused_in_one_line(option, value):
    """Through the command line itself (in process): exit 0, or exit 2 with one line naming the setting."""
    from click.testing import CliRunner

    from efftrace.analyzer.cli import main

    if option.startswith("--"):
        result = CliRunner().invoke(main, [str(LORA), "-q", f"{option}={value}"])
    else:
        result = CliRunner().invoke(main, [str(LORA), "-q"], env={option: value})
    assert (result.exit_code in (0, 2) and result.exception is None) or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{option}=" in lines[0] and "give " in lines[0], lines
