"""The README's quick-start main command, verbatim, in a clean copy of the project and a fresh venv."""

from __future__ import annotations

import math
import re
import shutil
import subprocess

import pytest

from helpers.runs import ROOT

SEED_METRICS = {
    "AMU (GB)",
    "PCU (Ratio)",
    "AL (Seconds)",
    "TT (Tokens/Param/Sec)",
    "ST (Samples/Param/Sec)",
    "IT (Tokens/Sec)",
    "AEC (Watts)",
}
NOT_COPIED = (".git", ".venv", ".whl", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis")


def readme_command(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- quick-start: {name} -->\n```bash\n(.+?)\n```", text, re.S)
    assert found, f"README.md has no quick-start {name} command"
    return found.group(1)


def test_readme_has_exactly_two_quick_start_commands():
    section = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    marked = re.findall(r"<!-- quick-start: (\w+) -->\n```bash\n([^\n]+)\n```", section)
    assert [name for name, _ in marked] == ["main", "tests"]
    assert (ROOT / ".ci" / "run").read_text().count("quick-start: tests") == 1, ".ci/run runs the README's command"


@pytest.mark.e2e
def test_quick_start_main_command_prints_all_seven_metrics(tmp_path):
    project = tmp_path / "efftrace"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns(*NOT_COPIED))
    result = subprocess.run(
        ["bash", "-c", readme_command("main")], cwd=project, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    values: dict[str, float] = {}
    for line in result.stdout.splitlines():  # the first time each is printed: the seed block, then IT
        label, _, rest = line.strip().partition(": ")
        if label in SEED_METRICS and label not in values:
            values[label] = float(rest.split()[0].replace(",", "").replace("n/a", "nan"))
    assert set(values) == SEED_METRICS, result.stdout
    assert all(math.isfinite(value) and value > 0 for value in values.values()), values
    written = list((project / "sample_traces" / "h100-lora-sft" / "trainer" / "runs").rglob("*.efftrace"))
    assert len(written) == 1, "--tensorboard wrote beside the LoRA run's own TensorBoard curves"
