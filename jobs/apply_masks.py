"""Each row's vote pattern as a bitmask, written by an apply next to the votes.

A full apply holds every LF's vote on a row when it writes the votes, so the same Python pass also
writes the row's pattern as a bitmask (:func:`jobs.aggregate.mask_frame`'s ``__mask``: bit
``lf_index * k + class``) with its gold class id: ``row_id, __mask, gold``, one Parquet file per
Spark partition, in a folder of the run. The apply summary in the votes commit names the folder;
aggregate and write then read those rows (one small row per source row, no shuffle) instead of
grouping the votes table by row, which at 10M rows meant reading 23.7M votes plus 10M ids and
shuffling 260 MB, twice.

A multi-task run writes one mask per task instead (:mod:`jobs.task_masks`: ``__mask_<i>``, bit
``lf_index_in_task * k_task + class``, and ``__gold_<i>`` per task with gold), by the same
:class:`PartitionMasks`.

An incremental apply that runs no new or changed LF writes a complete folder too: the previous
masks of the rows it does not reapply carried over, the reapplied rows' written by its pass
(:mod:`jobs.incremental_masks`). One that runs a new or changed LF or drops one (the bits change, so
nothing can be carried) groups its votes by row into the folder before its commit
(:mod:`jobs.grouped_masks`). The folder is used only when it holds exactly the apply's row count and
was written for the same gold column (for tasks: the same task layout). Everything else falls back to
the grouping: more codes than one mask holds, a non-local master (executors may not share the run
folder), a folder deleted since, a worker that could not write its file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

try:
    import fcntl
except ImportError:  # Windows: no flock, no sweeping
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

MASK = "__mask"
# A multi-task run's files (jobs.task_masks): one mask per task and the gold class id of each task with gold.
TASK_MASK = "__mask_"
TASK_GOLD = "__gold_"
# Codes fit one bitmask (a long) when m * k <= MASK_BITS: each LF votes at most once per row, so a row's
# sorted codes are the set bits of the OR of ``1 << code``.
MASK_BITS = 62
FOLDER_PREFIX = "row_masks-"


def fits(n_lfs: int, cardinality: int) -> bool:
    """Whether ``n_lfs`` LFs with ``cardinality`` classes fit one bitmask."""
    return n_lfs * cardinality <= MASK_BITS


def new_folder(run_folder: str | Path) -> str:
    """A fresh folder name for one apply's masks under ``run_folder`` (unique: a failed rerun of the same
    run id must not overwrite the masks that the committed votes name). Not created here: the apply makes
    it (:func:`create`) where its cleanup covers it."""
    return str(Path(run_folder) / f"{FOLDER_PREFIX}{uuid.uuid4().hex[:12]}")


def create(folder: str | None) -> None:
    """Make the masks folder :func:`new_folder` named (none: nothing to do), and hold its writer lock
    (:data:`WRITER_LOCK`, an ``flock`` of this process) until :func:`release`: a folder whose lock nobody
    holds was left by an apply that was killed (SIGKILL, a lost machine), and :func:`sweep` deletes it."""
    if folder:
        Path(folder).mkdir(parents=True)
        _hold(folder)


# The lock file in a masks folder while its apply runs. Its name starts with "_", so Spark and pyarrow leave it
# out when they read the folder, and rows_in and the carrying of masks read only part-*.parquet.
WRITER_LOCK = "_writer.lock"
_held: dict[str, int] = {}


def hold(folder: str | None, lakehouse: str | Path) -> None:
    """Lock an existing masks folder of ``lakehouse``'s run folders until :func:`release`, as :func:`create` does:
    a ``run`` holds the folder of the votes its apply replaced while it may still put them back, so that the
    folder is swept if the run is killed with its own votes standing."""
    if not folder or not Path(folder).name.startswith(FOLDER_PREFIX) or folder in _held or not Path(folder).is_dir():
        return
    runs = (Path(lakehouse) / "_lakelabel" / "runs").resolve()
    if runs in Path(folder).resolve().parents:
        _hold(folder)


def _hold(folder: str) -> None:
    """Put a locked :data:`WRITER_LOCK` into ``folder`` unless one is there (another process's): the file is made
    and locked under a temporary name and then linked into place, so a sweep never sees it unlocked; the lock
    is never waited for."""
    if fcntl is None:
        return
    tmp = os.path.join(folder, f"{WRITER_LOCK}.{uuid.uuid4().hex[:12]}")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except OSError:  # no lock: the folder is never swept, as before
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.link(tmp, os.path.join(folder, WRITER_LOCK))  # fails when a lock file is there already
    except OSError:
        os.close(fd)
        return
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)
    _held[folder] = fd


def release(folder: str | None) -> None:
    """The apply that made ``folder`` (:func:`create`) ended: drop its lock file (the lock file first, then the
    lock, so a sweep never sees the file unlocked) whether the folder stays, named by the votes commit, or was
    removed."""
    fd = _held.pop(folder, None) if folder else None
    if fd is None:
        return
    try:
        os.remove(os.path.join(folder, WRITER_LOCK))
    except OSError:
        pass
    finally:
        os.close(fd)


def sweep(lakehouse: str | Path, keep: Sequence[str | None] = ()) -> list[str]:
    """Delete the masks folders that killed applies left in ``lakehouse``'s run folders; return them.

    A folder goes only when it holds a :data:`WRITER_LOCK` file that no process holds (its apply died before it
    could delete the folder or release it) and it is not in ``keep`` (the folder the votes commit names: an
    apply killed right after its commit, before its release). Folders without a lock file (a finished apply's,
    or one a lakelabel before the lock wrote) and those of an apply still running are never touched."""
    from jobs.delta_io.leftovers import writer_dead  # the driver's (the tasks import this module too)

    runs = Path(lakehouse) / "_lakelabel" / "runs"
    if fcntl is None or not runs.is_dir():
        return []
    kept = {os.path.realpath(k) for k in keep if k}
    gone = []
    for folder in sorted(runs.glob(f"*/{FOLDER_PREFIX}*")):
        if (not folder.is_dir() or os.path.realpath(folder) in kept or str(folder) in _held
                or not writer_dead(folder / WRITER_LOCK)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        gone.append(str(folder))
    if gone:
        log.warning("row masks: deleted %d folder(s) that a killed apply or run left: %s", len(gone), ", ".join(gone))
    return gone


def batch_masks(votes: np.ndarray, cardinality: int) -> np.ndarray:
    """``[b]`` int64 bitmasks of a ``[b, m]`` votes matrix (-1: abstain or error: no bit)."""
    v = np.asarray(votes, dtype=np.int64)
    ok = (v >= 0) & (v < cardinality)
    shifts = np.arange(v.shape[1], dtype=np.int64) * cardinality + np.where(ok, v, 0)
    # Distinct bits: the sum is the OR.
    return np.where(ok, np.left_shift(np.int64(1), shifts), 0).sum(axis=1, dtype=np.int64)


# Per LF of the run: its task, its first bit in its task's mask, its task's class count; the number of tasks.
Layout = tuple[np.ndarray, np.ndarray, np.ndarray, int]


def batch_task_masks(votes: np.ndarray, layout: Layout) -> np.ndarray:
    """``[b, tasks]`` int64: each task's bitmask (bit ``j * k_task + class``, ``j`` the LF's index in its
    task) of a ``[b, m]`` votes matrix over the run's LFs. ``layout``: :func:`layout_arrays`."""
    task, shift, k, n_tasks = layout
    v = np.asarray(votes)
    flat = np.flatnonzero(v.ravel() >= 0)  # the votes are sparse: work on the cells that voted only
    rows, lf = np.divmod(flat, v.shape[1])
    vote = v.ravel()[flat].astype(np.int64)
    ok = vote < k[lf]
    out = np.zeros(v.shape[0] * n_tasks, dtype=np.int64)
    # Distinct bits within a task: the sum is the OR.
    np.add.at(out, rows[ok] * n_tasks + task[lf[ok]], np.left_shift(np.int64(1), shift[lf[ok]] + vote[ok]))
    return out.reshape(v.shape[0], n_tasks)


