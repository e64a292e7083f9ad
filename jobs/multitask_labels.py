"""The labels of a multi-task run: one Delta table, one row per source row, one struct column per task.

``lakelabel run`` on a config with several tasks (:mod:`jobs.multitask`) writes every task's
labels in ONE Spark job and ONE Delta commit to ``<tables.labels>_tasks`` (README "Several tasks
at once")::

    row_id | <task_1> struct | ... | <task_n> struct | run_id | tie_break_policy | source_table | source_version | votes_version

Each task's struct holds what a single-task labels table holds per row: ``probabilities``,
``label``, ``label_name``, ``confidence``, ``n_votes``. What is the same for every row of a
task (its label model's URI and version, its LFs and label space, its metrics) is in the
commit's metadata (``lakelabel.write``, key ``tasks``), not repeated on a million rows.
:func:`task_labels` gives one task's labels with exactly the single-task labels schema
(:func:`jobs.write_labels.labels_schema`), ``voting_lfs`` and model lineage included.

Scoring runs on the executors, inside the tasks that write the table, from each row's vote bitmask
per task that the apply pass wrote (:mod:`jobs.task_masks`; each task scored once per distinct mask
of a batch, :func:`score_by_mask`), or else from the per-row vote patterns of all tasks
(:func:`jobs.multitask.vote_rows`): each batch becomes one dense vote matrix, sliced per task and
scored by that task's broadcast label model once per distinct vote pattern
(:func:`score_by_pattern`). Either way, with the labels :func:`jobs.write_labels.score_rows` gives
one task.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from jobs import apply_masks
from jobs.apply_masks import TASK_MASK
from jobs.runtime.config import PipelineConfig
from jobs.runtime.progress import Progress
from jobs.runtime.session import describe
from jobs.tasks import task_table
from lf_library.apply import vote_dtype
from lf_library.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["LABELS_META_KEY", "TaskLabels", "labels_path", "labels_schema", "dense_votes", "distinct_rows",
           "score_by_pattern", "score_by_mask", "score_function", "score_tasks", "write", "read_labels_metadata",
           "task_labels"]

LABELS_META_KEY = "lakelabel.write"
_LINEAGE = ("run_id", "tie_break_policy", "source_table", "source_version", "votes_version")


@dataclass(frozen=True)
class TaskLabels:
    """What scoring needs of one task: its name, classes, where its LFs sit among all LFs, its model."""

    name: str
    label_space: tuple[str, ...]
    columns: tuple[int, ...]  # indices of the task's LFs in the run's LF order (the votes codes)
    lf_versions: tuple[tuple[str, str], ...]  # (LF name, version) in the task's LF order
    model_json: str
    label_model: str  # MLflow URI or model file
    label_model_version: str
    metrics: dict[str, Any]


def labels_path(cfg: PipelineConfig) -> str:
    """Path of the multi-task labels table: ``<tables.labels>_tasks``."""
    return task_table(cfg.table_path('labels'), "tasks")


def task_struct() -> pa.StructType:
    """One task's labels per row: the per-row fields of the single-task labels schema."""
    return pa.struct([
        pa.field("probabilities", pa.list_(pa.float64())),
        pa.field("label", pa.int32()),
        pa.field("label_name", pa.string()),
        pa.field("confidence", pa.float64()),
        pa.field("n_votes", pa.int32()),
    ])  # fmt: skip


def labels_schema(task_names: Sequence[str], row_id_type: pa.DataType) -> pa.Schema:
    """Schema of the multi-task labels table: ``row_id``, one struct per task, the run's lineage."""
    return pa.schema(
        [pa.field("row_id", row_id_type, nullable=False)]
        + [pa.field(name, task_struct()) for name in task_names]
        + [pa.field("run_id", pa.string()), pa.field("tie_break_policy", pa.string()),
           pa.field("source_table", pa.string()), pa.field("source_version", pa.int64()),
           pa.field("votes_version", pa.int64())]
    )  # fmt: skip


