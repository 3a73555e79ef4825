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
from efftrace.recorder.format.options import CheckedOption
from efftrace.recorder.format.ranges import LOG_INTERVAL, MAX_GAP_S, PEAK_TFLOPS, WORKERS
from efftrace.recorder.format.version import __version__

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
        except click.ClickException:
            raise  # a usage error: one line, from the group
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
    """``effanalyze RUN_DIR ...`` stays the short form: anything that is not a subcommand is a run,
    options first (``effanalyze --tensorboard RUN_DIR``) included. A usage error is one line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--version"):
            args = ["analyze", *args]
        return super().parse_args(ctx, args)

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        standalone = kwargs.pop("standalone_mode", True)
        try:
            returned = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as done:
            returned = done.exit_code
        except click.UsageError as error:
            _fail(error.format_message(), EXIT_BAD_INPUT)
        except click.Abort:
            _fail("interrupted", 130)
        if standalone:
            sys.exit(returned if isinstance(returned, int) else 0)
        return returned


class _RunCommand(click.Command):
    """The analysis of one run, shown as users type it: ``effanalyze RUN_DIR [OPTIONS]``."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage("effanalyze", "RUN_DIR [OPTIONS]")


_log_interval_option = click.option(
    "--log-interval",
    type=CheckedOption(LOG_INTERVAL, "--log-interval"),
    default=None,
    help="Steps per log window, 1 to 10^9 (default: EFFICIENTLLM_LOG_INTERVAL, else 10).",
)


def _cluster_options(command: Callable[..., None]) -> Callable[..., None]:
    """``--workers`` and ``--scheduler``: where the work on the samples runs (see :mod:`efftrace.analyzer.cluster`)."""
    command = click.option(
        "--scheduler",
        metavar="ADDRESS",
        help="Spread the work over the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786); "
        "the run directory must be on a filesystem its workers share.",
    )(command)
    return click.option(
        "--workers",
        type=CheckedOption(WORKERS, "--workers"),
        help="Spread the work over a local Dask cluster of N worker processes (for traces of many GiB).",
    )(command)


@contextlib.contextmanager
def _engine(workers: int | None, scheduler: str | None) -> Iterator[Any]:
    """Where the analysis runs: this process (None), or a Dask cluster; its failures are one line."""
    if workers is None and scheduler is None:
        yield None
        return
    if workers is not None and scheduler is not None:
        raise click.UsageError("give --workers (a local cluster) or --scheduler (an existing one), not both")
    from efftrace.analyzer.cluster import ClusterError, cluster_engine

    try:
        with cluster_engine(workers, scheduler) as engine:
            yield engine
    except ClusterError as error:
        raise click.UsageError(str(error)) from None


_quiet_option = click.option(
    "-q", "--quiet", is_flag=True, help="Print nothing but errors (outputs are still written)."
)


@contextlib.contextmanager
def _progress(quiet: bool, *traces: Any, engine: Any = None) -> Iterator[None]:
    """One progress bar for the reading of ``traces`` inside the block, or of the tasks of a cluster's
    ``engine`` (on a terminal only; see :mod:`efftrace.analyzer.present.progress`)."""
    from efftrace.analyzer.present.progress import Progress

    bar = Progress(enabled=False if quiet else None)
    reporters = [*traces, *([engine] if engine is not None else [])]
    for reporter in reporters:
        reporter.progress = bar.update if bar.enabled else None
    try:
        yield
    finally:
        for reporter in reporters:
            reporter.progress = None
        bar.close()


@click.group(cls=_AnalyzeByDefault, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="effanalyze", message="%(prog)s %(version)s")
def main() -> None:
    """Compute efficiency metrics from runs recorded by effrec.

    Every output option takes a file path, or - for standard output (then the console block is
    left out); a link is followed, and only regular files are ever replaced.

    \b
    effanalyze RUN_DIR [OPTIONS]           one run (see: effanalyze RUN_DIR --help)
    effanalyze compare RUN_A RUN_B [...]   several runs side by side
    """