def decode(masks: np.ndarray, n_lfs: int, cardinality: int) -> np.ndarray:
    """``[p, n_lfs]`` int16 votes (-1: abstain) of ``[p]`` bitmasks (bit ``lf_index * cardinality + class``)."""
    m = np.asarray(masks, dtype=np.int64)
    bits = ((m[:, None] >> np.arange(n_lfs * cardinality, dtype=np.int64)) & 1).reshape(len(m), n_lfs, cardinality)
    return np.where(bits.any(axis=2), bits.argmax(axis=2), -1).astype(np.int16)


def layout_arrays(columns: Sequence[Sequence[int]], classes: Sequence[int], n_lfs: int) -> Layout:
    """:func:`batch_task_masks`'s layout from each task's LF indices (in the run's LF order) and class count."""
    task = np.zeros(n_lfs, dtype=np.int64)
    shift = np.zeros(n_lfs, dtype=np.int64)
    k = np.zeros(n_lfs, dtype=np.int64)  # an LF of no task: no vote is below 0 classes, so no bit
    for t, (cols, kt) in enumerate(zip(columns, classes)):
        idx = np.asarray(cols, dtype=np.int64)
        task[idx], shift[idx], k[idx] = t, np.arange(len(idx)) * kt, kt
    return task, shift, k, len(classes)