def dense_votes(pattern: pa.ListArray, n_lfs: int, k: int) -> np.ndarray:
    """``[b, n_lfs]`` votes (``-1``: abstain) from a batch's patterns of codes ``lf_index * k + class``."""
    b = len(pattern)
    L = np.full((b, n_lfs), -1, dtype=vote_dtype(k))
    if isinstance(pattern, pa.ChunkedArray):
        pattern = pattern.combine_chunks()
    codes = pattern.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
    rows = np.repeat(np.arange(b), np.diff(pattern.offsets.to_numpy()))
    L[rows, codes // k] = codes % k
    return L


def distinct_rows(L: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct, inverse)``: the distinct rows of ``L: [n, m]`` (votes in ``{-1..k-1}``), ``L == distinct[inverse]``.

    A row packs into one int64 key (base ``k + 1``) when ``(k + 1) ** m`` fits; keys from a
    small space are ranked through a table (no sort), others by ``np.unique``. Rows too wide
    for a key are compared as bytes. The order of ``distinct`` is unspecified.
    """
    n, m = L.shape
    if n == 0:
        return L[:0], np.zeros(0, dtype=np.int64)
    if m * np.log2(k + 1) >= 62:
        raw = np.ascontiguousarray(L).view(np.dtype((np.void, L.dtype.itemsize * m))).ravel()
        _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
        return L[first], inverse.ravel()
    key = np.zeros(n, dtype=np.int64)
    for j in range(m):
        key *= k + 1
        key += L[:, j]
        key += 1
    space = (k + 1) ** m
    if space <= 8 * n:
        seen = np.zeros(space, dtype=bool)
        seen[key] = True
        rank = np.cumsum(seen) - 1
        inverse = rank[key]
        first = np.empty(int(rank[-1]) + 1, dtype=np.int64)
        first[inverse] = np.arange(n)  # any row of each pattern will do: they are equal
    else:
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return L[first], inverse.ravel()


def score_by_pattern(model: Any, L: np.ndarray, *, tie_break_policy: str,
                     row_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """``(label, probabilities, confidence, n_votes)`` of each row of ``L``, computed per distinct row.

    ``label, probabilities`` equal ``model.predict(L, return_probs=True, ...)`` bit for bit: a
    row's probabilities depend on its votes only, so they are computed for the few distinct
    vote patterns of a batch and spread to its rows; the hard labels follow the rules of
    :meth:`labelmodel.LabelModel.predict` (tie-break, unvoted rows). Only the ``random`` and
    ``true-random`` policies look past the votes (row ids, a random draw per tied row): their
    labels are picked per row.
    """
    distinct, inverse = distinct_rows(L, model.cardinality)
    return _score_distinct(model, distinct, inverse, tie_break_policy=tie_break_policy, row_ids=row_ids)


def score_by_mask(model: Any, masks: np.ndarray, n_lfs: int, *, tie_break_policy: str,
                  row_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`score_by_pattern` of rows given as one task's vote bitmasks (:mod:`jobs.task_masks`: bit
    ``lf_index * k + class`` over the task's ``n_lfs`` LFs): only the distinct masks are decoded."""
    distinct, inverse = np.unique(np.asarray(masks, dtype=np.int64), return_inverse=True)
    L = apply_masks.decode(distinct, n_lfs, model.cardinality)
    return _score_distinct(model, L, inverse.ravel(), tie_break_policy=tie_break_policy, row_ids=row_ids)


def _score_distinct(model: Any, distinct: np.ndarray, inverse: np.ndarray, *, tie_break_policy: str,
                    row_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """:func:`score_by_pattern` of the rows ``distinct[inverse]``, ``distinct`` holding distinct vote rows."""
    from labelmodel import probs_to_preds

    probs_d = model.predict_proba(distinct.astype(np.int64))
    n_votes_d = (distinct >= 0).sum(axis=1)
    probs = probs_d[inverse]
    if tie_break_policy in ("abstain", "first"):
        label_d = probs_to_preds(probs_d, tie_break_policy, seed=model.config.seed)
        if not model.config.label_unvoted:
            label_d[n_votes_d == 0] = -1
        label = label_d[inverse]
    else:
        label = probs_to_preds(probs, tie_break_policy, row_ids, seed=model.config.seed)
        if not model.config.label_unvoted:
            label[n_votes_d[inverse] == 0] = -1
    return label, probs, probs_d.max(axis=1)[inverse], n_votes_d[inverse]


def score_function(
    spark: SparkSession,
    tasks: Sequence[TaskLabels],
    *,
    n_lfs: int,
    k: int,
    tie_break_policy: str,
    lineage: dict[str, Any],
    row_id_type: pa.DataType,
    rows_done: Any = None,
) -> tuple[Any, Any]:
    """``(function, Spark schema)``: every task's labels from ``row_id, pattern`` Arrow batches.

    ``pattern``: codes ``lf_index * k + class`` over all ``n_lfs`` LFs; or, instead of ``pattern``,
    each task's bitmask ``__mask_<i>`` (:mod:`jobs.task_masks`). Passed to a Delta write
    as its ``transform``, the labels are scored in the task that writes them (:func:`write`).
    """
    schema = labels_schema([t.name for t in tasks], row_id_type)
    payload = spark.sparkContext.broadcast([(t.label_space, t.columns, t.model_json) for t in tasks])
    const = [lineage.get(key) if key != "tie_break_policy" else tie_break_policy for key in _LINEAGE]
    types = [schema.field(key).type for key in _LINEAGE]
    struct_types = [schema.field(t.name).type for t in tasks]

    def score_partition(batches):
        from labelmodel import LabelModel

        # Per task: class names (index -1 -> the trailing null), LF columns, model.
        models = [(pa.array(list(space) + [None], pa.string()), np.array(cols, dtype=np.int64),
                   LabelModel.from_dict(json.loads(model))) for space, cols, model in payload.value]  # fmt: skip
        for batch in batches:
            b = batch.num_rows
            if b == 0:
                continue
            masked = "pattern" not in batch.schema.names
            L = None if masked else dense_votes(batch.column("pattern"), n_lfs, k)
            row_ids = batch.column("row_id")
            ids = np.asarray(row_ids.to_pylist(), dtype=object) if tie_break_policy == "random" else None
            columns = [row_ids.cast(row_id_type)]
            for i, ((names, cols, model), struct_type) in enumerate(zip(models, struct_types)):
                if masked:
                    label, probs, confidence, n_votes = score_by_mask(
                        model, batch.column(f"{TASK_MASK}{i}").to_numpy(zero_copy_only=False), len(cols),
                        tie_break_policy=tie_break_policy, row_ids=ids)  # fmt: skip
                else:
                    label, probs, confidence, n_votes = score_by_pattern(model, L[:, cols], row_ids=ids,
                                                                         tie_break_policy=tie_break_policy)
                kt = probs.shape[1]
                fields = [
                    pa.ListArray.from_arrays(pa.array(np.arange(0, b * kt + 1, kt, dtype=np.int32)),
                                             pa.array(probs.ravel(), pa.float64())),
                    pa.array(label, pa.int32()),
                    names.take(pa.array(np.where(label < 0, kt, label))),
                    pa.array(confidence, pa.float64()),
                    pa.array(n_votes, pa.int32()),
                ]
                columns.append(pa.StructArray.from_arrays(fields, fields=[struct_type.field(i) for i in range(struct_type.num_fields)]))
            for value, t in zip(const, types):
                columns.append(pa.repeat(pa.scalar(value, t), b))
            if rows_done is not None:
                rows_done.add(b)
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    return score_partition, from_arrow_schema(schema)


def score_tasks(rows: DataFrame, tasks: Sequence[TaskLabels], **options: Any) -> DataFrame:
    """Every task's labels for ``rows`` (``row_id, pattern`` or per-task masks) as a DataFrame; options of
    :func:`score_function`."""
    fn, schema = score_function(rows.sparkSession, tasks, **options)
    return _scored_columns(rows).mapInArrow(fn, schema)


def _scored_columns(rows: DataFrame) -> DataFrame:
    """What scoring reads of ``rows``: ``row_id`` and ``pattern``, or ``row_id`` and the per-task masks."""
    return rows.select("row_id", *[c for c in rows.columns if c == "pattern" or c.startswith(TASK_MASK)])


def write(
    spark: SparkSession,
    io: Any,
    path: str,
    rows: DataFrame,
    tasks: Sequence[TaskLabels],
    *,
    n_lfs: int,
    k: int,
    n_rows: int,
    tie_break_policy: str,
    lineage: dict[str, Any],
    row_id_type: pa.DataType,
    votes_table: str,
) -> tuple[int | None, int, bool]:
    """Score every task and replace the table at ``path`` in one Delta commit: ``(version, rows, skipped)``.

    Writing the labels of the same run, votes (``votes_table`` unchanged since, compactions aside), label models
    and tie-break policy again is a no-op.
    """
    started = time.perf_counter()
    tasks_meta = {t.name: {"label_space": list(t.label_space), "lfs": [list(p) for p in t.lf_versions],
                           "label_model": t.label_model, "label_model_version": t.label_model_version,
                           "metrics": t.metrics} for t in tasks}  # fmt: skip
    if io.table_exists(path):
        prior = json.loads(io.read_metadata(path).get(LABELS_META_KEY, "{}"))
        same_votes = prior.get("votes_version") == lineage["votes_version"] or (
            prior.get("votes_version") is not None and io.unchanged_since(votes_table, prior["votes_version"])
        )  # an OPTIMIZE or VACUUM of the votes since (a run's compaction) does not change them
        same = (prior.get("run_id"), prior.get("tie_break_policy")) == (lineage["run_id"], tie_break_policy)
        if same_votes and same and {n: m.get("label_model_version") for n, m in prior.get("tasks", {}).items()} == {
                n: m["label_model_version"] for n, m in tasks_meta.items()}:  # fmt: skip
            version = io.table_version(path)
            log.info("write: run %s already wrote these labels (v%s); nothing to do", lineage["run_id"], version)
            return version, n_rows, True
    # Scored in the tasks that write the files: the labels never become JVM rows (one Python pass).
    score = score_function(spark, tasks, n_lfs=n_lfs, k=k, tie_break_policy=tie_break_policy, lineage=lineage,
                           row_id_type=row_id_type, rows_done=(done := spark.sparkContext.accumulator(0)))  # fmt: skip
    meta = {
        LABELS_META_KEY: json.dumps({**lineage, "tie_break_policy": tie_break_policy, "tasks": tasks_meta},
                                    sort_keys=True, default=str),
        "lakelabel.run_id": lineage["run_id"],
    }
    describe(spark, "write", f"labels of {len(tasks)} tasks for {n_rows} rows")
    with Progress(spark, "write", n_rows, done):
        result = io.write_table(_scored_columns(rows), path, mode="overwrite", commit_metadata=meta,
                                overwrite_schema=True, transform=score,
                                description=f"lakelabel write: labels of {len(tasks)} tasks to {path}")  # fmt: skip
    log.info("write: %d rows x %d tasks to %s v%s in %.1fs", result.num_records, len(tasks), path, result.version,
             time.perf_counter() - started)
    return result.version, result.num_records, result.skipped


def read_labels_metadata(io: Any, path: str, version: int | None = None) -> dict[str, Any]:
    """The ``lakelabel.write`` metadata of the multi-task labels table (at ``version``; default latest)."""
    if not io.table_exists(path):
        raise ConfigError(f"no multi-task labels table at {path}; run `lakelabel run` on the config with tasks first")
    meta = io.read_metadata(path) if version is None else io.read_metadata_at(path, version)
    if LABELS_META_KEY not in meta or "tasks" not in json.loads(meta[LABELS_META_KEY]):
        raise ConfigError(f"{path} was not written by a multi-task `lakelabel run`; point tables.labels elsewhere")
    return json.loads(meta[LABELS_META_KEY])


def task_labels(spark: SparkSession, cfg: PipelineConfig, task: str, *, version: int | None = None,
                io: Any = None) -> DataFrame:  # fmt: skip
    """One task's labels from the multi-task table, in the single-task labels schema.

    ``row_id, probabilities, label, label_name, confidence, n_votes, voting_lfs, run_id,
    label_model, label_model_version, tie_break_policy, source_table, source_version,
    votes_version, vote_codes``: the task's struct column unnested, its model lineage from the commit
    metadata, and ``voting_lfs`` (``name@version`` of the task's LFs that voted on the row, in LF
    order) from the votes table version the labels were written from.
    """
    from jobs import delta_io

    io = io or delta_io.delta_io(spark, cfg.tables.delta_io)
    path = labels_path(cfg)
    meta = read_labels_metadata(io, path, version)
    if task not in meta["tasks"]:
        raise ConfigError(f"task {task!r} is not in {path}; its tasks are: {', '.join(meta['tasks'])}")
    mine = meta["tasks"][task]
    index = spark.createDataFrame([(name, i, f"{name}@{v}") for i, (name, v) in enumerate(mine["lfs"])],
                                  "lf_name string, lf_index int, voter string")  # fmt: skip
    votes = io.read_table(spark, cfg.table_path("votes"), version=meta["votes_version"])
    voters = (
        votes.where(F.col("vote") >= 0).where(F.col("lf_name").isin([n for n, _ in mine["lfs"]]))
        .join(F.broadcast(index), "lf_name")
        .groupBy("row_id").agg(F.array_sort(F.collect_list(F.struct(
            "lf_index", "voter", (F.col("lf_index") * len(mine["label_space"]) + F.col("vote")).cast("int").alias("code")
        ))).alias("v"))
        .select("row_id", F.transform("v", lambda x: x["voter"]).alias("voting_lfs"),
                F.transform("v", lambda x: x["code"]).alias("vote_codes"))
    )
    labels = io.read_table(spark, path, version=version)
    t = F.col(task)
    return labels.join(voters, "row_id", "left").select(
        "row_id", t["probabilities"].alias("probabilities"), t["label"].alias("label"),
        t["label_name"].alias("label_name"), t["confidence"].alias("confidence"), t["n_votes"].alias("n_votes"),
        F.coalesce("voting_lfs", F.array().cast("array<string>")).alias("voting_lfs"), "run_id",
        F.lit(mine["label_model"]).alias("label_model"), F.lit(mine["label_model_version"]).alias("label_model_version"),
        "tie_break_policy", "source_table", "source_version", "votes_version",
        F.coalesce("vote_codes", F.array().cast("array<int>")).alias("vote_codes"),
    )  # fmt: skip
