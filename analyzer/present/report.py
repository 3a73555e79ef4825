"""``effanalyze RUN_DIR --report report.html``: one self-contained page to look at a run.

The figures come from the result object, exactly as the console prints them; the timelines come
from :mod:`efftrace.analyzer.compute.timeline`, downsampled for display only. The page holds at
most :data:`~efftrace.analyzer.present.charts.MAX_DISPLAY_VALUES` numbers, so an 8-GPU day stays a
few MB, and shows step boundaries and log windows once the view is zoomed in far enough to tell
them apart.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from efftrace.analyzer.compute.catalog import CARDS, TIME_BUCKETS
from efftrace.analyzer.compute.timeline import BUFFER_SIGNAL, Timeline, build_timeline
from efftrace.analyzer.present.charts import latency_series, max_buckets_for, series_payload
from efftrace.analyzer.present.console import format_value
from efftrace.analyzer.present.html_page import bar_chart, esc, page, table, time_chart
from efftrace.analyzer.present.outputs import Output, write
from efftrace.analyzer.read.loader import Trace
from efftrace.analyzer.result import ENERGY_CHECK_TOLERANCE, Figure, RunMetrics, WindowSummary
from efftrace.recorder.format.columns import to_numpy
from efftrace.recorder.format.units import GIB

MAX_STEP_MARKERS = 20_000
MAX_TABLE_ROWS = 200
CHARTS = (  # per GPU: (chart, title, unit, fixed top, columns)
    ("power", "Power", "W", None, (BUFFER_SIGNAL.column, "power_instant_mw", "power_avg_mw")),
    ("memory", "Memory used", "GiB", None, ("mem_used_bytes",)),
    ("activity", "Activity", "%", 100.0, ("util_gpu_pct", "gpm_sm_activity_pct", "gpm_tensor_activity_pct")),
)


def _relative_s(values_ns: np.ndarray, origin_ns: int, limit: int) -> list[float]:
    if values_ns.size > limit:
        return []
    return np.round((values_ns.astype(np.int64) - origin_ns) / 1e9, 3).tolist()


def _histogram(latency_s: np.ndarray) -> dict[str, Any]:
    """Bars over the lowest 99 % of steps, and one last bar for the slowest 1 % (first steps, stalls),
    so that a few 5-s steps do not squash a distribution of 0.3-s ones into one bar."""
    latency_s = latency_s[np.isfinite(latency_s)]
    if latency_s.size == 0:
        return {"values": [], "labels": [], "x_label": "step latency (s)"}
    top = float(np.percentile(latency_s, 99))
    body = latency_s[latency_s <= top]
    bins = int(np.clip(np.sqrt(body.size), 10, 60))
    counts, edges = np.histogram(body, bins=bins)
    labels = [f"{value:.3g}" for value in (edges[:-1] + edges[1:]) / 2]
    slowest = int((latency_s > top).sum())
    if slowest:
        counts = np.append(counts, slowest)
        labels.append(f"> {top:.3g}")
    return {
        "values": counts.tolist(),
        "labels": labels,
        "x_label": "step latency (s), the last bar: steps slower than the 99th percentile; bar height: steps",
    }


def _payload(result: RunMetrics, timeline: Timeline) -> dict[str, Any]:
    job = result.summaries["job"]
    origin = job.start_ns
    charts: dict[str, Any] = {}
    for gpu, signals in timeline.series.items():
        for key, title, unit, top, columns in CHARTS:
            drawn = [series_payload(signals[column], timeline, origin) for column in columns if column in signals]
            drawn = [series for series in drawn if series is not None]
            if drawn:
                charts[f"{gpu}/{key}"] = {"title": f"{gpu}: {title}", "unit": unit, "y_max": top, "series": drawn}
    steps = latency_series(result, timeline)
    if steps.samples:
        latency = to_numpy(result.steps.column("latency_s"))
        charts["steps"] = {
            "title": "Step latency",
            "unit": "s",
            "y_max": None,
            "series": [series_payload(steps, timeline, origin)],
            # each point is drawn where its step ended: a long step's point lies a whole step after the
            # previous one, which must not read as a gap in the recording
            "gap_s": float(np.nanmax(latency)) + float(result.run.get("max_gap_s") or 1.0),
        }
    shaded = [
        [(summary.start_ns - origin) / 1e9, (summary.end_ns - origin) / 1e9]
        for name, summary in result.summaries.items()
        if name in ("train", "inference")
    ]
    ranks = result.ranks
    bars = {}
    if result.steps.num_rows:
        bars = {"latency_histogram": _histogram(to_numpy(result.steps.column("latency_s")))}
    if ranks.num_rows > 1:  # one rank has no skew to show
        bars["ranks"] = {
            "values": np.round(to_numpy(ranks.column("mean_step_s")), 5).tolist(),
            "labels": [f"rank {rank}" for rank in to_numpy(ranks.column("rank")).tolist()],
            "x_label": "mean step duration of each rank (s)",
        }
    return {
        "range_s": [0.0, max(job.seconds, 1e-3)],
        "max_gap_s": float(result.run.get("max_gap_s") or 1.0),
        "shaded": shaded,
        "step_ends_s": _relative_s(to_numpy(result.steps.column("end_ns")), origin, MAX_STEP_MARKERS),
        "window_ends_s": _relative_s(to_numpy(result.windows.column("end_ns")), origin, MAX_STEP_MARKERS)
        if "end_ns" in result.windows.column_names
        else [],
        "time_charts": charts,
        "bar_charts": bars,
    }


def _figure_row(figure: Figure) -> list[str]:
    coverage = "" if figure.coverage is None else f"{100 * figure.coverage:.1f} %"
    return [figure.label, format_value(figure), figure.unit, coverage, figure.source]


def _figures_table(figures: dict[str, Figure]) -> str:
    rows = [_figure_row(figure) for figure in figures.values()]
    return table(("figure", "value", "unit", "coverage", "source"), rows, numeric=(1, 3))


def _headline(result: RunMetrics) -> WindowSummary:
    """The window the run is about: training where it trained, else its inference."""
    return result.train or result.inference or result.summaries["job"]


def _cards(result: RunMetrics) -> str:
    summary = _headline(result)
    cards = []
    for key in (*CARDS, "it_tokens_per_sec"):
        figure = summary.figures.get(key)
        if figure is not None and figure.known:
            cards.append(
                f'<div class="card" title="{esc(figure.source)}"><span>{esc(figure.label)}</span>'
                f"<b>{esc(format_value(figure))}</b><span>{esc(figure.unit)}</span></div>"
            )
    return f'<div class="cards">{"".join(cards)}</div>'


def _energy_check(result: RunMetrics) -> str:
    rows, flags = [], []
    for row in result.per_gpu.to_pylist():
        difference = row.get("energy_counter_diff")
        rows.append(
            [
                row["window"],
                f"{row['host']} GPU {row['gpu']}",
                _number(row.get("checked_seconds"), "{:,.1f}"),
                _number(row.get("checked_energy_j"), "{:,.0f}"),
                _number(row.get("checked_counter_j"), "{:,.0f}"),
                _number(None if difference is None else 100 * difference, "{:+.2f}"),
            ]
        )
        flags.append(difference is not None and np.isfinite(difference) and abs(difference) > ENERGY_CHECK_TOLERANCE)
    headers = ("window", "GPU", "span compared (s)", "trapezoid energy (J)", "counter increase (J)", "difference (%)")
    explanation = (
        "<p class='hint'>Both compared between the energy counter's first and last reading inside each window; "
        f"rows beyond ±{100 * ENERGY_CHECK_TOLERANCE:.0f} % are marked.</p>"
    )
    return table(headers, rows, numeric=(2, 3, 4, 5), flags=flags) + explanation


def _number(value: float | None, template: str) -> str:
    return "n/a" if value is None or not np.isfinite(value) else template.format(value)


def _metadata(trace: Trace) -> str:
    meta = trace.meta
    gpus = [
        [
            host.get("hostname"),
            gpu.get("index"),
            gpu.get("name"),
            gpu.get("uuid"),
            _number(_gib(gpu.get("memory_total_bytes")), "{:.1f} GiB"),
            _number(_watts(gpu.get("power_limit_mw")), "{:.0f} W"),
        ]
        for host in meta.get("hosts") or []
        for gpu in host.get("gpus") or []
    ]
    versions = sorted((meta.get("versions") or {}).items())
    model = sorted((meta.get("model") or {}).items())
    run_facts = [
        ["status", meta.get("status")],
        ["exit code", meta.get("exit_code")],
        ["started (UTC)", meta.get("started_utc")],
        ["command", " ".join(str(part) for part in meta.get("command") or [])],
        ["world size", meta.get("world_size")],
        ["format version", meta.get("format_version")],
        ["recorder version", meta.get("recorder_version")],
    ]
    parts = [
        "<h3>Run</h3>",
        table(("", ""), run_facts),
        "<h3>GPUs</h3>",
        table(("host", "index", "name", "UUID", "memory", "power limit"), gpus, numeric=(1, 4, 5)),
        "<div class='two'><div><h3>Model</h3>",
        table(("", ""), model),
        "</div><div><h3>Versions</h3>",
        table(("package", "version"), versions),
        "</div></div><h3>Sampling</h3>",
        f"<pre>{esc(json.dumps(meta.get('sampling') or {}, indent=2))}</pre>",
    ]
    config = meta.get("training_config")
    if isinstance(config, dict) and isinstance(config.get("text"), str):
        parts += [f"<h3>Training config ({esc(config.get('path'))})</h3>", f"<pre>{esc(config['text'])}</pre>"]
    elif config:
        parts += ["<h3>Training config</h3>", f"<pre>{esc(json.dumps(config, indent=2))}</pre>"]
    return "".join(parts)


def _gib(value: Any) -> float | None:
    return None if value is None else float(value) / GIB


def _watts(value: Any) -> float | None:
    return None if value is None else float(value) / 1e3


def _body(trace: Trace, result: RunMetrics, payload: dict[str, Any]) -> str:
    run = result.run
    job = result.summaries["job"]
    model = run.get("model") or {}
    named = model.get("name_or_path") or model.get("class") or "unknown"
    subtitle = (
        f"{run.get('status')} · {job.seconds:,.1f} s recorded · {len(run.get('gpus') or [])} GPU(s) · "
        f"{run.get('train_steps')} train steps · {run.get('generate_calls')} generate calls · "
        f"model {named} ({_number(model.get('total_params'), '{:,.0f}')} parameters)"
    )
    charts = "".join(time_chart(key, spec["title"]) for key, spec in payload["time_charts"].items() if key != "steps")
    if "steps" in payload["time_charts"]:
        charts += time_chart("steps", "Step latency (each step where it ended)")
    windows = "".join(
        f"<h3>{esc(name)} window ({summary.seconds:,.1f} s)</h3>{_figures_table(summary.figures)}"
        for name, summary in result.summaries.items()
    )
    notes = "".join(f"<li>{esc(note)}</li>" for note in result.notes)
    alerts = "".join(f"<li><b>{esc(alert['kind'])}</b>: {esc(alert['message'])}</li>" for alert in result.alerts)
    found = "".join(
        f"<li><b>{esc(finding['kind'])}</b>: {esc(finding['message'])}<br><i>what usually helps:</i> "
        f"{esc(finding['suggestion'])}</li>"
        for finding in result.diagnosis.get("findings") or []
    )
    return "".join(
        [
            f"<header><h1>{esc(run.get('name'))}</h1><p>{esc(subtitle)}</p></header>",
            f"<section class='unfinished'><p>{esc(run['unfinished']['message'])}</p></section>"
            if run.get("unfinished")
            else "",
            "".join(f"<section class='unfinished'><p>{esc(line)}</p></section>" for line in run.get("missing") or []),
            f"<section><h2>Summary ({esc(_headline(result).name)} window)</h2>{_cards(result)}</section>",
            f"<section class='alerts'><h2>Alerts</h2><ul>{alerts}</ul></section>" if alerts else "",
            "<section><h2>Timelines</h2><p class='hint'>Wheel to zoom, drag to pan, double-click or "
            "<button data-reset>reset</button>. Shaded: the train and inference windows; thin lines: step ends and "
            "(orange) log-window ends, drawn once zoomed in far enough. Bands: the spread of the samples each "
            "point stands for. Display only: every figure is computed from all samples.</p>",
            charts if result.per_gpu.num_rows else _no_gpu_samples(result) + charts,
            "</section>",
            f"<section><h2>Findings</h2><ul>{found}</ul></section>" if found else "",
            _time_section(result),
            _profile_section(result),
            _latency_section(result),
            _generate_section(result),
            f"<section><h2>Energy: trapezoid vs the GPU's counter</h2>{_energy_check(result)}</section>"
            if result.per_gpu.num_rows
            else "",
            f"<section><h2>Every figure</h2>{windows}</section>",
            f"<section><h2>Run metadata</h2>{_metadata(trace)}</section>",
            f"<section class='notes'><h2>Notes</h2><ul>{notes or '<li>none</li>'}</ul></section>" if notes else "",
        ]
    )


_BUCKET_COLOURS = {  # one per catalog.TIME_BUCKETS key
    "startup": "#b0b0b0",
    "train_step": "#3b7dd8",
    "between_steps": "#e0a030",
    "evaluation": "#6bb36b",
    "checkpoint": "#c05050",
    "generation": "#9a6bc0",
    "idle_tail": "#dddddd",
}


def _time_section(result: RunMetrics) -> str:
    """Where the time went: one stacked bar per rank over the whole job (its buckets' shares)."""
    job = (result.diagnosis.get("time_buckets") or {}).get("job")
    if not job or not job["ranks"] or job["seconds"] <= 0:
        return ""
    total = job["seconds"]
    legend = "".join(
        f"<span class='bucket'><i style='background:{_BUCKET_COLOURS[key]}'></i>{esc(title)}</span>"
        for key, title in TIME_BUCKETS.items()
    )
    rows = []
    for rank, seconds in job["ranks"].items():
        parts = "".join(
            f"<span style='width:{100 * seconds[key] / total:.3f}%;background:{_BUCKET_COLOURS[key]}' "
            f"title='{esc(title)}: {seconds[key]:,.1f} s ({seconds[key] / total:.1%})'></span>"
            for key, title in TIME_BUCKETS.items()
            if seconds[key] > 0
        )
        rows.append(f"<div class='timebar'><b>rank {esc(rank)}</b><div>{parts}</div></div>")
    return (
        f"<section><h2>Where the time went (whole job, {total:,.1f} s)</h2><p class='hint'>Each rank's time from "
        "its events: a step from its start to its end on the GPU where CUDA events timed it (else on the host), "
        f"between steps from one step's end to the next one's start. Hover for seconds.</p><p>{legend}</p>"
        f"{''.join(rows)}{_step_timing_table(result)}</section>"
    )


def _step_timing_table(result: RunMetrics) -> str:
    """Each rank's steps on the GPU beside the host, train window, mean per step (compute.step_timing)."""
    ranks = result.diagnosis.get("step_timing") or {}
    if not ranks:
        return ""
    keys = ("gpu_step_s", "host_step_s", "gpu_between_s", "host_between_s", "gpu_after_host_s")
    heads = ("step on the GPU", "step on the host", "between steps: GPU idle", "between steps: host", "GPU after host")
    head = "".join(f"<th>{esc(title)}</th>" for title in ("rank", "steps", *heads))
    body = "".join(
        f"<tr><td>{esc(rank)}</td><td>{row['steps']:,}</td>"
        + "".join(f"<td>{_number(None if row[key] is None else row[key] * 1e3, '{:,.2f} ms')}</td>" for key in keys)
        + "</tr>"
        for rank, row in ranks.items()
    )
    return (
        "<h3>Steps on the GPU and on the host (train window, mean per step)</h3><p class='hint'>Between steps the "
        "host works while the GPU either idles or still finishes the step; a GPU that finishes long after the host "
        f"queued the step's end sets the pace, one that finishes at once waits on the host.</p><table><tr>{head}</tr>"
        f"{body}</table>"
    )


def _profile_section(result: RunMetrics) -> str:
    """The profiled steps (effrec --profile-steps): per rank, GPU busy and idle time and the top kernels."""
    profile = result.diagnosis.get("profile")
    if not profile:
        return ""
    steps = profile.get("steps")
    title = f"Profiled steps {steps[0]}-{steps[1]}" if steps else "Profiled steps"
    parts = []
    for rank, seen in profile["ranks"].items():
        if "gpu_busy_s" not in seen:
            parts.append(f"<p><b>rank {esc(rank)}</b>: {esc(seen.get('note', 'nothing profiled'))}</p>")
            continue
        causes = seen.get("idle_causes") or {}
        said = ", ".join(f"{share:.0%} {esc(cause.replace('_', ' '))}" for cause, share in causes.items() if share > 0)
        kernels = "".join(
            f"<tr><td><code>{esc(kernel['name'])}</code></td><td>{kernel['seconds'] * 1e3:,.2f} ms</td>"
            f"<td>{_number(kernel['share'], '{:.1%}')}</td><td>{kernel['count']:,}</td></tr>"
            for kernel in seen["top_kernels"]
        )
        parts.append(
            f"<p><b>rank {esc(rank)}</b>: {seen['profiled_steps']} steps over {seen['span_s'] * 1e3:,.1f} ms; "
            f"kernels ran {seen['gpu_busy_s'] * 1e3:,.1f} ms, the GPU idle {seen['gpu_idle_share']:.1%}"
            f"{f' ({said} of the idle time)' if said else ''}.</p><table><tr><th>kernel</th><th>GPU time</th>"
            f"<th>share of kernel time</th><th>calls</th></tr>{kernels}</table>"
        )
    return f"<section><h2>{esc(title)}</h2><p class='hint'>{esc(profile['source'])}.</p>{''.join(parts)}</section>"


def _latency_section(result: RunMetrics) -> str:
    if result.steps.num_rows == 0:
        return ""
    histogram = bar_chart("latency_histogram", "Distribution of step latencies")
    if result.ranks.num_rows < 2:
        return (
            f"<section><h2>Step latency</h2>{histogram}<p class='hint'>One rank: no skew between ranks.</p></section>"
        )
    skew = bar_chart("ranks", "Per-rank mean step duration (skew)")
    return f"<section><h2>Step latency</h2><div class='two'><div>{histogram}</div><div>{skew}</div></div></section>"


def _no_gpu_samples(result: RunMetrics) -> str:
    """Why a run has no GPU timelines or per-GPU figures, instead of empty tables."""
    said = list(result.run.get("missing") or []) or ["the trace holds no GPU samples"]
    return "<p class='hint'>No GPU samples in this run: " + " ".join(esc(line) for line in said) + "</p>"


def _generate_section(result: RunMetrics) -> str:
    calls = result.generate_calls
    if calls.num_rows == 0:
        return ""
    rows = [
        [
            row["call"],
            _number(row["seconds"], "{:.3f}"),
            _number(row["samples"], "{:,.0f}"),
            _number(row["generated_tokens"], "{:,.0f}"),
            _number(row["it_tokens_per_sec"], "{:,.1f}"),
        ]
        for row in calls.slice(0, MAX_TABLE_ROWS).to_pylist()
    ]
    more = calls.num_rows - len(rows)
    hint = f"<p class='hint'>The first {len(rows)} of {calls.num_rows} calls.</p>" if more > 0 else ""
    headers = ("call", "seconds", "samples", "generated tokens", "tokens/s")
    return f"<section><h2>Generate calls</h2>{table(headers, rows, numeric=range(5))}{hint}</section>"


def report_html(trace: Trace, result: RunMetrics) -> str:
    """The whole report page for one analysed run."""
    job = result.summaries["job"]
    timeline = build_timeline(trace, job.start_ns, job.end_ns, max_buckets_for(len(result.run.get("gpus") or [])))
    payload = _payload(result, timeline)
    return page(f"efftrace: {result.run.get('name')}", _body(trace, result, payload), payload)


def write_report(trace: Trace, result: RunMetrics, output: Output) -> str:
    return write(output, report_html(trace, result))
