"""Both command lines as a new user meets them: --version, examples in --help that exist, and the
exit code effrec prints being the one it returns."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from efftrace import __version__
from helpers.runs import ROOT

TOOLS = {"effrec": "efftrace.recorder", "effanalyze": "efftrace.analyzer"}


def run(module: str, *args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.parametrize("tool", TOOLS)
def test_version(tool):
    result = run(TOOLS[tool], "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"{tool} {__version__}"


@pytest.mark.parametrize(("tool", "args"), [("effrec", ["--help"]), ("effanalyze", ["RUN_DIR", "--help"])])
def test_every_file_an_example_in_help_names_exists(tool, args):
    text = run(TOOLS[tool], *args).stdout
    named = re.findall(r"(?:examples|sample_traces)/[\w./-]+", text)
    assert named, f"{tool} --help shows examples"
    for path in named:
        assert (ROOT / path).exists(), f"{tool} --help names {path}, which does not exist"


def test_effrec_prints_the_exit_code_it_returns(tmp_path):
    result = run("efftrace.recorder", "--out", str(tmp_path), "--", "sh", "-c", "kill -TERM $$", cwd=tmp_path)
    assert result.returncode == 128 + 15
    assert "(exit code 143)" in result.stderr and "-15" not in result.stderr


def test_effanalyze_options_before_the_run_directory(tmp_path):
    lora = ROOT / "sample_traces" / "h100-lora-sft" / "trace"
    result = run("efftrace.analyzer", "--log-interval", "20", str(lora), "--json", str(tmp_path / "s.json"), "-q")
    assert result.returncode == 0, result.stderr
    alone = run("efftrace.analyzer", "--tensorboard")
    assert alone.returncode == 2 and alone.stderr.strip() == (
        "effanalyze: error: give the run directory: effanalyze RUN_DIR [--tensorboard [DIR]] [OPTIONS]"
    )
