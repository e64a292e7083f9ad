"""Progress lines while a long Spark stage runs: at least one every 30 s (every 25 s by default), with rows
done and rows/s.

Every command that starts Spark also runs inside a :class:`Heartbeat`, which speaks when no stage
line came for an interval, so no command is silent for longer than that.

A driver thread wakes every ``LAKELABEL_PROGRESS_SECONDS`` (default 25) while the apply or write
stage runs and logs one line from Spark's status tracker (the tasks of the stage's job group,
``lakelabel:<stage>``) and an accumulator the tasks add their rows to. Accumulators reach the
driver when a task finishes, so "rows done" counts the rows of finished tasks; the task counts
show the rest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

log = logging.getLogger("jobs.progress")

# 25, not 30: a line at least every 30 s with the margin a busy machine needs (a drill measured gaps of 30.1 s).
DEFAULT_SECONDS = 25.0
# perf_counter() of the last progress line any stage logged; Heartbeat stays quiet while they speak.
_last_line = [0.0]
# perf_counter() since when a cluster session has had no executor (None: it has one, or is local).
_no_executor_since: list[float | None] = [None]
# The exit line of a command whose Spark jobs a Heartbeat cancelled because no executor came in
# spark.executor_wait_seconds; the CLI prints it (exit 3) in place of the cancelled job's error.
_executor_timeout: list[str | None] = [None]


@contextlib.contextmanager
def waiting_before_spark(command: str, what: str):
    """A line every interval while ``command`` waits for ``what`` before its Spark session (and its heartbeat)
    starts: ``run: working, waiting for the MLflow tracking server http://..., 50s``."""
    stop, started = threading.Event(), time.perf_counter()

    def loop() -> None:
        while not stop.wait(interval()):
            log.info("%s: working, waiting for %s, %.0fs", command, what, time.perf_counter() - started)

    thread = threading.Thread(target=loop, name="lakelabel-waiting", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def interval() -> float:
    try:
        return max(0.2, float(os.environ.get("LAKELABEL_PROGRESS_SECONDS", DEFAULT_SECONDS)))
    except ValueError:
        return DEFAULT_SECONDS


def _executor_wait(sc: Any) -> float | None:
    """Seconds a cluster session has had no executor registered; None while it has one, or on a
    local master (where the driver runs the tasks).

    Spark keeps a job whose executors never come (a request no worker can meet, every worker gone)
    waiting forever, and its only word on it, "Initial job has not accepted any resources", is a
    driver WARN that lakelabel's log4j config hides. The driver's own block manager is one of the
    entries counted, hence the ``- 1``.
    """
    if sc.master.startswith("local"):
        return None
    now = time.perf_counter()
    try:
        executors = sc._jsc.sc().getExecutorMemoryStatus().size() - 1
    except Exception as err:  # noqa: BLE001 - a session whose JVM side is out of reach: no note, no line lost
        log.debug("could not count the executors: %s", err)
        return None
    if executors > 0:
        _no_executor_since[0] = None
        return None
    if _no_executor_since[0] is None:
        _no_executor_since[0] = now
    return now - _no_executor_since[0]


def no_executor_note(sc: Any, seconds: float) -> str:
    """What a progress line says while a cluster session has no executor: where, for how long, why."""
    conf = sc.getConf()
    need = f"spark.executor.memory={conf.get('spark.executor.memory', '1g')}"
    cores = conf.get("spark.executor.cores", None)
    need += f" / spark.executor.cores={cores}" if cores else " / one free core"
    return (f"no executor registered with {sc.master} for {seconds:.0f}s: the cluster has no free worker that meets "
            f"{need} (or every worker is gone); see the master's UI")


def with_executor_note(sc: Any, text: str) -> str:
    """``text``, plus :func:`no_executor_note` while a cluster session has no executor."""
    waited = _executor_wait(sc)
    return text if waited is None else f"{text}; {no_executor_note(sc, waited)}"


def executor_timeout() -> str | None:
    """The exit line when a :class:`Heartbeat` cancelled the Spark jobs for want of executors, else None."""
    return _executor_timeout[0]


def reset_executor_timeout() -> None:
    _executor_timeout[0] = None


def _task_counts(tracker: Any, job_ids: Any) -> tuple[int, int, int]:
    """(jobs, finished tasks, tasks) of the Spark jobs ``job_ids``."""
    jobs = done = total = 0
    for job_id in job_ids:
        job = tracker.getJobInfo(job_id)
        jobs += 1
        for stage_id in job.stageIds if job else ():
            info = tracker.getStageInfo(stage_id)
            if info is not None:
                done += info.numCompletedTasks
                total += info.numTasks
    return jobs, done, total


class _Ticker:
    """A daemon thread that runs ``_loop`` between ``__enter__`` and ``__exit__``."""

    def __init__(self, spark: Any, name: str) -> None:
        self.sc, self.name = spark.sparkContext, name
        self.seconds = interval()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def _loop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, name=f"lakelabel-{type(self).__name__}-{self.name}",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


class Progress(_Ticker):
    """Context manager: log ``<stage>: N of M rows (X rows/s), T of U tasks, Ss`` every interval.

    Parameters
    ----------
    spark : SparkSession
    stage : str
        ``apply`` or ``write``; the Spark jobs must run under the job group ``lakelabel:<stage>``
        (:func:`jobs.runtime.session.describe`).
    total_rows : int
        Rows the stage will process (the source's row count).
    rows_done : pyspark Accumulator, optional
        Rows finished so far, added to by the tasks.
    """

    def __init__(self, spark: Any, stage: str, total_rows: int, rows_done: Any = None) -> None:
        super().__init__(spark, stage)
        self.stage, self.total, self.rows_done = stage, int(total_rows), rows_done
        self._jobs_before: set[int] = set()

    def __enter__(self) -> Progress:
        self._jobs_before = set(self._job_ids())
        return super().__enter__()

    def _job_ids(self) -> list[int]:
        return list(self.sc.statusTracker().getJobIdsForGroup(f"lakelabel:{self.stage}"))

    def tasks(self) -> tuple[int, int]:
        """(finished, total) tasks of the stage's Spark jobs started since entering."""
        _, done, total = _task_counts(self.sc.statusTracker(), set(self._job_ids()) - self._jobs_before)
        return done, total

    def line(self) -> str:
        elapsed = time.perf_counter() - self._started
        rows = int(self.rows_done.value) if self.rows_done is not None else None
        done, total = self.tasks()
        text = f"{self.stage}: "
        if rows is not None and rows >= self.total > 0:  # later passes over the rows: a rate would only fall (a drill)
            text += f"all {self.total:,} rows done, "
        elif rows is not None:
            text += f"{min(rows, self.total):,} of {self.total:,} rows done ({rows / max(elapsed, 1e-9):,.0f} rows/s), "
        return with_executor_note(self.sc, text + f"{done} of {total} tasks finished, {elapsed:.0f}s")

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                log.info("%s", self.line())
                _last_line[0] = time.perf_counter()
            except Exception as err:  # noqa: BLE001 - progress must never fail the job
                log.debug("progress line failed: %s", err)


class Heartbeat(_Ticker):
    """Context manager around a whole command: a line at least every interval, whatever runs.

    The stages with their own :class:`Progress` (apply, write, analyze, diff, train) log rows and
    tasks; every other command (annotate, suggest, gold import, ...) would be silent through its
    Spark jobs. While no stage line came within the interval, this logs the command's elapsed time
    and the tasks of the Spark jobs running at that moment.
    """

    def __init__(self, spark: Any, command: str, executor_wait: float = 0.0) -> None:
        super().__init__(spark, command)
        self.command = command
        # spark.executor_wait_seconds: on a cluster, how long Spark jobs may wait with no executor.
        self.executor_wait = float(executor_wait or 0.0)
        self._job_waiting_since: float | None = None

    def __enter__(self) -> Heartbeat:
        _no_executor_since[0] = None
        reset_executor_timeout()
        return super().__enter__()

    def line(self) -> str:
        tracker = self.sc.statusTracker()
        jobs, done, total = _task_counts(tracker, tracker.getActiveJobsIds())
        running = f"{jobs} Spark job(s) running, {done} of {total} tasks finished" if jobs else "no Spark job running"
        elapsed = time.perf_counter() - self._started
        return with_executor_note(self.sc, f"{self.command}: working, {running}, {elapsed:.0f}s")

    def _check_executors(self) -> None:
        """Cancel the Spark jobs once one has waited ``executor_wait`` seconds with no executor.

        The cancelled job fails the command in its main thread, whose normal failure path deletes
        uncommitted files and restores the tables; the CLI then prints :func:`executor_timeout`
        with exit 3 (a worker may come back, or free up). Jobs started later are cancelled too
        while there is still no executor, so no cleanup job hangs either.
        """
        # Counted from when a job is waiting with no executor, not from when the last one left: with
        # dynamic allocation a session may keep none between jobs (a long label-model fit on the driver).
        if _executor_wait(self.sc) is None or not list(self.sc.statusTracker().getActiveJobsIds()):
            self._job_waiting_since = None
            return
        now = time.perf_counter()
        self._job_waiting_since = self._job_waiting_since or now
        waited = now - self._job_waiting_since
        if waited < self.executor_wait:
            return
        if _executor_timeout[0] is None:
            _executor_timeout[0] = (
                f"{no_executor_note(self.sc, waited)}, longer than spark.executor_wait_seconds="
                f"{self.executor_wait:g}; lakelabel {self.command} cancelled its Spark jobs and put back what it had "
                f"committed where that needs no executor (lakelabel's own Delta IO; with native Delta, check the "
                f"tables' history). Free or add a worker that meets the request, or lower the request in spark.conf"
            )
            log.warning("cancelling the Spark jobs: no executor registered with %s for %.0fs (spark.executor_wait_seconds=%g)",
                        self.sc.master, waited, self.executor_wait)
        self.sc.cancelAllJobs()

    def _loop(self) -> None:
        # Awake every tenth of the interval, so no gap is longer than 1.1 intervals (it was 1.5 with half-interval
        # waits), and at least every 5 s, the executor check's pace on a cluster.
        cluster = self.executor_wait > 0 and not self.sc.master.startswith("local")
        wake = min(self.seconds / 10, 5.0)
        while not self._stop.wait(wake):
            now = time.perf_counter()
            if cluster:
                try:
                    self._check_executors()
                except Exception as err:  # noqa: BLE001 - a failed check must never fail the job
                    log.debug("executor check failed: %s", err)
            if now - max(_last_line[0], self._started) < self.seconds:
                continue
            try:
                log.info("%s", self.line())
                _last_line[0] = now
            except Exception as err:  # noqa: BLE001 - progress must never fail the job
                log.debug("heartbeat line failed: %s", err)
