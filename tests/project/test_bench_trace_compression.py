"""The compression benchmark runs end to end: both codecs, the synthetic trace and the sample traces."""

from __future__ import annotations

import subprocess
import sys

from helpers.runs import ROOT


def test_benchmark_compares_both_codecs_on_the_synthetic_and_the_sample_traces(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "trace_compression.py"), "--hours", "0.05", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "synthetic trace: 0.05 h of 8 GPUs, 14,400 GPU sample rows"
    assert [line.split(" | ")[0] for line in lines if line.startswith(("| zstd", "| lz4"))] == ["| zstd", "| lz4"]
    samples = [line.split(" | ") for line in lines if line.startswith("| h100-")]
    assert len(samples) == 3
    for _, zstd, lz4 in samples:
        assert 0 < float(zstd) < float(lz4.rstrip(" |"))  # LZ4 is the larger of the two
