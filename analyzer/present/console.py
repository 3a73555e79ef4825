"""The console report: the seed's ``[EfficientLLM Metrics]`` block, then what goes beyond it.

Each value line keeps the seed's ``Label: value`` form, so scripts that parsed the seed's log
still work; the bracket after it says the unit, the source and the coverage.
"""

from __future__ import annotations

from efftrace.analyzer.compute.catalog import CATALOG, SEED_FIGURES, TIME_BUCKETS, where
from efftrace.analyzer.result import Figure, RunMetrics, WindowSummary


def format_value(figure: Figure) -> str:
    if not figure.known:
        return "n/a"
    assert figure.value is not None
    entry = CATALOG.get(figure.key)
    template = entry.console_format if entry else None
    if template:
        return template.format(figure.value)
    magnitude = abs(figure.value)
    if magnitude != 0 and (magnitude < 1e-3 or magnitude >= 1e7):
        return f"{figure.value:.3e}"
    return f"{figure.value:,.4g}" if magnitude < 1e4 else f"{figure.value:,.0f}"


def _line(figure: Figure) -> str:
    details = [figure.unit] if figure.unit else []
    details.append(figure.source)
    if figure.coverage is not None:
        details.append(f"coverage {100 * figure.coverage:.1f} %")
    return f"  {figure.label}: {format_value(figure)}    [{'; '.join(details)}]"


def _block(title: str, summary: WindowSummary, keys: list[str]) -> list[str]:
    lines = [title]
    lines += [_line(summary.figures[key]) for key in keys if key in summary.figures]
    return lines


def render(result: RunMetrics) -> str:
    """The whole console report as one string."""
    run = result.run
    model = run.get("model") or {}
    params = f"{model['total_params']:,} params" if model.get("total_params") else "parameter count unknown"
    if model.get("trainable_params") and model.get("trainable_params") != model.get("total_params"):
        params += f" ({model['trainable_params']:,} trainable)"
    gpus = sorted({gpu["name"] or "unknown GPU" for gpu in run["gpus"]})
    lines = [
        f"efftrace: run {run['name']} ({run['status']}), {len(run['gpus'])} GPU ({', '.join(gpus) or 'none sampled'}),"
        f" model {params}, {result.run_dir}"
    ]
    if run.get("unfinished"):
        lines.append(f"UNFINISHED: {run['unfinished']['message']}")
    lines += [f"MISSING: {line}" for line in run.get("missing") or []]
    for clock in run.get("clocks") or []:
        done = "corrected" if clock["corrected"] else "left as is (within 1 ms or its uncertainty)"
        lines.append(
            f"Clock of host {clock['host']}: {clock['offset_ms']:+.3f} ms ± {clock['uncertainty_ms']:.3f} ms from "
            f"host {clock['reference']} (median over {clock['steps']} step ends), {done}"
        )
    train, inference, job = result.train, result.inference, result.summaries["job"]
    if train is not None:
        lines += _block(f"[EfficientLLM Metrics] Step {run['last_step']}:", train, list(SEED_FIGURES))
        extra = [key for key in train.figures if key not in SEED_FIGURES]
        lines += _block(f"Beyond the seed (train window, {train.seconds:.3f} s):", train, extra)
    lines += _time_table(result)
    lines += _step_timing_table(result)
    lines += _findings(result)
    lines += _profiled_steps(result)
    if inference is not None:
        lines += _block(f"Inference ({inference.seconds:.3f} s window):", inference, list(inference.figures))
    lines += _block(f"Whole job ({job.seconds:.3f} s, recording start to end):", job, list(job.figures))
    lines += ["", *_gpu_table(result)]
    if len(run.get("per_host") or []) > 1:
        lines += ["", *_host_table(result)]
    if result.notes:
        lines += ["", *(f"note: {note}" for note in result.notes)]
    if result.alerts:
        lines += ["", *(alert_line(alert) for alert in result.alerts)]
    return "\n".join(lines)


