"""``effanalyze RUN_DIR``: print the metrics of a recorded run, and write the outputs asked for.

Bad input ends with one line on stderr naming the file and the problem, and exit code 2.
The analyzer writes only its own outputs; nothing in the run directory is changed.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from analyzer.errors import TraceError

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3
_AUTO = "\0auto"


def _fail(message: str, code: int) -> None:
    click.echo(f"effanalyze: error: {message}", err=True)
    raise SystemExit(code)


def _one_line_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Bad input becomes one line on stderr and exit 2; even a bug ends without a traceback."""

    @functools.wraps(command)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except TraceError as error:
            _fail(str(error), EXIT_BAD_INPUT)
        except Exception as error:
            if os.environ.get("EFFTRACE_DEBUG"):
                raise
            _fail(
                f"internal error ({error.__class__.__name__}: {error}); set EFFTRACE_DEBUG=1 for a traceback "
                "and please report it",
                EXIT_INTERNAL,
            )

    return guarded


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--tensorboard",
    "tensorboard_dir",
    is_flag=False,
    flag_value=_AUTO,
    default=None,
    metavar="[DIR]",
    help="Backfill the metrics as TensorBoard scalars: into DIR, else the trainer's own run directory "
    "(found from meta.json), else RUN_DIR/tensorboard. Re-running replaces the points.",
)
@click.option(
    "--log-interval",
    type=click.IntRange(min=1),
    default=None,
    help="Steps per log window (default: EFFICIENTLLM_LOG_INTERVAL, else 10).",
)
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write the summary as JSON.")
@click.option(
    "--csv", "csv_path", type=click.Path(path_type=Path), help="Write the summary as CSV (one row per figure)."
)
@click.option(
    "--windows",
    "windows_path",
    type=click.Path(path_type=Path),
    help="Write per-log-window metrics to .parquet/.csv.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    help="Write a self-contained HTML report: figures, zoomable timelines, latency, energy check, metadata.",
)
@click.option(
    "--power-source",
    type=click.Choice(["auto", "buffer", "instant", "average"]),
    default="auto",
    show_default=True,
    help="Power series for AEC and energy; auto takes the driver buffer, else instant, else averaged power.",
)
@click.option("--peak-tflops", type=click.FloatRange(min=0, min_open=True), help="Peak dense TFLOP/s per GPU for MFU.")
@click.option(
    "--max-gap",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds between samples beyond which a gap is not bridged (default: 5 poll intervals, at least 1 s).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors (outputs are still written).")
@_one_line_errors
def main(
    run_dir: Path,
    tensorboard_dir: str | None,
    log_interval: int | None,
    json_path: Path | None,
    csv_path: Path | None,
    windows_path: Path | None,
    report_path: Path | None,
    power_source: str,
    peak_tflops: float | None,
    max_gap: float | None,
    quiet: bool,
) -> None:
    """Compute the EfficientLLM metrics of RUN_DIR, a run directory written by effrec."""
    # Imported here, not at the top, so that `effanalyze --help` answers without loading numpy.
    from analyzer import console, files, report, tensorboard_events
    from analyzer.loader import open_run
    from analyzer.metrics import AnalysisSettings, analyze

    trace = open_run(run_dir)
    settings = AnalysisSettings.from_env(
        log_interval=log_interval, power_source=power_source, peak_tflops=peak_tflops, max_gap_s=max_gap
    )
    result = analyze(trace, settings)
    if not quiet:
        click.echo(console.render(result))
    written = []
    if json_path is not None:
        files.write_json(result, json_path)
        written.append(json_path)
    if csv_path is not None:
        files.write_csv(result, csv_path)
        written.append(csv_path)
    if windows_path is not None:
        files.write_windows(result, windows_path)
        written.append(windows_path)
    if report_path is not None:
        written.append(report.write_report(trace, result, report_path))
    if tensorboard_dir is not None:
        if tensorboard_dir != _AUTO:
            target = Path(tensorboard_dir)
        else:
            target = tensorboard_events.trainer_log_dir(result, trace.meta) or run_dir / "tensorboard"
        written.append(tensorboard_events.write_tensorboard(result, target))
    if not quiet:
        for path in written:
            click.echo(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
