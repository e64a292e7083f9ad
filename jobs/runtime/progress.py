"""Progress lines while a long Spark stage runs: at least one every 30 s, with rows done and rows/s.

Every command that starts Spark also runs inside a :class:`Heartbeat`, which speaks when no stage
line came for an interval, so no command is silent for longer than that.

A driver thread wakes every ``LAKELABEL_PROGRESS_SECONDS`` (default 30) while the apply or write
stage runs and logs one line from Spark's status tracker (the tasks of the stage's job group,
``lakelabel:<stage>``) and an accumulator the tasks add their rows to. Accumulators reach the
driver when a task finishes, so "rows done" counts the rows of finished tasks; the task counts
show the rest.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

log = logging.getLogger("jobs.progress")

DEFAULT_SECONDS = 30.0
# perf_counter() of the last progress line any stage logged; Heartbeat stays quiet while they speak.
_last_line = [0.0]


def interval() -> float:
    try:
        return max(0.2, float(os.environ.get("LAKELABEL_PROGRESS_SECONDS", DEFAULT_SECONDS)))
    except ValueError:
        return DEFAULT_SECONDS


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
        if rows is not None:
            text += f"{min(rows, self.total):,} of {self.total:,} rows done ({rows / max(elapsed, 1e-9):,.0f} rows/s), "
        return text + f"{done} of {total} tasks finished, {elapsed:.0f}s"

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

    def __init__(self, spark: Any, command: str) -> None:
        super().__init__(spark, command)
        self.command = command

    def line(self) -> str:
        tracker = self.sc.statusTracker()
        jobs, done, total = _task_counts(tracker, tracker.getActiveJobsIds())
        running = f"{jobs} Spark job(s) running, {done} of {total} tasks finished" if jobs else "no Spark job running"
        return f"{self.command}: working, {running}, {time.perf_counter() - self._started:.0f}s"

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds / 2):
            now = time.perf_counter()
            if now - max(_last_line[0], self._started) < self.seconds:
                continue
            try:
                log.info("%s", self.line())
                _last_line[0] = now
            except Exception as err:  # noqa: BLE001 - progress must never fail the job
                log.debug("heartbeat line failed: %s", err)
