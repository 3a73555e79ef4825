"""The analysis on a Dask cluster: ``effanalyze RUN --workers N`` (a local cluster of N worker
processes) or ``--scheduler ADDRESS`` (a cluster already running), and ``load_run(..., client=)``.

Only where the partitions' tasks run changes (:mod:`efftrace.analyzer.compute.engine`): the driver
reads the events, works out the windows' edges once and sends them to every worker once; each task
reads its (file, byte range) partition from the filesystem the run directory is on and returns its
partial state, which the driver joins in file order. Dask retries a task whose worker died, and a
task's result depends only on its partition, so a lost worker costs a retry, never a different
figure. Dask (``dask`` and ``distributed``) is an extra: nothing here is imported without it.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from efftrace.analyzer.compute.engine import Progress, in_background
from efftrace.analyzer.errors import TraceError
from efftrace.analyzer.read.locations import is_local
from efftrace.analyzer.read.partitions import PARTITION_BYTES, Partition

if TYPE_CHECKING:
    from distributed import Client

Result = TypeVar("Result")
Combined = TypeVar("Combined")
RETRIES = 2  # a task that raised (a worker's disk hiccup) is run again this often; a lost worker is retried anyway
CONNECT_TIMEOUT_S = 5  # a scheduler that has not answered by then is not there (it answers in milliseconds)
INSTALL_HINT = "pip install 'efftrace[dask]'"


class ClusterError(Exception):
    """The cluster cannot be used: Dask missing, a scheduler not reachable. One line, for the CLI."""


class DaskEngine:
    """Runs the partitions' tasks on a Dask cluster through ``client``; results in the partitions' order."""

    partition_bytes: int | None = PARTITION_BYTES

    def __init__(self, client: Client, progress: Progress | None = None) -> None:
        self.client = client
        self.progress = progress

    def map(self, function: Callable[..., Result], partitions: Sequence[Partition], *args: Any) -> list[Result]:
        if not partitions:
            return []
        from distributed import as_completed

        # a Future of this process (the counter's windows while they are found) is waited for here: a task
        # elsewhere gets the value; the values go to every worker once, not once per task
        values = [arg.result() if isinstance(arg, Future) else arg for arg in args]
        shared = [self.client.scatter(value, broadcast=True, hash=False) for value in values]
        name = f"efftrace-{getattr(function, '__name__', 'task')}-{uuid.uuid4().hex[:8]}"
        futures = [
            self.client.submit(function, _absolute(partition), *shared, key=f"{name}-{at}", retries=RETRIES, pure=False)
            for at, partition in enumerate(partitions)
        ]
        sizes = {future.key: partition.size for future, partition in zip(futures, partitions, strict=True)}
        total, done = sum(sizes.values()), 0
        try:
            for finished in as_completed(futures, loop=self.client.loop):
                done += sizes[finished.key]
                if self.progress is not None:
                    self.progress(f"{len(partitions)} partitions on the cluster", done, total)
            return self.client.gather(futures)
        except TraceError:
            raise
        except Exception as error:  # noqa: BLE001 - a cluster's failure, said in one line by the CLI
            raise ClusterError(f"the cluster failed the analysis ({error.__class__.__name__}: {error})") from None
        finally:
            self.client.cancel(futures)
            self.client.cancel(shared)

    def map_later(
        self,
        function: Callable[..., Result],
        partitions: Sequence[Partition],
        *args: Any,
        then: Callable[[list[Result]], Combined],
    ) -> Future[Combined]:
        quiet = DaskEngine(self.client)  # one bar at a time: the look-ahead pass does not draw
        return in_background(lambda: then(quiet.map(function, partitions, *args)))


def _absolute(partition: Partition) -> Partition:
    """The partition as a worker reads it: by absolute path (its working directory is not the
    driver's), on the one core its task has (the cluster runs tasks side by side, not threads)."""
    path = partition.path.absolute() if is_local(partition.path) else partition.path  # a URL is the same anywhere
    return dataclasses.replace(partition, path=path, progress=None, decode_ahead=False)


@contextmanager
def cluster_engine(workers: int | None = None, scheduler: str | None = None) -> Iterator[DaskEngine]:
    """A :class:`DaskEngine` on a local cluster of ``workers`` processes (one thread each), or on the
    cluster whose scheduler is at ``scheduler``; the local cluster is shut down afterwards."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError(f"--workers and --scheduler need Dask: {INSTALL_HINT}") from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as error:
            raise ClusterError(f"--scheduler {scheduler}: cannot reach the scheduler ({error})") from None
        with client:
            yield DaskEngine(client)
        return
    with dask.config.set({"distributed.nanny.pre-spawn-environ": _worker_environment()}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    with cluster, Client(cluster, set_as_default=False) as client:
        yield DaskEngine(client)


def _worker_environment() -> dict[str, Any]:
    """What Dask sets in a worker before it starts, less ``MALLOC_TRIM_THRESHOLD_``.

    Setting glibc's trim threshold also freezes its mmap threshold, so every temporary array over
    128 KiB is mapped and unmapped afresh: the integration's per-chunk arrays then cost page faults,
    measured at twice the CPU time per task (0.12 against 0.07 s for one host's 3 hours of 8 GPUs).
    """
    import dask

    environment = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environment.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environment
