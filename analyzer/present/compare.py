"""``effanalyze compare RUN_A RUN_B ...``: the side-by-side table the EfficientLLM paper is built from.

One column per run, one row per fact (model, fine-tuning type, GPUs, batch) or figure (AL, TT, ST,
AMU, PCU, AEC, energy per token, MFU, IT), as console text, Markdown, CSV and a page whose
timelines are aligned at each run's first train step. Every figure is the run's own, computed by
:func:`efftrace.analyzer.compute.metrics.analyze`; nothing is recomputed here.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from efftrace.analyzer.compute.catalog import COMPARED, TIME_BUCKETS
from efftrace.analyzer.compute.combine import combine_gpus
from efftrace.analyzer.compute.timeline import BUFFER_SIGNAL, Timeline, build_timeline
from efftrace.analyzer.present.charts import latency_series, max_buckets_for
from efftrace.analyzer.present.console import format_value
from efftrace.analyzer.present.html_page import esc, page, rounded, table, time_chart
from efftrace.analyzer.read.loader import Trace
from efftrace.analyzer.result import Figure, RunMetrics


@dataclass(frozen=True)
class Compared:
    trace: Trace
    result: RunMetrics


def _config(trace: Trace, key: str) -> str | None:
    """A top-level ``key: value`` line of the recorded training config (looked up, never parsed as YAML)."""
    config = trace.meta.get("training_config") or {}
    text = config.get("text") if isinstance(config, dict) else None
    if not isinstance(text, str):
        return None
    found = re.search(rf"^{re.escape(key)}:[ \t]*([^#\n]*?)[ \t]*(?:#.*)?$", text, flags=re.MULTILINE)
    return found.group(1) or None if found else None


def _rank_setting(trace: Trace, key: str) -> Any:
    for rank in trace.meta.get("ranks") or []:
        if isinstance(rank, dict) and rank.get(key) is not None:
            return rank[key]
    return _config(trace, key)


def _gpus(result: RunMetrics) -> str:
    names = [gpu.get("name") or "GPU" for gpu in result.run.get("gpus") or []]
    if not names:
        return "none recorded"
    kinds = sorted(set(names))
    return ", ".join(f"{names.count(kind)} x {kind}" for kind in kinds)


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else ("" if value is None else str(value))


def _trained(run: Compared) -> bool:
    return run.result.train is not None


def _model_name(run: Compared) -> str | None:
    """The model as users name it (its name or path), not the class wrapping it (``PeftModelForCausalLM``)."""
    model = run.result.run.get("model") or {}
    return model.get("name_or_path") or _config(run.trace, "model_name_or_path") or model.get("class")


def _batch(run: Compared) -> Any:
    """Per-device batch of the window compared: the train batch, or the eval batch of an inference-only run."""
    key = "per_device_train_batch_size" if _trained(run) else "per_device_eval_batch_size"
    return _rank_setting(run.trace, key)


def _fine_tuning(run: Compared) -> str | None:
    return _config(run.trace, "finetuning_type") if _trained(run) else "none (inference only)"


def _accumulation(run: Compared) -> Any:
    return _rank_setting(run.trace, "gradient_accumulation_steps") if _trained(run) else None


def fact_rows(runs: list[Compared], exact: bool = False) -> list[list[str]]:
    """What each run was: the rows that explain the figures' differences (``exact``: counts without
    thousands separators, for CSV)."""

    def row(label: str, values: list[Any]) -> list[str]:
        return [label, "", *("" if value is None else str(value) for value in values)]

    count = str if exact else _count
    models = [run.result.run.get("model") or {} for run in runs]
    return [
        row("status", [run.result.run.get("status") for run in runs]),
        row("model", [_model_name(run) for run in runs]),
        row("parameters", [count(model.get("total_params")) for model in models]),
        row("trainable parameters", [count(model.get("trainable_params")) for model in models]),
        row("fine-tuning", [_fine_tuning(run) for run in runs]),
        row("GPUs", [_gpus(run.result) for run in runs]),
        row("world size", [run.result.run.get("world_size") for run in runs]),
        row("batch per device", [_batch(run) for run in runs]),
        row("gradient accumulation", [_accumulation(run) for run in runs]),
        row("train steps", [run.result.run.get("train_steps") for run in runs]),
        row("window compared", [_compared_window(run) for run in runs]),
    ]


def _compared_window(run: Compared) -> str:
    """The window a run's figures come from: its train window, or, for a run that never trained, its
    inference window (so an inference-only run is compared on what it did, not left blank)."""
    return "train" if _trained(run) else "inference" if run.result.inference is not None else "job"


def _figure(run: Compared, window: str, key: str) -> Figure | None:
    if window == "train":
        window = _compared_window(run)
    summary = run.result.summaries.get(window)
    return summary.figures.get(key) if summary is not None else None


def figure_rows(runs: list[Compared], exact: bool = False) -> list[list[str]]:
    """One row per compared figure; ``exact``: full-precision numbers (CSV), else as the console shows them."""
    rows = []
    for window, key in COMPARED:
        found = [_figure(run, window, key) for run in runs]
        if not any(figure is not None and figure.known for figure in found):
            continue
        sample = next(figure for figure in found if figure is not None)
        label = sample.label if window == "train" else f"{sample.label} ({window})"
        if exact:
            cells = ["" if figure is None or not figure.known else repr(figure.value) for figure in found]
        else:
            cells = ["n/a" if figure is None else format_value(figure) for figure in found]
        rows.append([label, sample.unit, *cells])
    return rows


def diagnosis_rows(runs: list[Compared], exact: bool = False) -> list[list[str]]:
    """Where the time went (each bucket's share of the job, mean over ranks) and the findings' kinds."""
    shares: list[dict[str, float | None]] = []
    for run in runs:
        job = (run.result.diagnosis.get("time_buckets") or {}).get("job") or {}
        ranks = list((job.get("ranks") or {}).values())
        total = job.get("seconds") or 0.0
        shares.append(
            {
                key: sum(rank[key] for rank in ranks) / len(ranks) / total if ranks and total > 0 else None
                for key in TIME_BUCKETS
            }
        )
    rows = []
    for key, title in TIME_BUCKETS.items():
        values = [share[key] for share in shares]
        if any(value for value in values):
            cells = ["" if value is None else (repr(value) if exact else f"{value:.1%}") for value in values]
            rows.append([f"time: {title}", "ratio" if exact else "% of job", *cells])
    found = [
        ", ".join(finding["kind"] for finding in run.result.diagnosis.get("findings") or []) or "none" for run in runs
    ]
    rows.append(["findings", "", *found])
    return rows


def comparison_rows(runs: list[Compared], exact: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows: facts first, then figures, then where the time went and the findings; one column per run."""
    header = ["", "unit", *(run.result.run.get("name") or str(run.trace.run_dir) for run in runs)]
    return header, fact_rows(runs, exact) + figure_rows(runs, exact) + diagnosis_rows(runs, exact)


def console_table(runs: list[Compared]) -> str:
    header, rows = comparison_rows(runs)
    widths = [max(len(str(line[column])) for line in [header, *rows]) for column in range(len(header))]

    def line(cells: list[str]) -> str:
        first = f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}"
        return "  ".join([first, *(f"{cell:>{width}}" for cell, width in zip(cells[2:], widths[2:], strict=True))])

    return "\n".join([line(header), line(["-" * width for width in widths]), *(line(row) for row in rows)])


