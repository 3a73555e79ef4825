"""The analyzer on the bad-input corpus (tests/data/bad/, made by tests/data/make_bad_traces.py).

Each case must end as ``expected.json`` says: exit 2 with one line naming a file of the case, or
exit 0 with the analysis of what is usable; never a traceback, and never a changed input file.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from efftrace.analyzer.cli import main
from helpers.runs import DATA

BAD = DATA / "bad"
EXPECTED = json.loads((BAD / "expected.json").read_text())


def _fingerprint(folder: Path) -> dict[str, str]:
    files = (path for path in folder.rglob("*") if path.is_file())
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() for path in files}


def test_the_corpus_is_what_the_generator_writes(tmp_path):
    made = tmp_path / "bad"
    subprocess.run([sys.executable, str(BAD.parent / "make_bad_traces.py"), str(made)], check=True, timeout=120)
    assert json.loads((made / "expected.json").read_text()) == EXPECTED
    assert sorted(path.name for path in made.iterdir()) == sorted(path.name for path in BAD.iterdir())


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_bad_input_gives_a_clear_outcome(case, tmp_path):
    run_dir = BAD / case
    before = _fingerprint(run_dir)
    outputs = tmp_path / "out"
    result = CliRunner().invoke(main, [str(run_dir), "--json", str(outputs / "summary.json")])
    expected = EXPECTED[case]
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output  # stdout and stderr together
    if expected["outcome"] == "error":
        assert result.exit_code == 2, result.output + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("effanalyze: error: "), lines
        assert str(run_dir) in lines[0], "the error names the file or directory"
    else:
        assert result.exit_code == 0, result.stderr
        assert (outputs / "summary.json").is_file()
        if expected["outcome"] == "note":
            assert any(line.startswith("note:") and expected["text"] in line for line in result.output.splitlines())
    assert expected["text"] in result.output
    assert _fingerprint(run_dir) == before, "the analyzer changed a recorded file"