def render_window(result: RunMetrics, number: int, alerts: list[dict]) -> str:
    """A log window's block as ``effanalyze --follow`` prints it when the window completes: the seed's
    ``[EfficientLLM Metrics] Step N:`` block (``result`` is the analysis of that window alone)."""
    train = result.train
    assert train is not None
    first, last = result.run["first_step"], result.run["last_step"]
    title = f"[EfficientLLM Metrics] Step {last}:    [live: log window {number}, steps {first}-{last}]"
    lines = _block(title, train, list(SEED_FIGURES))
    return "\n".join(lines + [alert_line(alert) for alert in alerts])


def alert_line(alert: dict) -> str:
    """One alert as the console prints it, after the run's notes or under a live window's block."""
    return f"ALERT {alert['kind']}: {alert['message']}"


_RANKS_SHOWN = 8


def _time_table(result: RunMetrics) -> list[str]:
    """Where the time went, per rank over the whole job: seconds and share of the job per bucket."""
    job = (result.diagnosis.get("time_buckets") or {}).get("job")
    if not job or not job["ranks"]:
        return []
    total = job["seconds"]
    ranks = list(job["ranks"].items())
    header = ["rank", *TIME_BUCKETS.values()]
    body = [
        [rank] + [f"{seconds[key]:,.1f} s {seconds[key] / total:.0%}" if total > 0 else "n/a" for key in TIME_BUCKETS]
        for rank, seconds in ranks[:_RANKS_SHOWN]
    ]
    title = (
        f"Where the time went (whole job, {total:,.1f} s; per rank, from its events: a step from its start to "
        "its end on the GPU where CUDA events timed it, else on the host; between steps, from one step's end "
        "to the next one's start):"
    )
    return _rank_table(title, header, body, len(ranks))


def _step_timing_table(result: RunMetrics) -> list[str]:
    """Each rank's steps on the GPU and on the host, over the train window (compute.step_timing)."""
    ranks = list((result.diagnosis.get("step_timing") or {}).items())
    if not ranks:
        return []
    header = ["rank", "steps", "step, GPU", "step, host", "between, GPU idle", "between, host", "GPU after host"]
    keys = ("gpu_step_s", "host_step_s", "gpu_between_s", "host_between_s", "gpu_after_host_s")
    body = [
        [rank, str(row["steps"])] + ["n/a" if row[key] is None else f"{row[key] * 1e3:,.2f} ms" for key in keys]
        for rank, row in ranks[:_RANKS_SHOWN]
    ]
    title = (
        "Steps on the GPU (CUDA events) and on the host (the Trainer's hooks), train window, mean per step; "
        "between steps the host works while the GPU idles or finishes the step:"
    )
    return _rank_table(title, header, body, len(ranks))


