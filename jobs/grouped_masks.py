"""Row masks of an apply whose LF pass cannot write them, built by grouping the votes by row.

A full apply's pass holds every LF's vote on a row and writes the row's mask (:mod:`jobs.apply_masks`,
:mod:`jobs.task_masks`); an incremental apply that runs no new or changed LF carries the previous masks
(:mod:`jobs.incremental_masks`). One that adds, changes or removes an LF can do neither (nor one whose
previous masks are gone or incomplete): the masks' bits change for every row, and no pass holds all the
votes of the rows it does not reapply. Such an apply used to write no masks: aggregate and write grouped
the votes table by row (:func:`jobs.aggregate.mask_frame`; several tasks: :func:`jobs.multitask.vote_rows`),
and every later incremental apply had nothing to carry until a full apply.

Here that grouping is done by the apply instead, in its ``validate`` (the votes files are written, not
yet committed): :func:`write_into` groups the files of the new votes table by row into each row's mask
(a multi-task run: one per task, :func:`task_mask_frame`) and writes them into the apply's masks
folder, one file per partition through :class:`jobs.apply_masks.PartitionMasks`. The votes commit then
names the folder exactly as it names one the pass wrote, so aggregate and write read it instead of
grouping (the grouping moves from aggregate into the apply; it is not added), the stages run on their
own read it too, and the next incremental apply carries it.

A grouping that fails deletes the folder: the apply commits without masks, and aggregate and write
group the votes as before. A failed or interrupted apply deletes the folder with everything in it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import aggregate, apply_masks
from jobs.apply_masks import MASK, TASK_GOLD, TASK_MASK
from jobs.delta_io.sources import Source

log = logging.getLogger(__name__)

__all__ = ["write_into", "mask_rows", "task_mask_frame"]

# The files this module writes (PartitionMasks' prefix): apart from the pass's ``part-`` and the carry's.
PREFIX = "part-g"


def write_into(votes: DataFrame, source: Source, lf_names: Sequence[str], label_space: Sequence[str], folder: str,
               tasks: Any = None, *, lakehouse: str | Path) -> None:  # fmt: skip
    """Group ``votes`` (the whole new votes table) by row into ``folder`` (an empty masks folder of a run of
    ``lakehouse``): :func:`mask_rows`. On failure the folder is deleted (the apply then names no masks) and
    the apply goes on: the masks only save time."""
    started = time.perf_counter()
    try:
        write(mask_rows(votes, source, lf_names, label_space, tasks), folder)
        log.info("apply: row masks built by grouping the votes by row into %s (%.1fs)", folder,
                 time.perf_counter() - started)
    except Exception as err:  # noqa: BLE001 - the votes are what must be committed; an interrupt is not caught
        log.warning("apply: row masks not built from the votes (%s); aggregate and write will group the votes", err)
        apply_masks.remove(folder, lakehouse)


def mask_rows(votes: DataFrame, source: Source, lf_names: Sequence[str], label_space: Sequence[str],
              tasks: Any = None) -> DataFrame:  # fmt: skip
    """Every source row's masks as the LF pass writes them: ``row_id, __mask, gold``
    (:func:`jobs.aggregate.mask_frame`), or with ``tasks`` (:class:`jobs.task_masks.TaskMasks`)
    ``row_id, __mask_<i>.., __gold_<i>..`` (:func:`task_mask_frame`). ``lf_names``: the apply's LFs in
    registry order (the pass's bit order)."""
    if tasks is None:
        frame = aggregate.mask_frame(votes, aggregate.source_ids(source, label_space), lf_names, len(label_space))
        return frame.select("row_id", MASK, F.col("gold").cast("int").alias("gold"))
    golds = [tasks.gold.getItem(j).cast("int").alias(f"{TASK_GOLD}{t}") for j, t in enumerate(tasks.gold_tasks)]
    ids = source.df.select(F.col(source.id_column).alias("row_id"), *golds)
    return task_mask_frame(votes, ids, lf_names, tasks)


def task_mask_frame(votes: DataFrame, ids: DataFrame, lf_names: Sequence[str], tasks: Any) -> DataFrame:
    """``row_id, __mask_<i>.., __gold_<i>..``: each row of ``ids`` (``row_id`` and the gold tasks'
    ``__gold_<i>``) with each task's bitmask (bit ``j * k_task + class`` for the task's ``j``-th LF, as
    :func:`jobs.apply_masks.batch_task_masks`). One aggregation by row over the votes and the ids together, as
    :func:`jobs.aggregate.mask_frame` (a union, no join, no per-row lists: one long per task); votes of ids not
    in ``ids`` and votes outside their task's classes are dropped."""
    spark = votes.sparkSession
    entries = [(lf_names[c], t, j * k, k) for t, (cols, k) in enumerate(zip(tasks.columns, tasks.classes))
               for j, c in enumerate(cols)]  # fmt: skip
    index = spark.createDataFrame(entries, "lf_name string, task int, shift int, k int")
    masks = [f"{TASK_MASK}{t}" for t in range(len(tasks.classes))]
    golds = [f"{TASK_GOLD}{t}" for t in tasks.gold_tasks]
    id_type = ids.schema["row_id"].dataType
    bit = F.expr("shiftleft(CAST(1 AS BIGINT), shift + vote)")
    bits = (
        votes.where(F.col("vote") >= 0)
        .join(F.broadcast(index), "lf_name")
        .where(F.col("vote") < F.col("k"))
        .select(
            F.col("row_id").cast(id_type).alias("row_id"),
            *[F.when(F.col("task") == t, bit).otherwise(F.lit(0).cast("long")).alias(m) for t, m in enumerate(masks)],
            F.lit(None).cast("boolean").alias("__in_ids"),
            *[F.lit(None).cast("int").alias(g) for g in golds],
        )
    )
    rows = ids.select("row_id", *[F.lit(0).cast("long").alias(m) for m in masks], F.lit(True).alias("__in_ids"),
                      *[F.col(g).cast("int").alias(g) for g in golds])  # fmt: skip
    grouped = rows.unionByName(bits).groupBy("row_id").agg(
        *[F.bit_or(m).alias(m) for m in masks],
        F.max("__in_ids").alias("__in_ids"),
        *[F.first(g, ignorenulls=True).alias(g) for g in golds],
    )
    return grouped.where(F.col("__in_ids")).select("row_id", *masks, *golds)


def write(rows: DataFrame, folder: str) -> None:
    """Write ``rows`` (:func:`mask_rows`) into ``folder``, one file per partition (renamed into place when
    complete; a file that could not be written is left out, and the apply's row count check names no masks)."""

    def write_partition(batches):
        out = apply_masks.PartitionMasks(folder, 0, prefix=PREFIX)
        try:
            for batch in batches:
                if batch.num_rows:
                    out.write(batch)
            out.finish()
        finally:
            out.abort()
        yield pa.RecordBatch.from_arrays([pa.array([0], pa.int64())], names=["n"])

    rows.mapInArrow(write_partition, "n long").collect()
