"""A trace is data from whoever sent it: it never chooses where the analyzer writes, and never runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from efftrace.analyzer.cli import main
from efftrace.recorder.format import schema
from helpers.runs import ROOT

BASE = ROOT / "tests" / "data" / "bad" / "unsorted-timestamps"  # a valid run of the corpus


def _run_with_tensorboard_dir(tmp_path: Path, recorded: str) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    for path in BASE.iterdir():
        (run / path.name).write_bytes(path.read_bytes())
    meta = json.loads((run / schema.META_FILE).read_text())
    meta["ranks"] = [{"rank": 0, "tensorboard_dir": recorded}]
    (run / schema.META_FILE).write_text(json.dumps(meta))
    return run


@pytest.mark.parametrize("kind", ["plain folder", "missing folder", "glob pattern", "parent"])
def test_tensorboard_goes_only_to_a_real_trainer_run_or_the_run_directory(tmp_path, kind):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    recorded = {
        "plain folder": str(elsewhere),  # exists, but holds no TensorBoard events: not the trainer's run
        "missing folder": str(tmp_path / "not" / "there"),
        "glob pattern": "/nowhere/runs/*",
        "parent": "..",
    }[kind]
    run = _run_with_tensorboard_dir(tmp_path, recorded)
    result = CliRunner().invoke(main, [str(run), "--tensorboard", "--quiet"])
    assert result.exit_code == 0, result.output
    written = [path for path in tmp_path.rglob("events.out.tfevents.*")]
    assert written == list((run / "tensorboard").glob("events.out.tfevents.*")) and len(written) == 1
    assert not (tmp_path / "not").exists() and list(elsewhere.iterdir()) == []


def test_tensorboard_joins_the_trainer_run_it_finds(tmp_path):
    trainer_run = tmp_path / "saves" / "runs" / "Nov23_12-00-00_host"
    trainer_run.mkdir(parents=True)
    (trainer_run / "events.out.tfevents.1.host").write_bytes(b"")
    run = _run_with_tensorboard_dir(tmp_path, str(trainer_run))
    result = CliRunner().invoke(main, [str(run), "--tensorboard", "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(list(trainer_run.glob("events.out.tfevents.*.efftrace"))) == 1
    assert not (run / "tensorboard").exists()


def test_trace_files_are_only_ever_parsed_as_data():
    """No pickle, eval, exec or YAML parsing anywhere a trace is read (JSON and Arrow IPC only)."""
    risky = re.compile(r"\b(pickle|marshal|shelve|eval\(|exec\(|yaml\.(?:unsafe_)?load\(|__import__)")
    for package in ("recorder", "analyzer"):
        for path in (ROOT / package).rglob("*.py"):
            found = [line for line in path.read_text().splitlines() if risky.search(line.split("#")[0])]
            assert not found, f"{path}: {found}"
