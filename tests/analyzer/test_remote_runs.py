"""A run at a URL is read by the same code as a local one and gives the same figures.

Through ``file://`` URLs: fsspec's filesystem behind universal_pathlib, the path every URL takes
(opened through fsspec, never by the operating system; one partition per file), on files this
machine can also read directly to compare. (fsspec's ``memory://`` hands every reader of a file
one shared handle, so it cannot stand in for an object store read from two threads.) Also the
command line's answers to URLs it cannot use; ``file://`` runs on a cluster's worker processes
are in tests/e2e/test_cluster.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from efftrace.analyzer.cli import main
from helpers.figures import assert_same, document

pytest.importorskip("fsspec")
pytest.importorskip("upath")

ROOT = Path(__file__).resolve().parents[2]
TRACES = [ROOT / "sample_traces" / name / "trace" for name in ("h100-lora-sft", "h200-zero3-lora-sft")]


def _as_url(trace: Path) -> str:
    return f"file://{trace.resolve()}"


def _without_location(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key != "run_dir"}


@pytest.mark.parametrize("trace", TRACES, ids=lambda path: path.parent.name)
def test_a_run_at_a_url_gives_the_local_figures_and_notes(trace):
    url = _as_url(trace)
    expected, notes = document(trace)
    got, remote_notes = document(url)
    assert got["run_dir"] == url
    assert_same(_without_location(expected), _without_location(got))
    assert remote_notes == notes


def test_effanalyze_reads_a_url_and_writes_its_outputs_locally(tmp_path):
    trace = TRACES[0]
    url = _as_url(trace)
    local = CliRunner().invoke(main, [str(trace), "--json", str(tmp_path / "local.json")])
    remote = CliRunner().invoke(main, [url, "--json", str(tmp_path / "remote.json")])
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    assert_same(
        _without_location(json.loads((tmp_path / "local.json").read_text())),
        _without_location(json.loads((tmp_path / "remote.json").read_text())),
    )
    assert remote.output.replace(url, "RUN") == local.output.replace(str(trace), "RUN").replace(
        str(tmp_path / "local.json"), str(tmp_path / "remote.json")
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["file:///none-such/run"], "file:///none-such/run: no such directory"),
        (["nosuchscheme://bucket/run"], "nosuchscheme://bucket/run: cannot be read"),
        (["{url}", "--follow"], "--follow watches a run on this machine's filesystem, not at a URL"),
    ],
)
def test_a_url_that_cannot_be_used_is_one_line_and_exit_2(args, message):
    url = _as_url(TRACES[0])
    result = CliRunner().invoke(main, [arg.replace("{url}", url) for arg in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
