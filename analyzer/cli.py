"""``effanalyze RUN_DIR``: print the metrics of a recorded run, and write the outputs asked for;
``effanalyze compare RUN_A RUN_B ...``: put several runs side by side.

Bad input ends with one line on stderr naming the file and the problem, and exit code 2.
The analyzer writes only its own outputs; nothing in the run directory is changed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from efftrace.analyzer.errors import TraceError

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


class _AnalyzeByDefault(click.Group):
    """``effanalyze RUN_DIR ...`` stays the short form: anything that is not a subcommand is a run."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["analyze", *args]
        return super().parse_args(ctx, args)


_log_interval_option = click.option(
    "--log-interval",
    type=click.IntRange(min=1),
    default=None,
    help="Steps per log window (default: EFFICIENTLLM_LOG_INTERVAL, else 10).",
)
_quiet_option = click.option(
    "-q", "--quiet", is_flag=True, help="Print nothing but errors (outputs are still written)."
)


@contextlib.contextmanager
def _progress(quiet: bool, *traces: Any) -> Iterator[None]:
    """One progress bar for the reading of ``traces`` inside the block (on a terminal only; see
    :mod:`efftrace.analyzer.present.progress`)."""
    from efftrace.analyzer.present.progress import Progress

    bar = Progress(enabled=False if quiet else None)
    for trace in traces:
        trace.progress = bar.update if bar.enabled else None
    try:
        yield
    finally:
        for trace in traces:
            trace.progress = None
        bar.close()


@click.group(cls=_AnalyzeByDefault, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Compute efficiency metrics from runs recorded by effrec.

    \b
    effanalyze RUN_DIR [OPTIONS]           one run (see: effanalyze analyze --help)
    effanalyze compare RUN_A RUN_B [...]   several runs side by side
    """


@main.command(context_settings={"help_option_names": ["-h", "--help"]})
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
@_log_interval_option
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
@_quiet_option
@_one_line_errors
def analyze(
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
    from efftrace.analyzer.compute.metrics import analyze as compute
    from efftrace.analyzer.compute.settings import AnalysisSettings
    from efftrace.analyzer.present import console, files, report, tensorboard_events
    from efftrace.analyzer.read.loader import open_run

    trace = open_run(run_dir)
    settings = AnalysisSettings.from_env(
        log_interval=log_interval, power_source=power_source, peak_tflops=peak_tflops, max_gap_s=max_gap
    )
    with _progress(quiet, trace):
        result = compute(trace, settings)
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
        with _progress(quiet, trace):
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


@main.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--markdown", "markdown_path", type=click.Path(path_type=Path), help="Write the table as Markdown.")
@click.option("--csv", "csv_path", type=click.Path(path_type=Path), help="Write the table as CSV.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path),
    help="Write a comparison page: the table and the runs' timelines aligned at their first train step.",
)
@_log_interval_option
@_quiet_option
@_one_line_errors
def compare(
    run_dirs: tuple[Path, ...],
    markdown_path: Path | None,
    csv_path: Path | None,
    html_path: Path | None,
    log_interval: int | None,
    quiet: bool,
) -> None:
    """Put RUN_DIRS side by side: what each run was, and its figures (the EfficientLLM paper's table)."""
    from efftrace.analyzer.compute.metrics import analyze as compute
    from efftrace.analyzer.compute.settings import AnalysisSettings
    from efftrace.analyzer.present import compare as comparison
    from efftrace.analyzer.present import files
    from efftrace.analyzer.read.loader import open_run

    settings = AnalysisSettings.from_env(log_interval=log_interval)
    runs = []
    for run_dir in run_dirs:
        trace = open_run(run_dir)
        with _progress(quiet, trace):
            runs.append(comparison.Compared(trace, compute(trace, settings)))
    if not quiet:
        click.echo(comparison.console_table(runs))
    written = []
    if markdown_path is not None:
        written.append(files.write_text(markdown_path, comparison.markdown_table(runs) + "\n"))
    if csv_path is not None:
        written.append(files.write_text(csv_path, comparison.csv_text(runs)))
    if html_path is not None:
        with _progress(quiet, *(run.trace for run in runs)):
            written.append(files.write_text(html_path, comparison.comparison_html(runs)))
    if not quiet:
        for path in written:
            click.echo(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
