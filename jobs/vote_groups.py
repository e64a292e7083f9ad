"""The votes grouped by row: each row's sorted vote codes, sorted and cut in Arrow and numpy.

:func:`group_codes` is the grouping of a multi-task run without row masks (:func:`jobs.multitask.vote_rows`)
and of an apply that builds each task's masks from its votes (:mod:`jobs.grouped_masks`): one shuffle of the
votes and the source ids by row id, no per-row lists in the JVM.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

__all__ = ["vote_codes", "group_codes", "group_table", "partitions_for", "VOTES_PER_PARTITION", "VOTES_PER_TASK"]

# Votes per partition of the grouping by row: a partition is sorted in one Python worker's memory.
VOTES_PER_PARTITION = 2_000_000
# Votes per task the grouping aims at when the shuffle allows it: partitions that follow the votes, not the cores
# registered when the job starts (an autoscaling cluster's later executors get tasks too).
VOTES_PER_TASK = 500_000
_OUT_ROWS = 65_536


def vote_codes(votes: DataFrame, lf_names: list[str] | tuple[str, ...], k: int) -> DataFrame:
    """``row_id, code``: one row per vote of ``votes`` (a votes table) by an LF of ``lf_names``, its code
    ``lf_index * k + class`` (``lf_index`` in ``lf_names``' order, ``k`` the largest class count)."""
    index = votes.sparkSession.createDataFrame([(n, i) for i, n in enumerate(lf_names)], "lf_name string, lf_index int")
    return votes.where(F.col("vote") >= 0).join(F.broadcast(index), "lf_name").select(
        "row_id", (F.col("lf_index") * k + F.col("vote")).cast("int").alias("code"))


def group_codes(codes: DataFrame, ids: DataFrame, partitions: int) -> DataFrame:
    """``row_id, pattern array<int>[, golds]``: each row of ``ids`` with its sorted vote codes.

    ``codes``: ``row_id, code`` (one row per vote, code >= 0); ``ids``: ``row_id`` and optionally
    ``golds``. Both are shuffled once by ``row_id`` into ``partitions`` partitions (a union, no
    join); each partition is sorted by (row id, code) in Arrow and cut into rows with numpy, so
    no per-row objects are built in the JVM (Spark's ``collect_list`` grouping falls back to
    sorting every vote once it holds 128 keys). Rows of ``ids`` without votes get ``[]``; codes
    of ids not in ``ids`` are dropped.
    """
    from pyspark.sql.types import ArrayType, IntegerType, StructField, StructType

    with_golds = "golds" in ids.columns
    id_type = ids.schema["row_id"].dataType
    marks = ids.select("row_id", F.lit(-1).cast("int").alias("code"),
                       *([F.col("golds").cast("array<int>").alias("golds")] if with_golds else []))  # fmt: skip
    votes = codes.select(F.col("row_id").cast(id_type).alias("row_id"), F.col("code").cast("int").alias("code"),
                         *([F.lit(None).cast("array<int>").alias("golds")] if with_golds else []))  # fmt: skip
    both = marks.unionByName(votes).repartition(partitions, "row_id")
    schema = StructType([StructField("row_id", id_type), StructField("pattern", ArrayType(IntegerType()))]
                        + ([StructField("golds", ArrayType(IntegerType()))] if with_golds else []))  # fmt: skip

    def group_partition(batches):
        parts = [b for b in batches if b.num_rows]
        if parts:
            yield from group_table(pa.Table.from_batches(parts))

    return both.mapInArrow(group_partition, schema)


def group_table(t: pa.Table) -> Iterator[pa.RecordBatch]:
    """:func:`group_codes` on one partition's rows: ``row_id, code[, golds]`` (code -1: a row of ids)."""
    import pyarrow.compute as pc

    golds = ["golds"] if "golds" in t.column_names else []
    t = t.take(pc.sort_indices(t, sort_keys=[("row_id", "ascending"), ("code", "ascending")]))
    rid = t.column("row_id").combine_chunks()
    code = t.column("code").combine_chunks().to_numpy(zero_copy_only=False)
    n = len(code)
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = pc.not_equal(rid.slice(1), rid.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    kept = code[starts] == -1  # a row of ids (its -1 sorts first): votes of other ids are dropped
    voted = (code >= 0) & kept[group]
    counts = np.bincount(group[voted], minlength=len(starts))[kept]
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    values = pa.array(code[voted], pa.int32())
    at = pa.array(starts[kept])
    ids = rid.take(at)
    gold = t.column("golds").combine_chunks().take(at) if golds else None
    for lo in range(0, len(counts), _OUT_ROWS):
        hi = min(lo + _OUT_ROWS, len(counts))
        pattern = pa.ListArray.from_arrays(pa.array(offsets[lo:hi + 1] - offsets[lo]),
                                           values.slice(offsets[lo], offsets[hi] - offsets[lo]))  # fmt: skip
        yield pa.RecordBatch.from_arrays([ids.slice(lo, hi - lo), pattern] + ([gold.slice(lo, hi - lo)] if golds else []),
                                         names=["row_id", "pattern", *golds])  # fmt: skip


def partitions_for(spark: SparkSession, n_votes: int) -> int:
    """Partitions of :func:`group_codes` for ``n_votes`` votes: one per :data:`VOTES_PER_TASK` votes, at least one
    per core, at most the shuffle's; and more when a partition would hold more than :data:`VOTES_PER_PARTITION`.

    Not the shuffle's alone: each partition is a Python task of its own, and a cluster's default is 200 (an explicit
    repartition is not coalesced by adaptive execution): a 20,000-row run of two tasks on a 2-core standalone worker
    spent 166 s grouping its votes in 200 partitions, about 0.25 s of Python start-up each."""
    cores = max(1, spark.sparkContext.defaultParallelism)
    wanted = max(cores, -(-n_votes // VOTES_PER_TASK))
    return max(min(int(spark.conf.get("spark.sql.shuffle.partitions")), wanted), -(-n_votes // VOTES_PER_PARTITION))
