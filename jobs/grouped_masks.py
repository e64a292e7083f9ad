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
as aggregate would (:func:`mask_rows`; a multi-task run: one mask per task from the grouping a multi-task
run does, :func:`write_task_masks`) and writes them into the apply's masks folder, one file per partition
through :class:`jobs.apply_masks.PartitionMasks`. The votes commit then
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

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import aggregate, apply_masks
from jobs.apply_masks import MASK
from jobs.delta_io.sources import Source
from jobs.multitask_labels import dense_votes
from jobs.vote_groups import group_codes, partitions_for, vote_codes

log = logging.getLogger(__name__)

__all__ = ["write_into", "mask_rows", "write", "write_task_masks"]

# The files this module writes (PartitionMasks' prefix): apart from the pass's ``part-`` and the carry's.
PREFIX = "part-g"


def write_into(votes: DataFrame, source: Source, lf_names: Sequence[str], label_space: Sequence[str], folder: str,
               tasks: Any = None, *, lakehouse: str | Path, n_votes: int = 0) -> None:  # fmt: skip
    """Group ``votes`` (the whole new votes table, ``n_votes`` votes) by row into ``folder`` (an empty masks
    folder of a run of ``lakehouse``): each source row's masks as the LF pass writes them, ``row_id, __mask,
    gold`` or with ``tasks`` (:class:`jobs.task_masks.TaskMasks`) ``row_id, __mask_<i>.., __gold_<i>..``.
    ``lf_names``: the apply's LFs in registry order (the pass's bit order); ``label_space``: the registry's (its
    class count sizes the codes). On failure the folder is deleted (the apply then names no masks) and the apply
    goes on: the masks only save time."""
    started = time.perf_counter()
    with apply_masks.optional(folder, lakehouse, "built from the votes"):
        if tasks is None:
            write(mask_rows(votes, source, lf_names, label_space), folder)
        else:
            write_task_masks(votes, source, lf_names, len(label_space), tasks, folder, n_votes)
        log.info("apply: row masks built by grouping the votes by row into %s (%.1fs)", folder,
                 time.perf_counter() - started)


def mask_rows(votes: DataFrame, source: Source, lf_names: Sequence[str], label_space: Sequence[str]) -> DataFrame:
    """``row_id, __mask, gold``: every source row's mask (:func:`jobs.aggregate.mask_frame`, the grouping aggregate
    does without masks) and gold class id."""
    frame = aggregate.mask_frame(votes, aggregate.source_ids(source, label_space), lf_names, len(label_space))
    return frame.select("row_id", MASK, F.col("gold").cast("int").alias("gold"))


def write(rows: DataFrame, folder: str) -> None:
    """Write ``rows`` (:func:`mask_rows`) into ``folder``, one file per partition (renamed into place when
    complete; a file that could not be written is left out, and the apply's row count check names no masks)."""
    apply_masks.write_frame(rows, folder, PREFIX)


def write_task_masks(votes: DataFrame, source: Source, lf_names: Sequence[str], k: int, tasks: Any, folder: str,
                     n_votes: int) -> None:  # fmt: skip
    """Each task's mask and the gold tasks' class ids of every source row into ``folder``, from the votes grouped
    by row as a multi-task run without masks groups them (:func:`jobs.vote_groups.group_codes`: codes
    ``lf_index * k + class``, ``k`` the run's largest class count), each partition's rows turned into masks by
    :class:`jobs.apply_masks.PartitionMasks` as the LF pass does (one bit-or per task and row would evaluate every
    task for every vote: 4x slower at 50 tasks)."""
    spark = votes.sparkSession
    codes = vote_codes(votes, lf_names, k)
    golds = [F.array(*[tasks.gold.getItem(j) for j in range(len(tasks.gold_tasks))]).alias("golds")] \
        if tasks.gold_tasks else []
    ids = source.df.select(F.col(source.id_column).alias("row_id"), *golds)
    rows = group_codes(codes, ids, partitions_for(spark, n_votes))
    # Plain values only in the closure (a Column does not pickle).
    layout, n_lfs, with_gold = (tasks.columns, tasks.classes, tasks.gold_tasks), len(lf_names), bool(golds)

    def add(out, batch):
        L = dense_votes(batch.column("pattern"), n_lfs, k)
        out.add(batch.column("row_id"), L, batch.column("golds") if with_gold else None)

    apply_masks.write_frame(rows, folder, PREFIX, add, cardinality=k, tasks=layout)
