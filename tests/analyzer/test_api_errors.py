"""The notebook API's mistakes: a KeyError listing what is valid, an ImportError naming the extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

from efftrace import load_run
from helpers.runs import ROOT

LORA = ROOT / "sample_traces" / "h100-lora-sft" / "trace"
PREDICT = ROOT / "sample_traces" / "h100-predict" / "trace"


def test_an_unknown_figure_key_lists_the_windows_figures():
    run = load_run(LORA)
    assert run.figure("aec_watts") > 0
    with pytest.raises(KeyError) as raised:
        run.figure("aec_wats")
    assert "'aec_wats'" in str(raised.value) and "aec_watts" in str(raised.value) and "al_seconds" in str(raised.value)


def test_a_window_the_run_does_not_have_lists_those_it_has():
    with pytest.raises(KeyError) as raised:
        load_run(PREDICT).figure("al_seconds", window="train")
    assert "'inference'" in str(raised.value) and "'job'" in str(raised.value)


def test_a_missing_pandas_names_the_extra_to_install():
    script = f"""
import sys
sys.modules["pandas"] = None  # as where pandas is not installed
from efftrace import load_run
run = load_run({str(LORA)!r})
assert run.figure("aec_watts") > 0, "figures need no pandas"
try:
    run.summary()
except ImportError as error:
    print(error)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "pip install 'efftrace[analyze]'" in result.stdout