def _rank_table(title: str, header: list[str], body: list[list[str]], ranks: int) -> list[str]:
    """A table of the first :data:`_RANKS_SHOWN` ranks, columns aligned, saying how many more the JSON has."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=True)]
    lines = [title] + [("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))).rstrip()
                       for row in (header, *body)]  # fmt: skip
    if ranks > _RANKS_SHOWN:
        lines.append(f"  ... and {ranks - _RANKS_SHOWN} more ranks (all of them in the JSON's diagnosis)")
    return lines


def _profiled_steps(result: RunMetrics) -> list[str]:
    """The profiled steps' GPU time and top kernels, rank by rank (compute.profiled_steps)."""
    profile = result.diagnosis.get("profile")
    if not profile:
        return []
    steps = profile.get("steps")
    which = f"steps {steps[0]}-{steps[1]}" if steps else "steps"
    lines = [f"Profiled {which} ({profile['source']}):"]
    for rank, seen in list(profile["ranks"].items())[:_RANKS_SHOWN]:
        if "gpu_busy_s" not in seen:
            lines.append(f"  rank {rank}: {seen.get('note', 'nothing profiled')}")
            continue
        side = "on the GPU" if seen["gpu_side"] else "on the host"
        idle = f"GPU idle {seen['gpu_idle_share']:.1%}"
        causes = seen.get("idle_causes")
        if causes:
            named = {"host_wait": "waiting for the host", "kernel_wait": "between back-to-back kernels"}
            parts = [f"{share:.0%} {named.get(cause, cause)}" for cause, share in causes.items() if share > 0]
            idle += f" ({', '.join(parts)})"
        left_out = (
            f"; {seen['unfinished_kernels']} without a recorded end left out" if seen["unfinished_kernels"] else ""
        )
        lines.append(
            f"  rank {rank}: {seen['profiled_steps']} steps over {seen['span_s'] * 1e3:,.1f} ms {side}; kernels ran "
            f"{seen['gpu_busy_s'] * 1e3:,.1f} ms, {idle}; {seen['kernels']:,} kernels{left_out}"
        )
        top = ", ".join(
            f"{kernel['name']} {kernel['share']:.0%} (x{kernel['count']})" for kernel in seen["top_kernels"]
        )
        lines.append(f"    top kernels by GPU time: {top}")
    if len(profile["ranks"]) > _RANKS_SHOWN:
        lines.append(
            f"  ... and {len(profile['ranks']) - _RANKS_SHOWN} more ranks (all of them in the JSON's diagnosis)"
        )
    return lines


def _findings(result: RunMetrics) -> list[str]:
    """What bounds the GPU, with its evidence and what usually helps (compute.diagnosis)."""
    found = result.diagnosis.get("findings") or []
    if not found:
        return []
    lines = ["Findings (from the recorded signals; each with the log windows it holds in):"]
    for finding in found:
        lines.append(f"  {finding['message']}")
        lines.append(f"    what usually helps: {finding['suggestion']}")
    return lines


def _host_table(result: RunMetrics) -> list[str]:
    rows = result.run["per_host"]
    header = ["host", "status", "GPUs", "ranks", "AEC W", "energy J", "clock ms"]

    def shown(value: float | None, template: str) -> str:
        return "n/a" if value is None else template.format(value)

    body = [
        [
            row["host"],
            str(row["status"]),
            str(row["gpus"]),
            str(row["ranks"]),
            shown(row["aec_watts"], "{:.1f}"),
            shown(row["energy_j"], "{:.0f}"),
            "reference"
            if row["clock_reference"]
            else shown(row["clock_offset_ms"], "{:+.3f}") + (" (corrected)" if row["clock_corrected"] else ""),
        ]
        for row in rows
    ]
    widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=True)]
    title = f"Per host, {rows[0]['window']} window (the job's GPUs on each; clock: offset from the reference host):"
    return [title] + ["  " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
                      for line in (header, *body)]  # fmt: skip


def _gpu_table(result: RunMetrics) -> list[str]:
    window = "train" if result.train is not None else "inference"
    rows = [row for row in result.per_gpu.to_pylist() if row["window"] == window]
    columns = [(entry.key, *entry.gpu_table) for entry in where("gpu_table") if entry.gpu_table]
    header = ["GPU", "name", *(title for _, title, _ in columns), "power source"]
    body = [
        [
            f"{row['host']}:{row['gpu']}",
            row["name"] or "?",
            *(
                "n/a" if row[key] is None else template.format(row[key]).replace("%", "")
                for key, _, template in columns
            ),
            row["power_source"] if row.get("job_gpu", True) else "not the job's: no rank used it",
        ]
        for row in rows
    ]
    for gpu in result.run.get("gpus_missing") or []:
        body.append([f"{gpu['host']}:{gpu['gpu']}", gpu["name"] or "?", *(["missing"] * len(columns)), gpu["why"]])
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *body, strict=True)]
    title = f"Per GPU, {window} window (time-weighted means; coverage = power samples' share of the window):"
    return [title] + [
        "  " + "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in (header, *body)
    ]
