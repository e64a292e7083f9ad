"""Vote patterns as bitmasks (``jobs.aggregate.mask_frame``): the same rows as collecting codes per row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from jobs import aggregate
from jobs.vote_groups import VOTES_PER_PARTITION, VOTES_PER_TASK, partitions_for
from jobs.write_labels import batch_codes

pytestmark = pytest.mark.spark

LFS = ["a", "b", "c"]
K = 3


@pytest.fixture(scope="module")
def frames(spark):
    votes = spark.createDataFrame(
        [("r1", "a", 2), ("r1", "c", 0), ("r1", "b", -1), ("r2", "b", 1), ("r3", "a", -1),
         ("r4", "c", 2), ("r4", "a", 0), ("r4", "b", 2), ("gone", "a", 1)],
        "row_id string, lf_name string, vote int",
    )
    ids = spark.createDataFrame([("r1", 0, "x"), ("r2", -1, None), ("r3", 2, "z"), ("r4", 1, "w")],
                                "row_id string, gold int, extra string")
    return votes, ids


def test_mask_frame_gives_the_patterns_of_collected_codes(frames):
    votes, ids = frames
    by_mask = {r["row_id"]: r.asDict() for r in aggregate.pattern_frame(votes, ids, LFS, K).collect()}
    by_list = {r["row_id"]: r.asDict() for r in aggregate._pattern_frame_lists(votes, ids, LFS, K).collect()}
    assert by_mask == by_list
    # Codes lf_index * k + class, sorted; the ids' other columns kept; votes of unknown ids dropped.
    assert by_mask == {
        "r1": {"row_id": "r1", "pattern": [2, 6], "gold": 0, "extra": "x"},
        "r2": {"row_id": "r2", "pattern": [4], "gold": -1, "extra": None},
        "r3": {"row_id": "r3", "pattern": [], "gold": 2, "extra": "z"},
        "r4": {"row_id": "r4", "pattern": [0, 5, 8], "gold": 1, "extra": "w"},
    }
    masks = {r["row_id"]: r[aggregate.MASK] for r in aggregate.mask_frame(votes, ids, LFS, K).collect()}
    assert masks == {"r1": 0b1000100, "r2": 0b10000, "r3": 0, "r4": 0b100100001}


def test_aggregate_masks_equals_aggregate_patterns(frames):
    votes, ids = frames
    a = aggregate.aggregate_patterns(aggregate.pattern_frame(votes, ids, LFS, K), LFS, K, max_patterns=100,
                                     with_gold=True)
    b = aggregate.aggregate_masks(aggregate.mask_frame(votes, ids, LFS, K), LFS, K, max_patterns=100, with_gold=True)
    assert a.n_patterns == b.n_patterns == 4 and a.n_gold == b.n_gold == 3
    order_a, order_b = np.lexsort(a.stats.patterns.T), np.lexsort(b.stats.patterns.T)
    assert np.array_equal(a.stats.patterns[order_a], b.stats.patterns[order_b])
    assert np.array_equal(a.gold_counts[order_a], b.gold_counts[order_b])
    assert np.array_equal(a.stats.overlap, b.stats.overlap) and a.stats.n_conflicted == b.stats.n_conflicted


def test_the_pattern_cap_bounds_the_rows_that_reach_the_driver(spark, monkeypatch):
    """A pattern comes once per gold class it has: up to max_patterns x (k + 1) (pattern, gold) rows were collected
    before the patterns were counted (8.2 million at 40 classes, a drill). At most max_patterns come now: the rows
    when they are that few, else one row per pattern with its gold counts; past the cap, none."""
    rows = spark.createDataFrame([([2, 6], g) for g in (0, 1, 2, 2)] + [([4], -1), ([4], 0)],
                                 "pattern array<int>, gold int")
    collected = []
    original = aggregate.collect_at_most

    def counted(df, limit):
        out = original(df, limit)
        collected.append((limit, None if out is None else len(out)))
        return out

    monkeypatch.setattr(aggregate, "collect_at_most", counted)
    exact = aggregate.aggregate_patterns(rows, LFS, K, max_patterns=100, with_gold=True)
    assert collected == [(100, 5)] and exact.n_patterns == 2 and exact.n_gold == 5
    collected.clear()
    capped = aggregate.aggregate_patterns(rows, LFS, K, max_patterns=2, with_gold=True)
    assert collected == [(2, None), (2, 2)]  # 5 (pattern, gold) rows, 2 patterns: the patterns come
    assert np.array_equal(capped.stats.patterns, exact.stats.patterns) and capped.n_gold == 5
    assert np.array_equal(capped.gold_counts, exact.gold_counts)
    collected.clear()
    moments = aggregate.aggregate_patterns(rows, LFS, K, max_patterns=1, with_gold=True)
    assert collected == [(1, None), (1, None)] and moments.gold_counts is None and moments.n_patterns == 2


def test_batch_codes_reads_lists_and_masks_alike():
    lists = pa.RecordBatch.from_pydict({"pattern": pa.array([[2, 6], [], [0, 5, 8]], pa.list_(pa.int32()))})
    masks = pa.RecordBatch.from_pydict({aggregate.MASK: pa.array([0b1000100, 0, 0b100100001], pa.int64())})
    for batch in (lists, masks, lists.slice(0, 3)):
        offsets, codes = batch_codes(batch, len(LFS) * K)
        assert offsets.tolist() == [0, 2, 2, 5] and codes.tolist() == [2, 6, 0, 5, 8]
    offsets, codes = batch_codes(lists.slice(2, 1), len(LFS) * K)  # a slice: offsets start at 0
    assert offsets.tolist() == [0, 3] and codes.tolist() == [0, 5, 8]


@pytest.fixture
def cluster_shuffle(spark):
    """The session with a cluster's 200 shuffle partitions (lakelabel sets 8 only on a local master), put back after."""
    key = "spark.sql.shuffle.partitions"
    before = spark.conf.get(key)
    spark.conf.set(key, "200")
    yield
    spark.conf.set(key, before)


