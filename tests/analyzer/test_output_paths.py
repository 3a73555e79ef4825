"""Every output path, through the real command line: nothing but regular files replaced, links
followed as a shell would, ``-`` as standard output, and a failed write an error that leaves nothing."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.runs import ROOT

LORA = ROOT / "sample_traces" / "h100-lora-sft" / "trace"
FILE_OPTIONS = {"--json": "s.json", "--csv": "s.csv", "--windows": "w.csv", "--report": "r.html"}
COMPARE_OPTIONS = {"--markdown": "c.md", "--csv": "c.csv", "--html": "c.html"}


def effanalyze(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", *args], capture_output=True, text=True, timeout=300
    )


def refused(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stdout[-500:] + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("effanalyze: error: ") and "Traceback" not in result.stderr
    assert all(word in lines[0] for word in words), lines[0]


@pytest.mark.parametrize("option", FILE_OPTIONS)
def test_a_directory_is_refused_and_left_alone(tmp_path, option):
    (tmp_path / "keep").write_text("mine")
    refused(effanalyze(str(LORA), option, str(tmp_path)), option, "a directory")
    assert [path.name for path in tmp_path.iterdir()] == ["keep"]


@pytest.mark.parametrize("option", FILE_OPTIONS)
def test_the_filesystem_root_is_refused(option):
    refused(effanalyze(str(LORA), option, "/"), option, "a directory")


def test_a_missing_folder_is_made_but_a_path_under_a_file_is_refused(tmp_path):
    made = effanalyze(str(LORA), "-q", "--json", str(tmp_path / "new" / "deeper" / "s.json"))
    assert made.returncode == 0 and json.loads((tmp_path / "new" / "deeper" / "s.json").read_text())["run"]
    (tmp_path / "plain").write_text("a file")
    refused(effanalyze(str(LORA), "--json", str(tmp_path / "plain" / "s.json")), "--json", "not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_folder_is_refused_before_the_analysis(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    refused(effanalyze(str(LORA), "--json", str(locked / "s.json")), "permission denied")


def test_a_failed_write_is_an_error_and_leaves_no_partial_file():
    refused(effanalyze(str(LORA), "-q", "--report", "/proc/efftrace-report.html"), "cannot write")


def test_a_fifo_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    result = effanalyze(str(LORA), "-q", "--json", str(fifo))
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode), "still a FIFO"
    assert json.loads(received[0])["run"]["name"]


def test_a_device_is_written_into_not_replaced():
    result = effanalyze(str(LORA), "-q", "--json", "/dev/null", "--windows", "/dev/null")
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_symlink_is_followed_and_kept(tmp_path):
    target = tmp_path / "real" / "summary.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert effanalyze(str(LORA), "-q", "--json", str(link)).returncode == 0
    assert link.is_symlink() and json.loads(target.read_text())["run"]["name"]


def test_dash_is_standard_output_and_the_console_block_steps_aside():
    result = effanalyze(str(LORA), "--json", "-")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["run"]["name"], "standard output is the JSON alone"
    windows = effanalyze(str(LORA), "--windows", "-")
    assert windows.stdout.splitlines()[0].startswith('"window","step"')
    refused(effanalyze(str(LORA), "--json", "-", "--csv", "-"), "--json and --csv")


def test_comparison_outputs_follow_the_same_rules(tmp_path):
    runs = [str(path) for path in sorted((ROOT / "sample_traces").glob("*/trace"))]
    for option in COMPARE_OPTIONS:
        refused(effanalyze("compare", *runs, option, str(tmp_path)), option, "a directory")
    markdown = effanalyze("compare", *runs, "--markdown", "-")
    assert markdown.returncode == 0 and markdown.stdout.startswith("| ")


def test_nothing_recorded_is_ever_replaced(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(LORA, run)
    before = {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()}
    for name in ("meta.json", next(name for name in before if name.endswith(".arrow"))):
        refused(effanalyze(str(run), "--json", str(run / name)), "part of a recorded run")
    assert {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()} == before


def test_tensorboard_dir_must_be_a_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    refused(effanalyze(str(LORA), "--tensorboard", str(tmp_path / "file")), "--tensorboard", "not a directory")
    refused(effanalyze(str(LORA), "--tensorboard", "-"), "--tensorboard")


PATH_KINDS = ("missing", "regular", "directory", "fifo", "symlink to regular", "dangling symlink", "under a file", "-")


def _make(kind: str, where: Path) -> str:
    path = where / "out.json"
    if kind == "regular":
        path.write_text("old")
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink to regular":
        (where / "target.json").write_text("old")
        path.symlink_to(where / "target.json")
    elif kind == "dangling symlink":
        path.symlink_to(where / "gone" / "target.json")
    elif kind == "under a file":
        (where / "file").write_text("x")
        return str(where / "file" / "out.json")
    elif kind == "-":
        return "-"
    return str(path)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(PATH_KINDS), option=st.sampled_from(sorted(FILE_OPTIONS)))
def test_any_path_kind_is_written_or_refused_never_broken(tmp_path_factory, kind, option):
    where = tmp_path_factory.mktemp("paths")
    given_path = _make(kind, where)
    reader = None
    if kind == "fifo":
        reader = threading.Thread(target=lambda: Path(given_path).read_bytes(), daemon=True)
        reader.start()
    result = effanalyze(str(LORA), "-q", option, given_path)
    assert "Traceback" not in result.stderr and result.returncode in (0, 2), result.stderr
    if kind in ("directory", "under a file"):
        assert result.returncode == 2
    if kind == "directory":
        assert Path(given_path).is_dir(), "a directory is never replaced"
    if kind == "fifo":
        assert stat.S_ISFIFO(Path(given_path).lstat().st_mode)
    if kind in ("symlink to regular", "dangling symlink"):
        assert Path(given_path).is_symlink(), "the link is kept; its target is written"
    if result.returncode == 2:
        leftovers = [path.name for path in where.rglob(".*.tmp")]
        assert not leftovers
    if reader is not None:
        reader.join(timeout=60)
