"""``effrec [OPTIONS] -- COMMAND ...``: run COMMAND and record its GPUs and training steps.

effrec stays the parent of COMMAND for the whole run: it samples NVML in a thread of its own,
hands the run directory to every Python process below it through the environment (their
``sitecustomize`` adds the step recorder to each ``Trainer``), forwards SIGINT and SIGTERM, and
exits with COMMAND's own exit code once ``meta.json`` is finalised.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from efftrace.recorder import __version__, meta
from efftrace.recorder.config import (
    CLOCK_REASONS_INTERVAL_S,
    ENERGY_INTERVAL_S,
    ENV_CUDA_SYNC,
    ENV_PROFILE_STEPS,
    ENV_RECORDER_PID,
    ENV_RUN_DIR,
    FLUSH_INTERVAL_S,
    GPM_INTERVAL_S,
    TEMPERATURE_INTERVAL_S,
    RecorderSettings,
    polls_per,
)
from efftrace.recorder.format import schema
from efftrace.recorder.format.options import CheckedOption, StepRange
from efftrace.recorder.format.ranges import POLL_INTERVAL_S
from efftrace.recorder.run_dir import create_run_dir, default_name, job_name, safe_name, shared_run_dir
from efftrace.recorder.sampling.host import HostSampling

AUTOINSTRUMENT_DIR = Path(__file__).resolve().parent / "in_training" / "_autoinstrument"
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
USAGE_ERROR = 2


class UsageProblem(Exception):
    """Something about the invocation; reported as one line with exit code 2."""


class _CommandAfterSeparator(click.Command):
    """Requires the ``--`` that separates effrec's options from the command it runs."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" not in args and not any(arg in ("-h", "--help", "--version") for arg in args):
            raise click.UsageError("put the command to record after '--', as in: effrec -- python train.py")
        return super().parse_args(ctx, args)


def _resolve_program(program: str) -> str:
    if os.sep in program:
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            raise UsageProblem(f"command not found or not executable: {program}")
        return program
    found = shutil.which(program)
    if found is None:
        raise UsageProblem(f"command not found: {program}")
    return found


def child_environment(run_dir: Path, cuda_sync: bool, profile_steps: tuple[int, int] | None = None) -> dict[str, str]:
    """The command's environment plus what its Python processes need to record themselves."""
    env = dict(os.environ)
    existing = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    env["PYTHONPATH"] = os.pathsep.join([str(AUTOINSTRUMENT_DIR), *existing])
    env[ENV_RUN_DIR] = str(run_dir.resolve())
    env[ENV_CUDA_SYNC] = "1" if cuda_sync else "0"
    env[ENV_RECORDER_PID] = str(os.getpid())
    env.pop(ENV_PROFILE_STEPS, None)  # only effrec's own option profiles, never a variable left in a shell
    if profile_steps is not None:
        env[ENV_PROFILE_STEPS] = f"{profile_steps[0]}-{profile_steps[1]}"
    return env


