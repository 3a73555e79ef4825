"""Pointing effanalyze at the folder around a run: it names the run to give instead."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from helpers.runs import ROOT

LORA_SAMPLE = ROOT / "sample_traces" / "h100-lora-sft"


def error_line(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


def test_a_sample_folder_points_to_its_trace():
    assert f"the run inside it is {LORA_SAMPLE / 'trace'}" in error_line(str(LORA_SAMPLE))


def test_a_folder_of_runs_lists_them_and_suggests_the_latest(tmp_path):
    runs = tmp_path / "effrec_runs"
    for name in ("20261201T100000Z-a", "20261201T110000Z-b", "20261201T120000Z-c"):
        shutil.copytree(LORA_SAMPLE / "trace", runs / name)
    line = error_line(str(runs))
    assert "a folder of 3 runs: 20261201T100000Z-a, 20261201T110000Z-b, 20261201T120000Z-c" in line
    assert f"effanalyze {runs / '20261201T120000Z-c'}" in line


def test_a_training_output_dir_points_to_the_trace_that_recorded_it(tmp_path):
    output = tmp_path / "saves" / "lora"
    output.mkdir(parents=True)
    (output / "trainer_state.json").write_text("{}")
    run = tmp_path / "effrec_runs" / "20261201T100000Z-lora"
    shutil.copytree(LORA_SAMPLE / "trace", run)
    meta = json.loads((run / "meta.json").read_text())
    meta["cwd"] = str(tmp_path)
    meta["ranks"][0]["output_dir"] = "saves/lora"  # as the Trainer's args recorded it, relative to the job's cwd
    (run / "meta.json").write_text(json.dumps(meta))
    line = error_line(str(output), cwd=tmp_path)
    assert f"a training output directory, not a trace; the trace that recorded it is {run}" in line


def test_a_training_output_dir_that_no_run_names_says_so(tmp_path):
    (tmp_path / "trainer_state.json").write_text("{}")
    assert "a training output directory, not a trace (no run nearby names it)" in error_line(
        str(tmp_path), cwd=tmp_path
    )


def test_any_other_folder_is_not_a_run(tmp_path):
    assert "meta.json missing: this is not an efftrace run directory" in error_line(str(tmp_path))
