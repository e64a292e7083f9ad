"""Aggregate job: sufficient statistics of the votes, computed on Spark.

Each row's votes become a sorted array of codes ``lf_index * k + class``; rows are grouped by
that pattern. Everything the driver receives is bounded by the number of distinct patterns
(the pattern table itself, only while it has at most ``aggregate.max_patterns`` rows) or by
``(m * k)^2`` (overlap moments) and ``m`` (per-LF counts): the label matrix is never collected.
When a gold column is configured, patterns are also counted per gold class, which is enough
to score any label model and every LF exactly on the driver.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark import StorageLevel
from pyspark.sql import functions as F

from jobs import apply_masks, delta_io
from jobs.apply_masks import MASK, MASK_BITS
from jobs.runtime import command
from jobs.stages import Outcome, finish, votes_table
from jobs.runtime.config import PipelineConfig
from jobs.runtime.session import describe
from jobs.delta_io.sources import Source, gold_ids, load_source, unmatched_gold
from jobs.runtime.lf_sources import build_registry
from jobs.delta_io.files import is_local_path
from jobs.apply_record import ApplyResult, check_lfs_unchanged, check_source_unchanged, load_apply_result
import scipy.sparse as sp

from labelmodel._patterns import row_words
from labelmodel.stats import DENSE_OVERLAP_MAX_COLS, SufficientStats, stats_from_matrix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AggregateResult:
    stats: SufficientStats
    # [p, k] rows per (pattern, gold class), aligned with stats.patterns; None without gold.
    gold_counts: np.ndarray | None
    n_gold: int
    n_patterns: int
    seconds: float
    # Votes and labels of the gold table's current dev and test rows (jobs.people.gold.GoldSets).
    gold_sets: Any = None


# MASK_BITS (jobs.apply_masks): codes fit one bitmask when m * k <= MASK_BITS. Grouping by row is then a
# plain hash aggregation (no per-row lists to collect and sort), and the source ids join the votes in it.


def pattern_frame(
    votes: DataFrame,
    ids: DataFrame,
    lf_names: Sequence[str],
    cardinality: int,
) -> DataFrame:
    """One row per source row: ``(row_id, pattern array<int>, gold int)``; all-abstain rows get ``[]``.

    ``votes`` has ``row_id, lf_name, vote``; ``ids`` has ``row_id`` and ``gold`` (-1 if none); any
    other column of ``ids`` is kept after those three.
    """
    if len(lf_names) * cardinality > MASK_BITS:
        return _pattern_frame_lists(votes, ids, lf_names, cardinality)
    masks = mask_frame(votes, ids, lf_names, cardinality)
    return masks.select("row_id", decode_mask(MASK, len(lf_names) * cardinality).alias("pattern"),
                        *[c for c in masks.columns if c not in ("row_id", MASK)])


def mask_frame(votes: DataFrame, ids: DataFrame, lf_names: Sequence[str], cardinality: int) -> DataFrame:
    """:func:`pattern_frame` with the pattern as a bitmask: ``row_id, __mask long, gold, <other ids columns>``.

    Needs ``len(lf_names) * cardinality <= MASK_BITS``. One aggregation by row over the votes and
    the ids together (a union, not a join); votes of ids not in ``ids`` are dropped.
    """
    if len(lf_names) * cardinality > MASK_BITS:
        raise ValueError(f"{len(lf_names)} LFs x {cardinality} classes do not fit a {MASK_BITS}-bit mask")
    spark = votes.sparkSession
    index = spark.createDataFrame([(n, i) for i, n in enumerate(lf_names)], "lf_name string, lf_index int")
    extra = [c for c in ids.columns if c not in ("row_id", "gold", "pattern", MASK, "__in_ids")]
    types = {f.name: f.dataType for f in ids.schema.fields}
    bits = (
        votes.where(F.col("vote") >= 0)
        .join(F.broadcast(index), "lf_name")
        .select(
            F.col("row_id").cast(types["row_id"]).alias("row_id"),
            F.expr(f"shiftleft(CAST(1 AS BIGINT), lf_index * {int(cardinality)} + vote)").alias(MASK),
            F.lit(None).cast("boolean").alias("__in_ids"),
            F.lit(None).cast(types["gold"]).alias("gold"),
            *[F.lit(None).cast(types[c]).alias(c) for c in extra],
        )
    )
    rows = ids.select("row_id", F.lit(0).cast("long").alias(MASK), F.lit(True).alias("__in_ids"), "gold", *extra)
    grouped = rows.unionByName(bits).groupBy("row_id").agg(
        F.bit_or(MASK).alias(MASK),
        F.max("__in_ids").alias("__in_ids"),
        F.first("gold", ignorenulls=True).alias("gold"),
        *[F.first(c, ignorenulls=True).alias(c) for c in extra],
    )
    return grouped.where(F.col("__in_ids")).select("row_id", MASK, "gold", *extra)


def decode_mask(mask: str, n_codes: int) -> Any:
    """The sorted codes (``array<int>``) whose bits are set in the long column named ``mask``."""
    return F.expr(f"filter(sequence(0, {max(int(n_codes), 1) - 1}), c -> (shiftright(`{mask}`, c) & 1L) = 1L)")


def _pattern_frame_lists(votes: DataFrame, ids: DataFrame, lf_names: Sequence[str], cardinality: int) -> DataFrame:
    """:func:`pattern_frame` for more codes than a mask holds: codes collected per row, then joined."""
    spark = votes.sparkSession
    index = spark.createDataFrame([(n, i) for i, n in enumerate(lf_names)], "lf_name string, lf_index int")
    codes = (
        votes.where(F.col("vote") >= 0)
        .join(F.broadcast(index), "lf_name")
        .select("row_id", (F.col("lf_index") * cardinality + F.col("vote")).cast("int").alias("code"))
        .groupBy("row_id")
        .agg(F.array_sort(F.collect_list("code")).alias("pattern"))
    )
    joined = ids.join(codes, "row_id", "left")
    return joined.select(
        "row_id",
        F.coalesce(F.col("pattern"), F.array().cast("array<int>")).alias("pattern"),
        F.col("gold"),
        *[c for c in ids.columns if c not in ("row_id", "gold", "pattern")],
    )


def gold_by_pattern(inverse: np.ndarray, gold: np.ndarray, n: np.ndarray, n_patterns: int, k: int) -> np.ndarray:
    """``[n_patterns, k]`` rows per (distinct pattern, gold class) from grouped rows.

    ``inverse``: each grouped row's pattern index; ``gold``: its gold class (-1: none); ``n``: its row count.
    """
    counts = np.zeros((n_patterns, k), dtype=np.int64)
    known = gold >= 0
    np.add.at(counts, (inverse.ravel()[known], gold[known]), n[known])
    return counts


def aggregate_patterns(
    rows: DataFrame,
    lf_names: Sequence[str],
    cardinality: int,
    *,
    max_patterns: int,
    with_gold: bool,
) -> AggregateResult:
    """Compute :class:`SufficientStats` (and gold counts) from :func:`pattern_frame` rows.

    One Spark job counts rows per (pattern, gold class). While there are at most
    ``max_patterns`` distinct patterns, that table comes to the driver and every statistic is
    computed from it exactly (it is the label matrix with multiplicities). Beyond, the table
    stays on Spark and only the overlap moments and per-LF counts are aggregated there.
    """
    grouped = rows.groupBy("pattern", "gold").agg(F.count(F.lit(1)).alias("n"))
    return aggregate_grouped(grouped, lf_names, cardinality, max_patterns=max_patterns, with_gold=with_gold)


def aggregate_masks(
    masks: DataFrame, lf_names: Sequence[str], cardinality: int, *, max_patterns: int, with_gold: bool,
) -> AggregateResult:
    """:func:`aggregate_patterns` over :func:`mask_frame` rows: rows are counted per (mask, gold) and
    only the distinct masks are decoded to patterns."""
    grouped = masks.groupBy(MASK, "gold").agg(F.count(F.lit(1)).alias("n"))
    decoded = grouped.select(decode_mask(MASK, len(lf_names) * cardinality).alias("pattern"), "gold", "n")
    return aggregate_grouped(decoded, lf_names, cardinality, max_patterns=max_patterns, with_gold=with_gold)


def pattern_result(
    lines: np.ndarray, gold: np.ndarray, n: np.ndarray, lf_names: Sequence[str], k: int, *, with_gold: bool,
    started: float, max_patterns: int | None = None,
) -> AggregateResult | None:
    """Statistics from (pattern, gold, count) rows on the driver: ``lines: [r, m]`` votes (-1 abstain),
    ``gold, n: [r]``. None when the distinct patterns pass ``max_patterns``."""
    inverse = distinct_rows(lines, k)
    n_distinct = int(inverse.max()) + 1 if len(inverse) else 0
    if max_patterns is not None and n_distinct > max_patterns:
        return None
    stats = stats_from_matrix(lines, k, lf_names=tuple(lf_names), weights=n)
    gold_counts = gold_by_pattern(inverse, gold, n, n_distinct, k) if with_gold else None
    n_gold = int(gold_counts.sum()) if gold_counts is not None else 0
    return AggregateResult(stats, gold_counts, n_gold, n_distinct, time.perf_counter() - started)


def distinct_rows(lines: np.ndarray, k: int) -> np.ndarray:
    """Each row's index among the distinct rows of ``lines: [r, m]`` in increasing order, as
    ``np.unique(lines, axis=0, return_inverse=True)`` gives it (the order of the statistics' patterns).

    ``np.unique(..., axis=0)`` compares the rows column by column, holding the GIL: 35 s for 181,469 patterns
    of 304 LFs, in which the progress heartbeat could not log (40 s of silence). The rows packed into words,
    compared as big-endian bytes, sort in the same order in 1.6 s.
    """
    if lines.shape[1] == 0:  # no LF: every row is the one empty pattern
        return np.zeros(len(lines), dtype=np.intp)
    words = row_words(lines, k)
    raw = np.ascontiguousarray(words.astype(">i8")).view(np.dtype((np.void, 8 * words.shape[1]))).reshape(-1)
    return np.unique(raw, return_inverse=True)[1].reshape(-1)


def aggregate_grouped(
    grouped: DataFrame, lf_names: Sequence[str], cardinality: int, *, max_patterns: int, with_gold: bool,
) -> AggregateResult:
    """:func:`aggregate_patterns` from rows already counted per (pattern, gold): ``pattern, gold, n``."""
    started = time.perf_counter()
    m, k = len(lf_names), cardinality
    head = collect_at_most(grouped, max_patterns)
    if head is None and with_gold and max_patterns > 0:
        # More (pattern, gold) rows than max_patterns, maybe not more patterns: one row per pattern with its gold
        # counts, so at most max_patterns patterns reach the driver (a drill at 40 classes: the cap let up to
        # max_patterns x 41 rows come, 8.2 million by default, before the patterns were counted and refused).
        per_pattern = grouped.groupBy("pattern").agg(F.collect_list(F.struct("gold", "n")).alias("golds"))
        patterns = collect_at_most(per_pattern, max_patterns)
        head = None if patterns is None else [
            {"pattern": r["pattern"], "gold": g["gold"], "n": g["n"]} for r in patterns for g in r["golds"]]
    if head is not None:
        lines, columns = pattern_lines(head, m, k, ("gold", "n"))
        gold, n = columns["gold"], columns["n"]
        result = pattern_result(lines, gold, n, lf_names, k, with_gold=with_gold, started=started,
                                max_patterns=max_patterns)  # fmt: skip
        if result is not None:
            return result
    stats, n_patterns = _moments_on_spark(grouped, lf_names, k)
    log.info("aggregate: %d distinct patterns > aggregate.max_patterns=%d; keeping overlap moments only",
             n_patterns, max_patterns)
    return AggregateResult(stats, None, 0, n_patterns, time.perf_counter() - started)


def collect_at_most(df: DataFrame, limit: int) -> list[Any] | None:
    """``df``'s rows when it has at most ``limit`` (one Spark job), else None (and for ``limit`` 0)."""
    if limit <= 0:
        return None
    head = df.limit(limit + 1).collect()
    return head if len(head) <= limit else None


def pattern_lines(rows: Sequence[Any], m: int, k: int, columns: Sequence[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Collected pattern rows as votes ``[r, m]`` (-1 abstain) and the named integer ``columns`` (``[r]`` each).

    A pattern is its sorted vote codes ``lf * k + class``.
    """
    lines = np.full((len(rows), m), -1, dtype=np.int16)
    for i, r in enumerate(rows):
        codes = np.asarray(r["pattern"], dtype=np.int64)
        lines[i, codes // k] = codes % k
    return lines, {c: np.fromiter((r[c] for r in rows), dtype=np.int64, count=len(rows)) for c in columns}


def one_partition_per_core(df: DataFrame) -> DataFrame:
    """``df`` in at most one partition per core, for a small aggregate that several queries read.

    A cached aggregate keeps its shuffle's partitions (200 on a cluster by default, where adaptive
    execution cannot coalesce a cached plan), and every later query over it runs one task per
    partition: the analysis of 2,000 rows on a standalone cluster ran 3,420 tasks.
    """
    return df.coalesce(max(1, df.sparkSession.sparkContext.defaultParallelism))


# Rows per partition of a run's persisted per-row frame (one small row each: id, mask, gold; the write scores a
# partition in one Python task): its partitions follow the rows, not the cores registered when it is made, so an
# autoscaling cluster's later executors get tasks too.
ROWS_PER_PARTITION = 100_000


def persist_rows(df: DataFrame, n_rows: int) -> DataFrame:
    """``df`` (one row per source row, grouped from the votes) persisted in one partition per
    :data:`ROWS_PER_PARTITION` rows, at least one per core, at most the grouping's own.

    Adaptive execution cannot coalesce a persisted plan, so the grouping kept its shuffle's partitions: 200 on
    a cluster by default (lakelabel sets 8 only on a local master), each a task of every later job, the write's
    Python scoring ones included. A run of 215,000 rows on a 2-core standalone worker took 68 s to aggregate
    and 74 s to write (200 labels files), against 2.4 s and 2.9 s in local mode. A coalesce adds no shuffle:
    each task runs its share of the grouping's partitions one after the other, as before.
    """
    parts = max(1, df.sparkSession.sparkContext.defaultParallelism, -(-n_rows // ROWS_PER_PARTITION))
    return df.coalesce(parts).persist(StorageLevel.MEMORY_AND_DISK)


def _moments_on_spark(grouped: DataFrame, lf_names: Sequence[str], k: int) -> tuple[SufficientStats, int]:
    """Overlap moments and per-LF counts aggregated on Spark (too many patterns to collect)."""
    m = len(lf_names)
    patterns = one_partition_per_core(grouped.groupBy("pattern").agg(F.sum("n").alias("n"))).persist()
    try:
        counts_df = patterns.select(
            "pattern",
            "n",
            F.size("pattern").alias("votes"),
            F.size(F.array_distinct(F.transform("pattern", lambda c: c % k))).alias("classes"),
        )
        level = counts_df.agg(
            F.count(F.lit(1)).alias("p"),
            F.coalesce(F.sum("n"), F.lit(0)).alias("n_rows"),
            F.coalesce(F.sum(F.when(F.col("votes") >= 1, F.col("n"))), F.lit(0)).alias("covered"),
            F.coalesce(F.sum(F.when(F.col("votes") >= 2, F.col("n"))), F.lit(0)).alias("overlapped"),
            F.coalesce(F.sum(F.when(F.col("classes") >= 2, F.col("n"))), F.lit(0)).alias("conflicted"),
        ).first()
        per_lf = (
            counts_df.select("n", "votes", "classes", F.explode("pattern").alias("code"))
            .groupBy((F.col("code") / k).cast("int").alias("lf"))
            .agg(
                F.sum("n").alias("coverage"),
                F.sum(F.when(F.col("votes") >= 2, F.col("n")).otherwise(0)).alias("overlap"),
                F.sum(F.when(F.col("classes") >= 2, F.col("n")).otherwise(0)).alias("conflict"),
            )
            .collect()
        )
        pairs = (
            patterns.select("n", F.explode("pattern").alias("a"), "pattern")
            .select("n", "a", F.explode("pattern").alias("b"))
            .groupBy("a", "b")
            .agg(F.sum("n").alias("n"))
            .collect()
        )
    finally:
        patterns.unpersist()
    lf_coverage = np.zeros(m, dtype=np.int64)
    lf_overlap = np.zeros(m, dtype=np.int64)
    lf_conflict = np.zeros(m, dtype=np.int64)
    for r in per_lf:
        lf_coverage[r["lf"]], lf_overlap[r["lf"]], lf_conflict[r["lf"]] = r["coverage"], r["overlap"], r["conflict"]
    a = np.fromiter((r["a"] for r in pairs), dtype=np.int64, count=len(pairs))
    b = np.fromiter((r["b"] for r in pairs), dtype=np.int64, count=len(pairs))
    v = np.fromiter((r["n"] for r in pairs), dtype=np.int64, count=len(pairs))
    overlap = sp.csr_array((v, (a, b)), shape=(m * k, m * k))
    overlap = overlap.toarray() if m * k <= DENSE_OVERLAP_MAX_COLS else overlap
    stats = SufficientStats(
        n_rows=int(level["n_rows"]),
        cardinality=k,
        lf_names=tuple(lf_names),
        overlap=overlap,
        lf_coverage=lf_coverage,
        lf_overlap=lf_overlap,
        lf_conflict=lf_conflict,
        n_covered=int(level["covered"]),
        n_overlapped=int(level["overlapped"]),
        n_conflicted=int(level["conflicted"]),
    )
    return stats, int(level["p"])


def row_patterns(spark: SparkSession, applied: ApplyResult, source: Source, io: Any = None) -> DataFrame:
    """``row_id, pattern, gold`` for every source row, from the votes table ``applied`` wrote.

    ``io``: the stage's :func:`jobs.delta_io.delta_io` (default: ``"auto"``).
    """
    io = io or delta_io.delta_io(spark)
    votes = io.read_table(spark, applied.votes_table, version=applied.votes_version)
    return pattern_frame(votes, source_ids(source, applied.label_space), applied.lf_names, len(applied.label_space))


def row_masks(spark: SparkSession, applied: ApplyResult, source: Source, io: Any = None, *,
              persist_grouped: bool = False) -> DataFrame:
    """:func:`row_patterns` with each pattern as a bitmask (``row_id, __mask, gold``: :func:`mask_frame`)
    when the codes fit one; else :func:`row_patterns` itself (``row_id, pattern, gold``).

    The masks a full apply wrote (:mod:`jobs.apply_masks`) are read when they are complete; else the
    votes are grouped by row, and with ``persist_grouped`` (a run, whose aggregate and write both read
    the rows) persisted so they are grouped once: the caller unpersists them.
    """
    k = len(applied.label_space)
    if len(applied.lf_names) * k <= MASK_BITS:
        stored = apply_masks.stored_masks(spark, applied.row_masks, applied.n_rows, source.gold_column,
                                          source.df.schema[source.id_column].dataType)
        if stored is not None:
            return stored
        io = io or delta_io.delta_io(spark)
        votes = io.read_table(spark, applied.votes_table, version=applied.votes_version)
        grouped = mask_frame(votes, source_ids(source, applied.label_space), applied.lf_names, k)
    else:
        grouped = row_patterns(spark, applied, source, io)
    return persist_rows(grouped, applied.n_rows) if persist_grouped else grouped


def source_ids(source: Source, label_space: Sequence[str]) -> DataFrame:
    """``row_id, gold`` of every source row (gold -1 when no gold column is configured)."""
    gold = gold_ids(source, tuple(label_space)) if source.gold_column else F.lit(-1).cast("int")
    return source.df.select(F.col(source.id_column).alias("row_id"), gold.alias("gold"))


def run(
    spark: SparkSession,
    cfg: PipelineConfig,
    *,
    applied: ApplyResult | None = None,
    source: Source | None = None,
    rows: DataFrame | None = None,
) -> AggregateResult:
    """Aggregate the votes table written by the apply job (``rows``: its :func:`row_masks`, when given)."""
    io = delta_io.delta_io(spark, cfg.tables.delta_io)
    applied = applied or load_apply_result(cfg, io)
    if source is None:
        source = load_source(spark, cfg.source, io=io)
        check_source_unchanged(applied, source)
    describe(spark, "aggregate", f"vote patterns of {len(applied.lfs)} LFs")
    rows = rows if rows is not None else row_masks(spark, applied, source, io)
    how = aggregate_patterns if "pattern" in rows.columns else aggregate_masks
    result = how(rows, applied.lf_names, len(applied.label_space), max_patterns=cfg.aggregate.max_patterns,
                 with_gold=bool(source.gold_column))
    if MASK in rows.columns:  # the gold table's rows are few: decode after the join in gold_sets
        rows = rows.select("row_id", decode_mask(MASK, len(applied.lf_names) * len(applied.label_space))
                           .alias("pattern"), "gold")
    result = _with_gold_table(spark, cfg, io, rows, applied, result)
    if source.gold_column and result.gold_counts is not None and result.n_gold == 0:
        unmatched = unmatched_gold(source, tuple(applied.label_space))
        if unmatched:
            log.warning("aggregate: no gold label: %s. Accuracy against gold is not measured; write the gold as "
                        "class names (case matters) or ids, or fix source.gold_column", unmatched)
    s = result.stats
    log.info(
        "aggregate: %d rows, %d distinct patterns, coverage %.1f%%, conflict %.1f%% (%.1fs)",
        s.n_rows, result.n_patterns, 100 * s.n_covered / max(s.n_rows, 1),
        100 * s.n_conflicted / max(s.n_rows, 1), result.seconds,
    )
    return result


def warn_unmatched_holdout_gold(source: Source, label_space: Sequence[str], n_gold: int, n_rows: int,
                                key: str | None = None) -> None:  # fmt: skip
    """Warn when values of an ``evaluation:`` source's gold column are no class (``desc`` for ``DESC``): those rows
    are left out of the held-out accuracy, which is then measured on fewer rows than the source holds, or on none.
    ``key``: the config key that names the gold column (default ``evaluation.gold_column``; a task's own). One
    Spark job over the gold column, only when some of the ``n_rows`` held-out rows have no gold class."""
    if n_gold >= n_rows:
        return
    unmatched = unmatched_gold(source, tuple(label_space), key=key)
    if unmatched:
        scored = (f"the held-out accuracy is measured on the {n_gold:,} row(s) with a gold class" if n_gold
                  else "no held-out row has a gold class, so accuracy against it is not measured")
        log.warning("evaluate: %s; %s. Write the gold as class names (case matters) or ids, or fix %s", unmatched,
                    scored, key or f"{source.role}.gold_column")


def _with_gold_table(spark: SparkSession, cfg: PipelineConfig, io: Any, rows: DataFrame, applied: ApplyResult,
                     result: AggregateResult) -> AggregateResult:  # fmt: skip
    """Add the gold table's dev/test label matrices when it exists (:func:`gold_table_sets`)."""
    sets = gold_table_sets(spark, cfg, io, rows, applied.lf_names, len(applied.label_space))
    return result if sets is None else replace(result, gold_sets=sets)


def gold_table_sets(spark: SparkSession, cfg: PipelineConfig, io: Any, rows: DataFrame, lf_names: Sequence[str],
                    k: int, *, what: str = "") -> Any:  # fmt: skip
    """``cfg``'s gold table's dev/test label matrices (:class:`jobs.people.gold.GoldSets`, counted per vote
    pattern of ``rows``, ``row_id, pattern``, on Spark); None without a gold table. ``what``: the log line's
    prefix (a task of several)."""
    from jobs.people.gold import current_gold, gold_sets

    current = current_gold(spark, cfg, io)
    if current is None:
        return None
    sets = gold_sets(rows, current, lf_names, k)
    log.info("aggregate: %sgold table rows with votes: dev %d, test %d", what,
             0 if sets.dev is None else len(sets.dev[1]), 0 if sets.test is None else len(sets.test[1]))
    return sets


def stage(spark: SparkSession, cfg: PipelineConfig, run_id: str) -> Outcome:
    """The aggregate stage as a job: statistics saved under the run folder for ``fit``."""
    from jobs.fit_label_model import STATS_FILE, save_aggregate

    applied = load_apply_result(cfg, delta_io.delta_io(spark, cfg.tables.delta_io))
    if not is_local_path(applied.votes_table):  # a local table's LFs were checked before Spark started
        check_lfs_unchanged(applied, build_registry(cfg))
    agg = run(spark, cfg, applied=applied)
    folder = save_aggregate(cfg, run_id, agg, applied)
    s = agg.stats

    def log() -> None:
        import mlflow

        mlflow.log_metrics({"aggregate_patterns": agg.n_patterns, "coverage": s.n_covered / max(s.n_rows, 1),
                            "aggregate_seconds": agg.seconds})

    return Outcome(
        skipped=False,
        seconds=agg.seconds,
        tables=votes_table(applied),
        counts={"rows": s.n_rows, "covered": s.n_covered, "patterns": agg.n_patterns, "gold": agg.n_gold,
                **_gold_table_counts(agg.gold_sets)},
        details={"stats": str(folder / STATS_FILE)},
        log=log,
    )


def _gold_table_counts(sets: Any) -> dict[str, int]:
    """Rows of the gold table's dev and test splits that the aggregate saw (none without a gold table)."""
    if sets is None:
        return {}
    return {f"gold_{name}": 0 if getattr(sets, name) is None else len(getattr(sets, name)[1]) for name in ("dev", "test")}


def _precheck(args: Any, cfg: PipelineConfig) -> None:
    """Before Spark starts, for a local votes table: it exists and was written by the LFs the config
    names (a table at a URI is checked by :func:`stage`, through the configured reader)."""
    if is_local_path(cfg.table_path("votes")):
        check_lfs_unchanged(load_apply_result(cfg), build_registry(cfg))


COMMAND = command.Command(
    logs_to_mlflow=True,
    name="aggregate", help="compute sufficient statistics of the votes on Spark", stage_summary=True,
    precheck=_precheck,
    run=lambda args, cfg, run_id, spark: finish("aggregate", cfg, run_id, stage(spark, cfg, run_id)),
)


def main(argv: Sequence[str] | None = None) -> int:
    return command.main(COMMAND, argv)


if __name__ == "__main__":
    command.exit_process(main())  # exits here (see exit_process: no exit code 134 after success)
