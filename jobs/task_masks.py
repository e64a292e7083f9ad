"""Row masks of a multi-task run: one vote bitmask per task and row, written by the apply pass.

The single-task pipeline reads the bitmask its apply pass wrote per row (:mod:`jobs.apply_masks`)
instead of grouping the votes by row. A multi-task run's LFs do not fit one mask (50 tasks x 10
LFs x 2 classes: 1,000 codes), but each task's do: task ``i``'s mask has bit ``j * k_i + class``
for its ``j``-th LF (a task fits one long when ``n_lfs * k <= 62``: :func:`jobs.apply_masks.fits`).
So the apply pass, which holds every task's votes of a row when it writes the votes, writes per
row ``row_id, __mask_0 .. __mask_<n-1>`` and, for each task with a gold column, ``__gold_<i>``
(its gold class id, -1 if none). Aggregate counts each task's (mask, gold) pairs with numpy in
one Spark job (:func:`count_patterns`) and the write scores each task per distinct mask
(:func:`jobs.multitask_labels.score_by_mask`): one small row per source row, no shuffle of the
votes.

The same rules as one task's masks: an incremental apply that runs no new or changed LF carries
the previous masks and writes the reapplied rows' (:mod:`jobs.incremental_masks`), one that changes the
LFs groups its votes into each task's masks (:mod:`jobs.grouped_masks`); nothing is written when a task's
codes do not fit a mask, or on a non-local master; a folder that is gone, incomplete, or written
for another layout (other tasks, LFs, classes or gold columns: :attr:`TaskMasks.key`) is not read.
Then :func:`jobs.multitask.vote_rows` groups the votes by row as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import aggregate, apply_masks
from jobs.aggregate import AggregateResult
from jobs.apply_masks import MASK, TASK_GOLD, TASK_MASK
from jobs.delta_io.sources import Source
from jobs.tasks import Task, TaskSet, task_gold_ids

log = logging.getLogger(__name__)

__all__ = ["TaskMasks", "task_masks", "stored", "is_masks", "count_patterns", "aggregate_masks", "task_stats"]


@dataclass(frozen=True, eq=False)
class TaskMasks:
    """What the apply pass needs to write each task's mask per row, and what identifies the layout."""

    columns: tuple[tuple[int, ...], ...]  # per task: its LFs' indices in the run's LF order
    classes: tuple[int, ...]  # per task: its class count
    gold_tasks: tuple[int, ...]  # the tasks with a gold column, whose gold class ids are written
    gold: Any  # Spark column array<int>: those tasks' gold class ids (None without gold tasks)
    key: str  # hash of the tasks' names, LFs, classes and gold columns

    def fits(self) -> bool:
        """Whether every task's codes fit one mask."""
        return all(apply_masks.fits(len(c), k) for c, k in zip(self.columns, self.classes))


def task_masks(task_set: TaskSet, source: Source) -> TaskMasks:
    """The :class:`TaskMasks` of ``task_set`` over ``source`` (gold as :func:`jobs.multitask.vote_rows` reads it)."""
    tasks = task_set.tasks
    where = {name: i for i, name in enumerate(task_set.registry.names)}
    gold_tasks = tuple(i for i, t in enumerate(tasks) if t.gold_column)
    spec = [[t.name, list(t.lf_names), list(t.label_space), t.gold_column or "", t.tag or "", t.separator]
            for t in tasks]  # fmt: skip
    return TaskMasks(
        columns=tuple(tuple(where[n] for n in t.lf_names) for t in tasks),
        classes=tuple(len(t.label_space) for t in tasks),
        gold_tasks=gold_tasks,
        gold=F.array(*[task_gold_ids(source, tasks[i]) for i in gold_tasks]) if gold_tasks else None,
        key=hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16],
    )


def stored(spark: SparkSession, row_masks: dict[str, Any], n_rows: int, masks: TaskMasks,
           id_type: Any) -> DataFrame | None:  # fmt: skip
    """``row_id, __mask_<i>.., __gold_<i>..`` from the folder an apply summary names (``row_masks``), or
    None when it cannot be used (none written, another layout, incomplete or gone)."""
    mismatch = "were written for another task layout" if (row_masks or {}).get("layout") != masks.key else None
    folder = apply_masks.usable_folder(row_masks, n_rows, mismatch)
    if folder is None:
        return None
    df = spark.read.parquet(folder)
    return df.select(F.col("row_id").cast(id_type).alias("row_id"),
                     *[F.col(f"{TASK_MASK}{i}") for i in range(len(masks.classes))],
                     *[F.col(f"{TASK_GOLD}{i}").cast("int") for i in masks.gold_tasks])  # fmt: skip


def is_masks(rows: DataFrame) -> bool:
    """Whether ``rows`` are per-task masks (:func:`stored`), not :func:`jobs.multitask.vote_rows`'s patterns."""
    return f"{TASK_MASK}0" in rows.columns