def _terminal_delivers_signals() -> bool:
    """True when a Ctrl-C at the terminal already reaches the command (same foreground group)."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False


def _save_manifest(write: Callable[[], None]) -> None:
    """Write meta.json; a full disk costs the manifest (with a warning), never the command."""
    try:
        write()
    except OSError as error:
        _say(f"warning: could not write {schema.META_FILE}: {error}")


def _say(message: str) -> None:
    print(f"effrec: {message}", file=sys.stderr, flush=True)


@click.command(
    cls=_CommandAfterSeparator,
    context_settings={"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]},
)
@click.option(
    "--out",
    default="effrec_runs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder that receives the run directory <UTC time>-<name>.",
)
@click.option("--name", help="Name of the run directory [default: the config file's stem or the program].")
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False),
    help="Record into exactly this directory; the effrecs of a job's hosts may share it (a shared filesystem) "
    "[default: <out>/<job> where SLURM or torchrun's --rdzv-id names the job, else <out>/<UTC time>-<name>].",
)
@click.option(
    "--interval",
    type=CheckedOption(POLL_INTERVAL_S, "--interval"),
    help="Seconds between NVML polls, 0.001 to 3600 [default: EFFICIENTLLM_COLLECTION_INTERVAL or 0.1].",
)
@click.option(
    "--no-sync",
    is_flag=True,
    help="Take step times on the host's clock instead of CUDA events (the CPU's view of the step).",
)
@click.option(
    "--profile-steps",
    type=StepRange("--profile-steps"),
    help="Run the PyTorch profiler over steps A to B (at most 20) on every rank and keep its traces in the "
    "run directory; the only option that slows the steps it covers. effanalyze reports their top kernels "
    "and GPU idle time (pip install 'efftrace[profile]').",
)
@click.option(
    "--status",
    is_flag=True,
    help="Print a live line on stderr every 2 s: elapsed time, last finished step, power drawn now.",
)
@click.version_option(__version__, "--version", prog_name="effrec", message="%(prog)s %(version)s")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def effrec(
    out: str,
    name: str | None,
    run_dir: str | None,
    interval: float | None,
    no_sync: bool,
    profile_steps: tuple[int, int] | None,
    status: bool,
    command: tuple[str, ...],
) -> int:
    """Run COMMAND and record GPU telemetry and training events for effanalyze.

    \b
    Examples:
      effrec -- llamafactory-cli train examples/train_lora/llama3_1_lora_sft_efficientllm.yaml
      effrec --interval 0.05 --name bs16 -- torchrun --nproc_per_node 8 train.py
    """
    try:  # every setting checked before anything is created or started
        settings = RecorderSettings.from_env(strict=True)
    except ValueError as error:
        raise UsageProblem(str(error)) from None
    argv = list(command)
    program = _resolve_program(argv[0])
    if not settings.enabled:
        os.execv(program, argv)  # EFFICIENTLLM_METRICS_ENABLED=false: the command, untouched
    interval_s = interval if interval is not None else settings.interval_s
    folder = _run_dir(out, name, run_dir, argv)
    return record(
        folder,
        argv,
        program,
        interval_s,
        settings.history_size,
        cuda_sync=not no_sync,
        status=status,
        profile_steps=profile_steps,
    )


def _run_dir(out: str, name: str | None, given: str | None, argv: list[str]) -> Path:
    """The run directory: ``--run-dir``, else the job's (shared by its hosts), else a fresh one.

    A directory this host has already recorded into is refused: a second recording would replace
    the first one's files.
    """
    job = job_name(argv, os.environ)
    try:
        if given is None and job is None:
            return create_run_dir(out, name or default_name(argv))
        shared = Path(given) if given is not None else Path(out) / (f"{safe_name(name)}-{job}" if name else job)
        folder = shared_run_dir(shared)
    except OSError as error:
        raise UsageProblem(f"cannot create a run directory in {given or out}: {error.strerror or error}") from None
    own = folder / schema.host_manifest_file(socket.gethostname())
    if own.exists():
        raise UsageProblem(
            f"{folder} already holds a recording of host {socket.gethostname()} ({own.name}); give another --run-dir"
        )
    return folder


def record(
    run_dir: Path,
    argv: list[str],
    program: str,
    interval_s: float,
    history_size: int,
    cuda_sync: bool,
    status: bool = False,
    profile_steps: tuple[int, int] | None = None,
) -> int:
    """Sample, run the command to its end, finalise; returns the exit code to leave with."""
    sampling = HostSampling(run_dir, interval_s, history_size, os.environ.get("CUDA_VISIBLE_DEVICES"))
    host = sampling.start()
    manifest = meta.new_manifest(
        argv,
        run_dir.name,
        {
            "interval_s": interval_s,
            "energy_interval_s": ENERGY_INTERVAL_S,
            "gpm_interval_s": polls_per(GPM_INTERVAL_S, interval_s) * interval_s,
            "temperature_interval_s": polls_per(TEMPERATURE_INTERVAL_S, interval_s) * interval_s,
            "clock_reasons_interval_s": polls_per(CLOCK_REASONS_INTERVAL_S, interval_s) * interval_s,
            "power_buffer": True,
            "cuda_sync": cuda_sync,
            "flush_interval_s": FLUSH_INTERVAL_S,
            "history_size": history_size,
            "profile_steps": None if profile_steps is None else list(profile_steps),
        },
        host,
        ["effrec", *sys.argv[1:]],
    )
    _save_manifest(lambda: meta.start(run_dir, manifest))
    _say(f"recording into {run_dir}")
    received: list[int] = []
    started: list[subprocess.Popen] = []

    def deliver(signum: int) -> None:
        if signum == signal.SIGINT and _terminal_delivers_signals():
            return  # the terminal sent it to the command as well; a second one would cut its cleanup
        try:
            started[0].send_signal(signum)
        except OSError:
            pass

    def forward(signum: int, _frame: Any) -> None:
        received.append(signum)
        if started:
            deliver(signum)

    # Installed before the command starts: a signal that arrives while it starts is not lost.
    previous = {signum: signal.signal(signum, forward) for signum in FORWARDED_SIGNALS}
    try:
        child = subprocess.Popen([program, *argv[1:]], env=child_environment(run_dir, cuda_sync, profile_steps))
    except OSError as error:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sampling.stop()
        _save_manifest(lambda: meta.finalise(run_dir, manifest, "failed", None, {}))
        raise UsageProblem(f"cannot run {argv[0]}: {error.strerror or error}") from None
    started.append(child)
    for signum in tuple(received):  # those that came while the command was starting
        deliver(signum)
    live = None
    if status:
        from efftrace.recorder.sampling.live_status import LiveStatus  # only when asked: it imports pyarrow.compute

        live = LiveStatus(run_dir, sampling.power_now_w, len(sampling.gpus))
        live.start()
    try:
        returncode = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if live is not None:
            live.stop()
    sampler_stats = sampling.stop()
    if returncode < 0 or received:
        status = "killed"
    else:
        status = "complete" if returncode == 0 else "failed"
    _save_manifest(lambda: meta.finalise(run_dir, manifest, status, returncode, sampler_stats))
    exit_code = 128 - returncode if returncode < 0 else returncode  # a signal's number, as a shell reports it
    _say(f"run {status} (exit code {exit_code}); trace in {run_dir}")
    if _recorded_anything(run_dir):
        _say(f"next: effanalyze {run_dir} --tensorboard")
    else:
        _say("nothing was recorded (no GPU samples, no train steps or generate calls)")
    return exit_code


def _recorded_anything(run_dir: Path) -> bool:
    """Whether the run has a stream with rows in it: GPU samples, or any rank's events."""
    header_bytes = 1024  # an Arrow stream holding only its schema is smaller than this
    streams = (path for path in run_dir.glob(f"*{schema.ARROW_SUFFIX}") if path.is_file())
    return any(path.stat().st_size > header_bytes for path in streams)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors and exit code 2 for a bad invocation."""
    try:
        code = effrec.main(args=argv, prog_name="effrec", standalone_mode=False)
    except click.UsageError as error:
        _say(f"error: {error.format_message()}")
        code = USAGE_ERROR
    except UsageProblem as error:
        _say(f"error: {error}")
        code = USAGE_ERROR
    except click.Abort:
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
