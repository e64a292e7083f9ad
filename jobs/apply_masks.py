"""Each row's vote pattern as a bitmask, written by a full apply next to the votes.

A full apply holds every LF's vote on a row when it writes the votes, so the same Python pass also
writes the row's pattern as a bitmask (:func:`jobs.aggregate.mask_frame`'s ``__mask``: bit
``lf_index * k + class``) with its gold class id: ``row_id, __mask, gold``, one Parquet file per
Spark partition, in a folder of the run. The apply summary in the votes commit names the folder;
aggregate and write then read those rows (one small row per source row, no shuffle) instead of
grouping the votes table by row, which at 10M rows meant reading 23.7M votes plus 10M ids and
shuffling 260 MB, twice.

The folder is used only when it holds exactly the apply's row count and was written for the same
gold column. Everything else falls back to the grouping: an incremental apply (it writes no masks),
more codes than one mask holds, a non-local master (executors may not share the run folder), a
folder deleted since, a worker that could not write its file.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

MASK = "__mask"
# Codes fit one bitmask (a long) when m * k <= MASK_BITS: each LF votes at most once per row, so a row's
# sorted codes are the set bits of the OR of ``1 << code``.
MASK_BITS = 62
FOLDER_PREFIX = "row_masks-"


def fits(n_lfs: int, cardinality: int) -> bool:
    """Whether ``n_lfs`` LFs with ``cardinality`` classes fit one bitmask."""
    return n_lfs * cardinality <= MASK_BITS


def new_folder(run_folder: str | Path) -> str:
    """A fresh folder for one apply's masks under ``run_folder`` (unique: a failed rerun of the same
    run id must not overwrite the masks that the committed votes name)."""
    path = Path(run_folder) / f"{FOLDER_PREFIX}{uuid.uuid4().hex[:12]}"
    path.mkdir(parents=True)
    return str(path)


def batch_masks(votes: np.ndarray, cardinality: int) -> np.ndarray:
    """``[b]`` int64 bitmasks of a ``[b, m]`` votes matrix (-1: abstain or error: no bit)."""
    v = np.asarray(votes, dtype=np.int64)
    ok = (v >= 0) & (v < cardinality)
    shifts = np.arange(v.shape[1], dtype=np.int64) * cardinality + np.where(ok, v, 0)
    # Distinct bits: the sum is the OR.
    return np.where(ok, np.left_shift(np.int64(1), shifts), 0).sum(axis=1, dtype=np.int64)


class PartitionMasks:
    """Executor side: one Spark partition's masks, written to a temporary file and renamed when the
    partition is done (a task retried after a failure writes the same rows again; an unfinished
    attempt leaves no file). Never fails the task: a file that cannot be written is left out, and
    the driver's row count check then falls back to the grouping."""

    def __init__(self, folder: str, cardinality: int) -> None:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        part = ctx.partitionId() if ctx is not None else 0
        self.k = cardinality
        self.path = os.path.join(folder, f"part-{part:05d}.parquet")
        self.tmp = os.path.join(folder, f".part-{part:05d}-{uuid.uuid4().hex[:8]}.tmp")
        self.writer: Any = None
        self.schema: pa.Schema | None = None
        self.failed = False

    def add(self, row_ids: pa.Array, votes: np.ndarray, gold: pa.Array | None) -> None:
        if self.failed:
            return
        try:
            masks = pa.array(batch_masks(votes, self.k), pa.int64())
            gold = pa.repeat(pa.scalar(-1, pa.int32()), len(masks)) if gold is None else gold.cast(pa.int32())
            if self.writer is None:
                self.schema = pa.schema([("row_id", row_ids.type), (MASK, pa.int64()), ("gold", pa.int32())])
                self.writer = pq.ParquetWriter(self.tmp, self.schema)
            self.writer.write_batch(pa.RecordBatch.from_arrays([row_ids, masks, gold], schema=self.schema))
        except (OSError, pa.ArrowException) as err:
            self._give_up(err)

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
        logging.getLogger(__name__).warning("row masks: %s not written (%s); aggregate will group the votes",
                                            self.path, err)


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


def remove(folder: str | None) -> None:
    """Delete a masks folder (best effort)."""
    if folder and Path(folder).name.startswith(FOLDER_PREFIX):
        shutil.rmtree(folder, ignore_errors=True)


def stored_masks(spark: Any, row_masks: dict[str, Any], n_rows: int, gold_column: str | None,
                 id_type: Any) -> Any:  # fmt: skip
    """``row_id, __mask, gold`` from the folder an apply summary names (``row_masks``), or None when it
    cannot be used (none written, another gold column, incomplete or gone)."""
    from pyspark.sql import functions as F

    folder = (row_masks or {}).get("path", "")
    if not folder:
        return None
    if row_masks.get("gold_column", "") != (gold_column or ""):
        log.info("row masks %s carry gold column %r, not %r: grouping the votes", folder,
                 row_masks.get("gold_column"), gold_column)
        return None
    if not complete(folder, n_rows):
        log.info("row masks %s are missing or incomplete: grouping the votes", folder)
        return None
    df = spark.read.parquet(folder)
    return df.select(F.col("row_id").cast(id_type).alias("row_id"), F.col(MASK), F.col("gold").cast("int"))
