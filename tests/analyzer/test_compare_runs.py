"""``effanalyze compare`` as the paper's table is read: an inference-only run compared on its inference
window, facts read for what each run did, and the CSV at full precision."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from helpers.runs import ROOT

LORA = ROOT / "sample_traces" / "h100-lora-sft" / "trace"
PREDICT = ROOT / "sample_traces" / "h100-predict" / "trace"


def effanalyze(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "efftrace.analyzer.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result


def table(*runs: str) -> dict[str, list[str]]:
    rows = list(csv.reader(io.StringIO(effanalyze("compare", *runs, "--csv", "-").stdout)))
    return {row[0]: row[2:] for row in rows[1:]}


def test_an_inference_only_run_is_compared_on_its_inference_window():
    rows = table(str(LORA), str(PREDICT))
    assert rows["window compared"] == ["train", "inference"]
    summary = json.loads(effanalyze(str(PREDICT), "--json", "-").stdout)
    inference = summary["windows"]["inference"]["figures"]
    assert float(rows["AMU (GB)"][1]) == inference["amu_gib"]["value"], "its own inference-window AMU, exactly"
    assert float(rows["AEC (Watts)"][1]) == inference["aec_watts"]["value"]
    assert rows["AL (Seconds)"][1] == "", "no train steps: no latency, rather than a made-up one"


def test_facts_describe_what_each_run_did():
    rows = table(str(LORA), str(PREDICT))
    assert rows["model"] == ["./model", "./model"], "the model's name or path, not PeftModelForCausalLM"
    assert rows["fine-tuning"] == ["lora", "none (inference only)"]
    assert rows["batch per device"] == ["8", "32"], (
        "the predict run's batch is its eval batch (per_device_eval_batch_size)"
    )
    assert rows["gradient accumulation"] == ["1", ""]
    assert rows["parameters"][0] == "1061668864", "CSV counts have no thousands separators"


def test_the_csv_carries_full_precision_numbers():
    rows = table(str(LORA))
    figures = json.loads(effanalyze(str(LORA), "--json", "-").stdout)["windows"]["train"]["figures"]
    assert float(rows["AL (Seconds)"][0]) == figures["al_seconds"]["value"]
    assert float(rows["TT (Tokens/Param/Sec)"][0]) == figures["tt_tokens_per_param_per_sec"]["value"]
    console = effanalyze("compare", str(LORA)).stdout
    assert "0.2806" in console, "the console keeps its short display"


def test_compare_puts_where_the_time_went_and_the_findings_side_by_side():
    from efftrace.analyzer.compute.metrics import analyze
    from efftrace.analyzer.present.compare import Compared, comparison_rows
    from efftrace.analyzer.read.loader import open_run

    traces = [ROOT / "sample_traces" / f"h200-diagnosis-{name}" / "trace" for name in ("input", "compute")]
    runs = [Compared(trace, analyze(trace)) for trace in map(open_run, traces)]
    _, rows = comparison_rows(runs, exact=True)
    by_label = {row[0]: row[2:] for row in rows}
    assert by_label["findings"] == ["input_bound", "compute_bound, power_capped"]
    shares = [
        [float(value or 0) for value in values] for label, values in by_label.items() if label.startswith("time:")
    ]
    assert [sum(column) for column in zip(*shares, strict=True)] == pytest.approx([1.0, 1.0])
    input_between, compute_between = (float(value) for value in by_label["time: between steps"])
    assert input_between > 0.2 and compute_between < 0.01, "a quarter of the input-bound job waits between steps"