class PartitionMasks:
    """Executor side: one Spark partition's masks, written to a temporary file and renamed when the
    partition is done (a task retried after a failure writes the same rows again; an unfinished
    attempt leaves no file). Never fails the task: a file that cannot be written is left out, and
    the driver's row count check then falls back to the grouping.

    ``tasks``: a multi-task run's ``(columns, classes, gold_tasks)`` (:mod:`jobs.task_masks`): one
    mask column per task (``__mask_<i>``) and a gold column per task with gold (``__gold_<i>``).
    """

    def __init__(self, folder: str, cardinality: int, tasks: tuple[Any, Any, Any] | None = None, *,
                 prefix: str = "part-") -> None:  # fmt: skip
        from pyspark import TaskContext

        ctx = TaskContext.get()
        part = ctx.partitionId() if ctx is not None else 0
        self.k = cardinality
        self.tasks = tasks
        self.layout: Layout | None = None
        # prefix: another Spark job writing into the same folder (jobs.incremental_masks) names its files apart.
        self.path = os.path.join(folder, f"{prefix}{part:05d}.parquet")
        self.tmp = os.path.join(folder, f".{prefix}{part:05d}-{uuid.uuid4().hex[:8]}.tmp")
        self.writer: Any = None
        self.schema: pa.Schema | None = None
        self.failed = False

    def add(self, row_ids: pa.Array, votes: np.ndarray, gold: pa.Array | None) -> None:
        if self.failed:
            return
        try:
            if self.tasks is None:
                masks = pa.array(batch_masks(votes, self.k), pa.int64())
                gold = pa.repeat(pa.scalar(-1, pa.int32()), len(masks)) if gold is None else gold.cast(pa.int32())
                names, arrays = [MASK, "gold"], [masks, gold]
            else:
                columns, classes, gold_tasks = self.tasks
                if self.layout is None:
                    self.layout = layout_arrays(columns, classes, votes.shape[1])
                masks = batch_task_masks(votes, self.layout)
                names = [f"{TASK_MASK}{t}" for t in range(masks.shape[1])] + [f"{TASK_GOLD}{t}" for t in gold_tasks]
                arrays = [pa.array(masks[:, t]) for t in range(masks.shape[1])]
                if gold_tasks:  # gold: array<int> of the gold tasks' class ids, in gold_tasks order
                    flat = gold.flatten().to_numpy(zero_copy_only=False).astype(np.int32)
                    arrays += [pa.array(c) for c in flat.reshape(len(row_ids), len(gold_tasks)).T]
            self._write(pa.RecordBatch.from_arrays([row_ids, *arrays], names=["row_id", *names]))
        except (OSError, pa.ArrowException) as err:
            self._give_up(err)

    def write(self, batch: pa.RecordBatch) -> None:
        """Write rows that are masks already (``row_id``, then the mask and gold columns: carried ones)."""
        if self.failed:
            return
        try:
            self._write(batch)
        except (OSError, pa.ArrowException) as err:
            self._give_up(err)

    def _write(self, batch: pa.RecordBatch) -> None:
        if self.writer is None:
            self.schema = batch.schema
            self.writer = pq.ParquetWriter(self.tmp, self.schema)
        self.writer.write_batch(batch.cast(self.schema) if batch.schema != self.schema else batch)

    def finish(self) -> None:
        if self.failed:
            return
        try:
            if self.writer is None:  # an empty partition: no file (it adds no rows to the count)
                return
            self.writer.close()
            self.writer = None
            os.replace(self.tmp, self.path)
        except (OSError, pa.ArrowException) as err:
            self._give_up(err)

    def abort(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except (OSError, pa.ArrowException):
                pass
            self.writer = None
        try:
            os.remove(self.tmp)
        except OSError:
            pass

    def _give_up(self, err: BaseException) -> None:
        self.failed = True
        self.abort()
        # Debug only: this runs in a Python worker, whose lines reach the console raw, once per task attempt; the
        # driver says once that the masks are incomplete and the votes are grouped instead (usable_folder).
        logging.getLogger(__name__).debug("row masks: %s not written (%s); aggregate will group the votes",
                                          self.path, err)


@contextlib.contextmanager
def optional(folder: str, lakehouse: str | Path, what: str) -> Iterator[None]:
    """Masks only save time: when the block writing them into ``folder`` (a run folder's of ``lakehouse``) fails,
    the failure is logged (``what``: "carried from F", "built from the votes"), the folder deleted (the apply then
    names no masks, and aggregate and write group the votes) and the apply goes on. A signal is not a failure:
    when SIGTERM's or Ctrl-C's cancelling makes the Spark call raise its job's error, that error goes on up."""
    from jobs.runtime import signals

    try:
        yield
    except Exception as err:  # noqa: BLE001 - the votes are what must be committed; an interrupt is not caught
        if signals.stopped_by_signal(err):
            raise
        log.warning("apply: row masks not %s (%s); aggregate and write will group the votes", what, err)
        remove(folder, lakehouse)


def write_frame(rows: Any, folder: str, prefix: str, add: Any = None, *, cardinality: int = 0,
                tasks: tuple[Any, Any, Any] | None = None) -> None:  # fmt: skip
    """Write the DataFrame ``rows`` into the masks ``folder``, one file per partition through
    :class:`PartitionMasks` (``prefix``: this job's file names; ``cardinality``, ``tasks``: as there), in a job
    group (:func:`jobs.delta_io.local.job_group`: a failed task or a signal stops the other tasks before the
    caller deletes the folder). ``rows`` are masks already (``PartitionMasks.write``), or
    ``add(out, batch)`` turns each Arrow batch into masks (``out.add``)."""
    from jobs.delta_io.local import job_group

    writer = PartitionMasks  # the class as the driver sees it, pickled with the function

    def write_partition(batches):
        out = writer(folder, cardinality, tasks, prefix=prefix)
        try:
            for batch in batches:
                if batch.num_rows:
                    out.write(batch) if add is None else add(out, batch)
            out.finish()
        finally:
            out.abort()
        yield pa.RecordBatch.from_arrays([pa.array([0], pa.int64())], names=["n"])

    with job_group(rows.sparkSession, "masks"):
        rows.mapInArrow(write_partition, "n long").collect()


def folder_for(spark: Any, run_folder: str | Path, fits_one: bool) -> str | None:
    """A new folder name for a full apply's masks under ``run_folder``, or None when they are not written:
    codes that do not fit (``fits_one`` false), or a master whose executors may not share the run folder."""
    if not fits_one or not spark.sparkContext.master.startswith("local"):
        return None
    return new_folder(run_folder)


def summary(folder: str, n_rows: int, gold_column: str | None, tasks: Any = None) -> dict[str, Any]:
    """What the votes commit's apply summary says of a complete masks folder (``ApplyResult.row_masks``);
    a multi-task run's (``tasks``: :class:`jobs.task_masks.TaskMasks`) names its layout instead of a gold column."""
    if tasks is not None:
        return {"path": folder, "rows": n_rows, "tasks": len(tasks.classes), "layout": tasks.key}
    return {"path": folder, "gold_column": gold_column or "", "rows": n_rows}


def rows_in(folder: str) -> int | None:
    """Rows in the finished mask files of ``folder`` (Parquet footers only); None when it is unreadable."""
    try:
        files = sorted(p for p in Path(folder).glob("part-*.parquet"))
        return sum(pq.read_metadata(str(p)).num_rows for p in files)
    except (OSError, pa.ArrowException):
        return None


def complete(folder: str, n_rows: int) -> bool:
    """Whether ``folder`` holds the masks of exactly ``n_rows`` rows."""
    return bool(folder) and Path(folder).is_dir() and rows_in(folder) == n_rows


def remove(folder: str | None, lakehouse: str | Path) -> None:
    """Delete a masks folder of ``lakehouse``'s run folders (best effort). A folder elsewhere stays: a votes
    table copied with its lakehouse (``cp -a``) still names the original's folder, which is not ours to delete."""
    if not folder or not Path(folder).name.startswith(FOLDER_PREFIX):
        return
    runs = (Path(lakehouse) / "_lakelabel" / "runs").resolve()  # _lakelabel may be a link to another disk
    if runs in Path(folder).resolve().parents:
        # A task of a job stopped just now may rename its file in while the folder is deleted (rmtree's rmdir
        # then fails and the folder stays, named nowhere): delete again until it is gone. Once it is, no task
        # can write there: nothing but the apply creates the folder.
        for attempt in range(5):
            shutil.rmtree(folder, ignore_errors=True)
            if not os.path.lexists(folder):
                break
            time.sleep(0.1 * (attempt + 1))
    else:
        log.info("row masks %s kept: not under this lakehouse's run folders %s", folder, runs)


def usable_folder(row_masks: dict[str, Any] | None, n_rows: int, mismatch: str | None) -> str | None:
    """The masks folder an apply summary names (``row_masks``) when it can be read instead of grouping the
    votes, else None: none written, ``mismatch`` (why it was written for something else), incomplete or gone."""
    folder = (row_masks or {}).get("path", "")
    if not folder:
        return None
    if mismatch:
        log.info("row masks %s %s: grouping the votes", folder, mismatch)
        return None
    if not complete(folder, n_rows):
        log.info("row masks %s are missing or incomplete: grouping the votes", folder)
        return None
    return folder


def stored_masks(spark: Any, row_masks: dict[str, Any], n_rows: int, gold_column: str | None,
                 id_type: Any) -> Any:  # fmt: skip
    """``row_id, __mask, gold`` from the folder an apply summary names (``row_masks``), or None when it
    cannot be used (none written, another gold column, incomplete or gone)."""
    from pyspark.sql import functions as F

    if (row_masks or {}).get("layout"):  # a multi-task run's (jobs.task_masks)
        return None
    given = (row_masks or {}).get("gold_column", "")
    mismatch = f"carry gold column {given!r}, not {gold_column!r}" if given != (gold_column or "") else None
    folder = usable_folder(row_masks, n_rows, mismatch)
    if folder is None:
        return None
    df = spark.read.parquet(folder)
    return df.select(F.col("row_id").cast(id_type).alias("row_id"), F.col(MASK), F.col("gold").cast("int"))