@main.command(cls=_RunCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dir", type=click.Path(path_type=str), required=False)
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
@click.option("--json", "json_path", metavar="PATH", help="Write the summary as JSON.")
@click.option("--csv", "csv_path", metavar="PATH", help="Write the summary as CSV (one row per figure).")
@click.option(
    "--windows",
    "windows_path",
    metavar="PATH",
    help="Write per-log-window metrics to .parquet/.csv.",
)
@click.option(
    "--report",
    "report_path",
    metavar="PATH",
    help="Write a self-contained HTML report: figures, zoomable timelines, latency, energy check, metadata.",
)
@click.option(
    "--power-source",
    type=click.Choice(["auto", "buffer", "instant", "average"]),
    default="auto",
    show_default=True,
    help="Power series for AEC and energy; auto takes the driver buffer, else instant, else averaged power.",
)
@click.option(
    "--peak-tflops", type=CheckedOption(PEAK_TFLOPS, "--peak-tflops"), help="Peak dense TFLOP/s per GPU for MFU."
)
@click.option(
    "--max-gap",
    type=CheckedOption(MAX_GAP_S, "--max-gap"),
    help="Seconds between samples beyond which a gap is not bridged (default: 5 poll intervals, at least 1 s).",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Watch a run effrec is still recording: print each log window's block as it completes (and with "
    "--tensorboard add its points), then the full analysis when the run ends. Ctrl-C stops watching.",
)
@click.option(
    "--alerts",
    "alerts_path",
    metavar="PATH",
    help="Append each alert (OOM risk, slowdown, straggler, throttling, sampling gap) as a JSON line.",
)
@_cluster_options
@_quiet_option
@_one_line_errors
def analyze(
    run_dir: str | None,
    tensorboard_dir: str | None,
    log_interval: int | None,
    json_path: str | None,
    csv_path: str | None,
    windows_path: str | None,
    report_path: str | None,
    power_source: str,
    peak_tflops: float | None,
    max_gap: float | None,
    follow: bool,
    alerts_path: str | None,
    workers: int | None,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Compute the EfficientLLM metrics of RUN_DIR, a run directory written by effrec.

    \b
    Examples:
      effanalyze sample_traces/h100-lora-sft/trace
      effanalyze sample_traces/h100-lora-sft/trace --tensorboard --report report.html
      effanalyze sample_traces/h100-predict/trace --json - | jq .windows.inference
      effanalyze effrec_runs/20261201T120000Z-sft --follow --tensorboard --alerts alerts.jsonl
      effanalyze /shared/runs/month-long --workers 8 --json figures.json
    """
    # Imported here, not at the top, so that `effanalyze --help` answers without loading numpy.
    from efftrace.analyzer.compute.metrics import analyze as compute
    from efftrace.analyzer.present import console, files, outputs, report, tensorboard_events
    from efftrace.analyzer.read.loader import open_run
    from efftrace.analyzer.read.locations import is_local

    run_dir, tensorboard_dir = _run_and_tensorboard(run_dir, tensorboard_dir)
    settings = _settings(
        log_interval=log_interval, power_source=power_source, peak_tflops=peak_tflops, max_gap_s=max_gap
    )
    asked = _outputs(
        ("--json", json_path),
        ("--csv", csv_path),
        ("--windows", windows_path),
        ("--report", report_path),
        ("--alerts", alerts_path),
    )
    if "--windows" in asked:
        files.windows_format(asked["--windows"])
    log_dir = outputs.check_log_dir(tensorboard_dir) if tensorboard_dir not in (None, _AUTO) else None
    quiet = quiet or any(output.to_stdout for output in asked.values())  # standard output is that file's
    trace = open_run(run_dir)
    if follow and not is_local(trace.run_dir):
        raise click.UsageError(f"--follow watches a run on this machine's filesystem, not at a URL ({run_dir})")
    alerted: set[tuple[int, str]] = set()
    if follow and not _followed(trace, settings, quiet, tensorboard_dir, log_dir, asked.get("--alerts"), alerted):
        return  # stopped with Ctrl-C: the run goes on; nothing more to say
    if follow:
        trace = open_run(run_dir)  # the run as effrec finished it (its streams compacted)
    with _engine(workers, scheduler) as engine, _progress(quiet, trace, engine=engine):
        result = compute(trace, settings, engine)
    if not quiet:
        click.echo(console.render(result))
    if "--alerts" in asked:
        fresh = [alert for alert in result.alerts if (alert["window"], alert["kind"]) not in alerted]
        outputs.append_alerts(asked.pop("--alerts"), fresh)
    written = []
    if "--json" in asked:
        written.append(files.write_json(result, asked["--json"]))
    if "--csv" in asked:
        written.append(files.write_csv(result, asked["--csv"]))
    if "--windows" in asked:
        written.append(files.write_windows(result, asked["--windows"]))
    if "--report" in asked:
        with _progress(quiet, trace):
            written.append(report.write_report(trace, result, asked["--report"]))
    if tensorboard_dir is not None:
        target = tensorboard_events.target_dir(result, trace.meta, log_dir)
        if not is_local(target):
            raise click.UsageError(f"--tensorboard: the run is at a URL; give a local DIR to write into ({target})")
        written.append(str(tensorboard_events.write_tensorboard(result, target)))
    if not quiet:
        for path in written:
            click.echo(f"wrote {path}")


@main.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option(
    "--markdown", "markdown_path", metavar="PATH", help="Write the table as Markdown (- for standard output)."
)
@click.option("--csv", "csv_path", metavar="PATH", help="Write the table as CSV.")
@click.option(
    "--html",
    "html_path",
    metavar="PATH",
    help="Write a comparison page: the table and the runs' timelines aligned at their first train step.",
)
@_log_interval_option
@_cluster_options
@_quiet_option
@_one_line_errors
def compare(
    run_dirs: tuple[str, ...],
    markdown_path: str | None,
    csv_path: str | None,
    html_path: str | None,
    log_interval: int | None,
    workers: int | None,
    scheduler: str | None,
    quiet: bool,
) -> None:
    """Put RUN_DIRS side by side: what each run was, and its figures (the EfficientLLM paper's table)."""
    from efftrace.analyzer.compute.metrics import analyze as compute
    from efftrace.analyzer.present import compare as comparison
    from efftrace.analyzer.present import outputs
    from efftrace.analyzer.read.loader import open_run

    settings = _settings(log_interval=log_interval)
    asked = _outputs(("--markdown", markdown_path), ("--csv", csv_path), ("--html", html_path))
    quiet = quiet or any(output.to_stdout for output in asked.values())
    traces = [open_run(run_dir) for run_dir in run_dirs]  # every run checked before any is analysed
    with _engine(workers, scheduler) as engine, _progress(quiet, *traces, engine=engine):
        results = _each_run(traces, lambda trace: compute(trace, settings, engine), engine is not None)
    runs = [comparison.Compared(trace, result) for trace, result in zip(traces, results, strict=True)]
    if not quiet:
        click.echo(comparison.console_table(runs))
    written = []
    if "--markdown" in asked:
        written.append(outputs.write(asked["--markdown"], comparison.markdown_table(runs) + "\n"))
    if "--csv" in asked:
        written.append(outputs.write(asked["--csv"], comparison.csv_text(runs)))
    if "--html" in asked:
        with _progress(quiet, *(run.trace for run in runs)):
            written.append(outputs.write(asked["--html"], comparison.comparison_html(runs)))
    if not quiet:
        for path in written:
            click.echo(f"wrote {path}")


def _each_run(traces: list[Any], analysed: Callable[[Any], Any], on_cluster: bool) -> list[Any]:
    """Every run analysed, in order; on a cluster all at once, so that one run's tasks fill the
    workers another run's leave idle (its events and windows are worked out while they run)."""
    if not on_cluster or len(traces) < 2:
        return [analysed(trace) for trace in traces]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(traces), thread_name_prefix="efftrace-run") as pool:
        return list(pool.map(analysed, traces))


def _followed(
    trace: Any,
    settings: Any,
    quiet: bool,
    tensorboard_dir: str | None,
    log_dir: Path | None,
    alerts: Any,
    alerted: set[tuple[int, str]],
) -> bool:
    """Print each log window of a run being recorded as it completes, until the run ends (True) or
    the user presses Ctrl-C (False). ``alerted`` gathers the alerts already appended to ``alerts``."""
    import time

    from efftrace.analyzer.follow import POLL_S, Follower
    from efftrace.analyzer.present import console, outputs, tensorboard_events

    follower = Follower(trace, settings)
    if follower.finished():
        return True  # nothing is being recorded: the analysis of the finished run is all there is
    if not quiet:
        click.echo(f"effanalyze: following {trace.run_dir} (Ctrl-C to stop watching; the run goes on)")
    try:
        while True:
            ended = follower.finished()  # asked before the last look, so that look sees everything
            for window in follower.poll():
                found = [alert.as_dict() for alert in window.alerts]
                if not quiet:
                    click.echo(console.render_window(window.result, window.number, found))
                if alerts is not None:
                    outputs.append_alerts(alerts, found)
                    alerted.update((alert["window"], alert["kind"]) for alert in found)
                if tensorboard_dir is not None:
                    target = tensorboard_events.target_dir(window.result, trace.meta, log_dir)
                    tensorboard_events.append_tensorboard(window.result, target)
            if ended:
                return True
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        return False
    finally:
        follower.close()


def _outputs(*asked: tuple[str, str | None]) -> dict[str, Any]:
    """Each output option given, checked before any analysis (see :mod:`efftrace.analyzer.present.outputs`)."""
    from efftrace.analyzer.present import outputs

    checked = {option: outputs.check_output(option, path) for option, path in asked if path is not None}
    outputs.check_all(list(checked.values()))
    return checked


def _settings(**options: Any) -> Any:
    """The analysis settings; a bad ``EFFICIENTLLM_LOG_INTERVAL`` is bad input, refused before any reading."""
    from efftrace.analyzer.compute.settings import AnalysisSettings

    try:
        return AnalysisSettings.from_env(**options)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


def _run_and_tensorboard(run_dir: str | None, tensorboard_dir: str | None) -> tuple[str, str | None]:
    """``effanalyze --tensorboard RUN_DIR`` means the run, backfilled where the trainer logged: the
    option's optional value took the run directory, so it is handed back."""
    if run_dir is not None:
        return run_dir, tensorboard_dir
    if tensorboard_dir not in (None, _AUTO) and (Path(tensorboard_dir) / "meta.json").is_file():
        return tensorboard_dir, _AUTO
    raise click.UsageError("give the run directory: effanalyze RUN_DIR [--tensorboard [DIR]] [OPTIONS]")


if __name__ == "__main__":
    main()