def test_the_grouping_by_row_runs_one_partition_per_core_under_a_clusters_shuffle_partitions(spark, cluster_shuffle):
    # Each partition of the grouping is a Python task: 200 of them took 166 s of a 20,000-row run on a 2-core worker.
    cores = spark.sparkContext.defaultParallelism
    assert partitions_for(spark, 1_000) == cores
    # More votes, more tasks (not the cores registered when the job starts: an autoscaling cluster adds some), up
    # to the shuffle's partitions, and never more than VOTES_PER_PARTITION votes in one.
    assert partitions_for(spark, 40 * VOTES_PER_TASK) == max(cores, 40)
    assert partitions_for(spark, 1000 * VOTES_PER_PARTITION) == 1000


def test_a_run_without_row_masks_persists_and_writes_one_partition_per_core(spark, cluster_shuffle, tmp_path,
                                                                            monkeypatch):
    """On a non-local master the apply writes no row masks, so the run groups the votes by row and persists them
    for aggregate and write: in the shuffle's 200 partitions, a 215,000-row run took 68 s to aggregate and 74 s
    to write 200 labels files on a 2-core standalone worker (2.4 s and 2.9 s in local mode)."""
    import pandas as pd
    from deltalake import DeltaTable

    from jobs import apply_masks, pipeline
    from jobs.runtime.config_loading import config_from_dict

    monkeypatch.setattr(apply_masks, "folder_for", lambda *args: None)  # as on a cluster: no masks folder
    source = tmp_path / "src"
    source.mkdir()
    texts = ["great stuff!!", "awful, I hate this", "ok", "love it", "nothing to say here"]
    pd.DataFrame({"id": [f"r{i:03d}" for i in range(120)], "text": [texts[i % 5] for i in range(120)],
                  "stars": [(i % 5) + 1 for i in range(120)]}).to_parquet(source / "part-0.parquet", index=False)
    cfg = config_from_dict({
        "lakehouse": str(tmp_path / "lake"),
        "source": {"path": str(source), "format": "parquet", "id_column": "id"},
        "lfs": {"modules": ["tests.jobs.sample_lfs"], "exclude": ["boom", "out_of_space"]},
        "mlflow": {"enabled": False},
    })  # fmt: skip
    summary = pipeline.run(spark, cfg, run_id="no-masks").summary
    assert summary["tables"]["labels"]["rows"] == 120
    assert not list((tmp_path / "lake" / "_lakelabel" / "runs" / "no-masks").glob("row_masks-*"))
    # The write scores and writes one file per partition of the persisted rows.
    labels = DeltaTable(str(tmp_path / "lake" / "labels"))
    assert 1 <= len(labels.file_uris()) <= spark.sparkContext.defaultParallelism


def test_the_driver_counts_distinct_patterns_of_hundreds_of_lfs_without_holding_the_gil():
    """``np.unique(lines, axis=0)`` compared the collected patterns column by column holding the GIL: 35 s for
    181,469 patterns of 304 LFs and 40 classes, in which the progress heartbeat could not log (a drill saw 40 s of
    silence in ``aggregate``). The rows are counted as packed bytes now, with the same indices and gold counts."""
    import threading
    import time

    rng = np.random.default_rng(0)
    for r, m, k in [(3000, 7, 3), (2000, 304, 40), (500, 2, 2)]:
        lines = np.where(rng.random((r, m)) < 0.7, -1, rng.integers(0, k, (r, m))).astype(np.int16)
        lines = np.concatenate([lines, lines[: r // 3]])
        gold, n = rng.integers(-1, k, len(lines)), rng.integers(1, 5, len(lines))
        result = aggregate.pattern_result(lines, gold, n, [f"lf{j}" for j in range(m)], k, with_gold=True, started=0.0)
        patterns = result.stats.patterns
        expected = {tuple(p): np.zeros(k, dtype=np.int64) for p in patterns}
        for line, g, c in zip(lines, gold, n):
            expected[tuple(line)][g] += c if g >= 0 else 0
        assert np.array_equal(result.gold_counts, np.array([expected[tuple(p)] for p in patterns]))

    lines = np.full((60_000, 304), -1, dtype=np.int16)
    lines[rng.integers(0, 60_000, 200_000), rng.integers(0, 304, 200_000)] = rng.integers(0, 40, 200_000)
    gaps, stop = [0.0], threading.Event()

    def tick():
        last = time.perf_counter()
        while not stop.wait(0.05):
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        result = aggregate.pattern_result(lines, np.full(len(lines), -1), np.ones(len(lines), dtype=np.int64),
                                          [f"lf{j}" for j in range(304)], 40, with_gold=True, started=0.0)
    finally:
        stop.set()
        ticker.join()
    assert result.n_patterns == len(np.unique(lines, axis=0))
    assert max(gaps) < 1.5  # np.unique(lines, axis=0): 4 s without a tick here