def markdown_table(runs: list[Compared]) -> str:
    header, rows = comparison_rows(runs)

    def cells(row: list[str]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |"

    return "\n".join([cells(header), "| " + " | ".join(["---"] * len(header)) + " |", *(cells(row) for row in rows)])


def csv_text(runs: list[Compared]) -> str:
    """The table with every number at full precision (and empty where unknown), for spreadsheets."""
    header, rows = comparison_rows(runs, exact=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", *header[1:]])
    writer.writerows(rows)
    return buffer.getvalue()


def _first_step_ns(result: RunMetrics) -> int:
    """Where a run's timelines are aligned: its first train step, else its job start."""
    if result.steps.num_rows:
        return int(result.steps.column("start_ns")[0].as_py())
    return result.summaries["job"].start_ns


def _across_gpus(timeline: Timeline, column: str, how: str) -> np.ndarray | None:
    stacked = [
        signals[column].mean() for signals in timeline.series.values() if column in signals and signals[column].samples
    ]
    return combine_gpus(np.vstack(stacked), how) if stacked else None


COMPARED_CHARTS = (  # (chart, title, unit, top, columns tried in order, how GPUs combine)
    ("power", "Power, sum over the run's GPUs", "W", None, (BUFFER_SIGNAL.column, "power_instant_mw"), "sum"),
    ("memory", "Memory used, mean over GPUs", "GiB", None, ("mem_used_bytes",), "mean"),
    ("util", "NVML utilisation, mean over GPUs", "%", 100.0, ("util_gpu_pct",), "mean"),
    ("tensor", "GPM tensor activity, mean over GPUs", "%", 100.0, ("gpm_tensor_activity_pct",), "mean"),
)


def _page_payload(runs: list[Compared]) -> dict[str, Any]:
    charts: dict[str, Any] = {
        key: {"title": title, "unit": unit, "y_max": top, "series": []}
        for key, title, unit, top, _, _ in COMPARED_CHARTS
    }
    charts["steps"] = {"title": "Step latency", "unit": "s", "y_max": None, "series": []}
    low, high = 0.0, 1e-3
    gpus = max(len(run.result.run.get("gpus") or []) for run in runs)
    for run in runs:
        job = run.result.summaries["job"]
        aligned = _first_step_ns(run.result)
        low = min(low, (job.start_ns - aligned) / 1e9)
        high = max(high, (job.end_ns - aligned) / 1e9)
        timeline = build_timeline(run.trace, job.start_ns, job.end_ns, max_buckets_for(gpus * len(runs)))
        label = str(run.result.run.get("name"))
        t0 = (timeline.origin_ns - aligned) / 1e9
        for key, _, _, _, columns, how in COMPARED_CHARTS:
            for column in columns:
                values = _across_gpus(timeline, column, how)
                if values is not None:
                    decimals = 1 if key != "memory" else 3
                    charts[key]["series"].append(
                        {"label": label, "t0": t0, "dt": timeline.bucket_s, "mean": rounded(values, decimals)}
                    )
                    break
        steps = latency_series(run.result, timeline)
        if steps.samples:
            charts["steps"]["series"].append(
                {"label": label, "t0": t0, "dt": timeline.bucket_s, "mean": rounded(steps.mean(), 4)}
            )
    return {
        "range_s": [low, high],
        "max_gap_s": max(float(run.result.run.get("max_gap_s") or 1.0) for run in runs),
        "shaded": [],
        "step_ends_s": [],
        "window_ends_s": [],
        "time_charts": {key: chart for key, chart in charts.items() if chart["series"]},
        "bar_charts": {},
    }


def comparison_html(runs: list[Compared]) -> str:
    payload = _page_payload(runs)
    header, rows = comparison_rows(runs)
    charts = "".join(time_chart(key, chart["title"]) for key, chart in payload["time_charts"].items())
    body = "".join(
        [
            f"<header><h1>Comparison of {len(runs)} runs</h1>"
            "<p>Each figure is its run's train window (IT: its inference window).</p></header>",
            f"<section><h2>Side by side</h2>{table(header, rows, numeric=range(2, len(header)))}</section>",
            "<section><h2>Timelines, aligned at each run's first train step (0:00)</h2><p class='hint'>"
            "Wheel to zoom, drag to pan, double-click or <button data-reset>reset</button>. "
            "Display only: the figures above use every sample.</p>",
            charts,
            "</section>",
            "<section><h2>Run directories</h2><ul>",
            "".join(f"<li>{esc(run.trace.run_dir)}</li>" for run in runs),
            "</ul></section>",
        ]
    )
    return page(f"efftrace: {len(runs)} runs compared", body, payload)