def count_patterns(rows: DataFrame, n_tasks: int) -> DataFrame:
    """``task int, mask long, gold int, n long``: source rows per (task, mask, gold class) of :func:`stored`
    rows; counted with numpy per Spark partition, summed over partitions by Spark."""
    golds = [t for t in range(n_tasks) if f"{TASK_GOLD}{t}" in rows.columns]

    def count_partition(batches):
        found: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in range(n_tasks)]
        for batch in batches:
            if batch.num_rows == 0:
                continue
            for t in range(n_tasks):
                mask = batch.column(f"{TASK_MASK}{t}").to_numpy(zero_copy_only=False)
                gold = batch.column(f"{TASK_GOLD}{t}").to_numpy(zero_copy_only=False) if t in golds else None
                found[t].append(_distinct(mask, gold, np.ones(len(mask), dtype=np.int64)))
        for t in range(n_tasks):
            if not found[t]:
                continue
            mask, gold, n = _distinct(*(np.concatenate([f[i] for f in found[t]]) for i in range(3)))
            yield pa.RecordBatch.from_arrays([pa.array(np.full(len(mask), t, dtype=np.int32)), pa.array(mask),
                                              pa.array(gold.astype(np.int32)), pa.array(n)],
                                             names=["task", "mask", "gold", "n"])  # fmt: skip

    columns = [f"{TASK_MASK}{t}" for t in range(n_tasks)] + [f"{TASK_GOLD}{t}" for t in golds]
    counted = rows.select(*columns).mapInArrow(count_partition, "task int, mask long, gold int, n long")
    return counted.groupBy("task", "mask", "gold").agg(F.sum("n").cast("long").alias("n"))


def _distinct(mask: np.ndarray, gold: np.ndarray | None, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mask, gold, n)`` summed per distinct (mask, gold) pair (gold None: -1 for every row)."""
    mask = mask.astype(np.int64)
    g = np.zeros(len(mask), dtype=np.int64) if gold is None else gold.astype(np.int64) + 1  # >= 0
    base = int(g.max()) + 1 if len(g) else 1
    if len(mask) == 0 or int(mask.max()) < (1 << 62) // base:  # one int64 key per pair
        distinct, inverse = np.unique(mask * base + g, return_inverse=True)
        counts = np.bincount(inverse.ravel(), weights=n, minlength=len(distinct)).astype(np.int64)
        return distinct // base, distinct % base - 1, counts
    pairs, inverse = np.unique(np.stack([mask, g], axis=1), axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=n, minlength=len(pairs)).astype(np.int64)
    return pairs[:, 0], pairs[:, 1] - 1, counts


def task_frame(rows: DataFrame, index: int) -> DataFrame:
    """Task ``index``'s :func:`jobs.aggregate.mask_frame` rows (``row_id, __mask, gold``) of :func:`stored` rows."""
    gold = F.col(f"{TASK_GOLD}{index}") if f"{TASK_GOLD}{index}" in rows.columns else F.lit(-1)
    return rows.select("row_id", F.col(f"{TASK_MASK}{index}").alias(MASK), gold.cast("int").alias("gold"))


def aggregate_masks(cfg: Any, rows: DataFrame, task_set: TaskSet) -> dict[str, AggregateResult]:
    """:func:`jobs.multitask.aggregate_tasks` over :func:`stored` rows: every task's statistics from one
    Spark job; past ``aggregate.max_patterns`` groups per task, each task on its own
    (:func:`jobs.aggregate.aggregate_masks`: overlap moments)."""
    started = time.perf_counter()
    tasks = task_set.tasks
    golds = [f"{TASK_GOLD}{i}" in rows.columns for i in range(len(tasks))]
    k_max = max(len(t.label_space) for t in tasks)
    limit = max(cfg.aggregate.max_patterns, 0) * (k_max + 1) * len(tasks)
    head = count_patterns(rows, len(tasks)).limit(limit + 1).collect() if limit else []
    if not limit or len(head) > limit:
        log.info("aggregate: more than %d (task, pattern, gold) groups; aggregating each task on its own", limit)
        return {t.name: aggregate.aggregate_masks(task_frame(rows, i), t.lf_names, len(t.label_space),
                                                  max_patterns=cfg.aggregate.max_patterns, with_gold=golds[i])
                for i, t in enumerate(tasks)}  # fmt: skip
    out: dict[str, AggregateResult] = {}
    for i, t in enumerate(tasks):
        mine = [r for r in head if r["task"] == i]
        mask = np.fromiter((r["mask"] for r in mine), dtype=np.int64, count=len(mine))
        gold = np.fromiter((r["gold"] for r in mine), dtype=np.int64, count=len(mine))
        n = np.fromiter((r["n"] for r in mine), dtype=np.int64, count=len(mine))
        lines = apply_masks.decode(mask, len(t.lf_names), len(t.label_space))
        out[t.name] = task_stats(lines, gold, n, t, golds[i], cfg.aggregate.max_patterns, started)
    return out


def task_stats(lines: np.ndarray, gold: np.ndarray, n: np.ndarray, task: Task, with_gold: bool, max_patterns: int,
               started: float) -> AggregateResult:  # fmt: skip
    """Statistics of one task from its (pattern, gold, count) rows, as aggregate_patterns computes them.

    ``lines: [p, m]`` votes (-1 abstain) of the task's ``m`` LFs, ``gold, n: [p]``.
    """
    result = aggregate.pattern_result(lines, gold, n, task.lf_names, len(task.label_space), with_gold=with_gold,
                                      started=started)  # fmt: skip
    if result.stats.patterns is None and result.n_patterns > max_patterns:
        log.warning("aggregate: task %s has %d patterns > aggregate.max_patterns", task.name, result.n_patterns)
    return result
